"""Property-based fuzzing of the Segment-compatible tracking endpoints with a tracking key.

Their bodies are any JSON (SDKs send what they send), so the OpenAPI document describes none
and schemathesis sends them nothing; here hypothesis builds Segment-like messages with hostile
values (wrong types, huge integers, odd timestamps, nested traits, NUL-free unicode) for every
endpoint, against a real server whose published model has numeric, text and regex rules on
the traits it sends. Every answer is 200 or an error of the one shape, never a 5xx, and the
scoring worker never fails on what was stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.service.app import Settings
from servicekit import ManualClock, Running, running_service

EXAMPLES = 300
MODEL = """\
name: fuzz
version: "1"
fit:
  rules:
    - {name: seats, when: {field: seats, gt: 10}, points: 10}
    - {name: plan, when: {field: plan, contains: pro}, points: 5}
    - {name: title, when: {field: job_title, regex: 'ceo|cto'}, points: 20}
    - {name: vip, when: {field: vip, equals: true}, points: 5}
  grades: [{grade: A, min: 20}, {grade: B}]
behaviour:
  rules:
    - {name: demo, event: demo_requested, points: 30, where: {field: plan, contains: pro}}
    - {name: page, event: page_view, points: 1}
routing:
  - {name: hot, when: {min_total: 40}, temperature: hot, stage: SQL, queue: sales}
  - {name: rest, temperature: cold, stage: nurture}
"""

text = st.text(st.characters(exclude_characters="\x00", codec="utf-8"), max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.sampled_from(["", "many", "pro", "CEO", "2026-03-01T10:00:00Z", "true"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
ids = st.one_of(st.sampled_from(["u1", "u2", "anon-1", ""]), text, st.integers(), st.none())
times = st.one_of(
    st.sampled_from(
        ["2026-03-01T10:00:00Z", "2026-03-01 10:00:00+02:00", "0001-01-01T00:00:00+01:00"]
    ),
    st.sampled_from(["9999-12-31T23:30:00-01:00", "yesterday", "2026-02-30T00:00:00Z"]),
    text,
    st.integers(),
)
traits = st.dictionaries(
    st.one_of(st.sampled_from(["seats", "plan", "vip", "title", "email", "company"]), text),
    values,
    max_size=5,
)
message = st.fixed_dictionaries(
    {},
    optional={
        "userId": ids,
        "anonymousId": ids,
        "previousId": ids,
        "groupId": ids,
        "messageId": ids,
        "type": st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "x"]),
        "event": st.one_of(st.sampled_from(["Demo Requested", "page_view", ""]), text, values),
        "traits": st.one_of(traits, values),
        "properties": st.one_of(traits, values),
        "context": st.one_of(st.fixed_dictionaries({"traits": traits}), values),
        "timestamp": times,
        "sentAt": times,
    },
)
ENDPOINTS = ["identify", "track", "page", "screen", "group", "alias", "batch"]
request = st.tuples(
    st.sampled_from(ENDPOINTS),
    st.one_of(
        message,
        st.fixed_dictionaries({"batch": st.lists(message, max_size=4)}, optional={"sentAt": times}),
        values,
    ),
)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A real service with a model whose rules read the traits the fuzzer sends."""
    db = tmp_path_factory.mktemp("tracking-fuzz") / "leadscore.db"
    settings = Settings(database_url=f"sqlite:///{db}", rescore_interval=0)
    with running_service(settings, ManualClock()) as running:
        running.publish(MODEL)
        yield running


def test_tracking_endpoints_never_fail_on_hostile_messages(
    running: Running, tmp_path: Path
) -> None:
    """No 5xx, errors in the one shape, and no worker error after every message is scored."""
    document = running.anonymous.get("/openapi.json").json()
    error = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/Error", "components": document["components"]}
    )
    statuses: dict[int, int] = {}
    wrong: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(sent=request)
    def run(sent: tuple[str, Any]) -> None:
        endpoint, body = sent
        r = running.tracking.post(f"/v1/{endpoint}", content=json.dumps(body))
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        answer = r.json()
        if r.status_code >= 500:
            wrong.append(f"{endpoint} {json.dumps(body)[:300]}: {r.status_code} {r.text[:300]}")
        elif r.status_code >= 400 and list(error.iter_errors(answer)):
            wrong.append(f"{endpoint}: {r.status_code} body not in the error shape: {r.text[:300]}")
        elif r.status_code == 200 and answer.get("success") is not True:
            wrong.append(f"{endpoint}: 200 without success: {r.text[:300]}")

    started = time.monotonic()
    run()
    running.wait_idle()
    status = running.admin.get("/v1/status").json()
    figures = {"examples_sent": sum(statuses.values()), "statuses": statuses}
    figures["seconds"] = round(time.monotonic() - started, 1)
    (tmp_path / "tracking-fuzz-figures.json").write_text(json.dumps(figures), encoding="utf-8")
    print("tracking fuzz figures:", json.dumps(figures))
    assert not wrong, "\n".join(wrong[:20])
    assert status["worker_errors"] == 0, status
    assert statuses.get(200, 0) > EXAMPLES // 4  # most messages were read, not all refused
