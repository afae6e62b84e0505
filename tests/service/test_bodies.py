"""Request bodies on every endpoint: gzip undone in linear time with few members, JSON depth and
text sizes bounded with the field named, and big bodies decoded off the event loop."""

from __future__ import annotations

import gzip
import json
import threading
import time

import httpx
import pytest

from leadscore.service import bodies
from servicekit import Running

GZIP = {"content-encoding": "gzip", "content-type": "application/json"}


def _members(count: int) -> bytes:
    # A batch split into gzip members, most of them holding one space.
    one = gzip.compress(b" ", mtime=0)
    return gzip.compress(b'{"batch": [', mtime=0) + one * count + gzip.compress(b"]}", mtime=0)


def test_many_gzip_members_are_refused_quickly_and_the_server_stays_responsive(
    running: Running,
) -> None:
    bomb = _members(240_000)  # ~5 MB: took 11 s each on the event loop (quadratic)
    answers: list[httpx.Response] = []
    spent: list[float] = []

    def send() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=running.base_url, timeout=120) as c:
            answers.append(
                c.post(
                    "/v1/batch",
                    content=bomb,
                    headers={**GZIP, "authorization": f"Bearer {running.tracking_key}"},
                )
            )
        spent.append(time.monotonic() - started)

    senders = [threading.Thread(target=send) for _ in range(4)]
    for s in senders:
        s.start()
    time.sleep(0.2)
    started = time.monotonic()
    health = running.anonymous.get("/healthz", timeout=60)
    waited = time.monotonic() - started
    for s in senders:
        s.join(120)
    assert health.status_code == 200 and waited < 2.0, waited
    assert [r.status_code for r in answers] == [413] * 4
    assert "members" in answers[0].json()["detail"]
    assert max(spent) < 10.0, spent


def test_gunzip_is_linear_in_the_members() -> None:
    started = time.monotonic()
    out = bodies.gunzip(_members(240_000), 5 * 1024 * 1024, max_members=10**6)
    assert time.monotonic() - started < 8.0  # 36 s when each member copied the rest
    assert json.loads(out) == {"batch": []}
    assert bodies.gunzip(_members(10), 1000) == b'{"batch": [' + b" " * 10 + b"]}"


def test_gzip_is_read_on_every_json_endpoint(running: Running) -> None:
    running.admin.put("/v1/leads/L1", json={"lead_id": "L1"}).raise_for_status()
    events = [{"event_id": "e1", "lead_id": "L1", "type": "x", "ts": "2026-03-01T00:00:00"}]
    packed = gzip.compress(json.dumps({"events": events}).encode())
    r = running.tracking.post("/v1/events/batch", content=packed, headers=GZIP)
    assert r.status_code == 200 and r.json()["accepted"] == ["e1"], r.text
    r = running.tracking.post(
        "/v1/events/batch", content=packed, headers={**GZIP, "content-encoding": "br"}
    )
    assert r.status_code == 415 and "gzip" in r.json()["detail"]


@pytest.mark.parametrize("levels", [40, 5000])
def test_json_nested_too_deep_is_a_422_naming_the_field(running: Running, levels: int) -> None:
    # built as text: json.dumps itself recurses
    inner = '{"a": ' * levels + '"x"' + "}" * levels
    body = '{"batch": [{"type": "identify", "userId": "u1", "traits": {"plan": ' + inner + "}}]}"
    r = running.tracking.post(
        "/v1/batch", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert "deeper than 32" in r.json()["detail"]
    if levels == 40:
        assert r.json()["errors"][0]["field"].startswith("batch.0.traits.plan.a.a")
    # the same limit on a REST endpoint parsed by FastAPI
    lead = '{"lead_id": "L1", "attributes": {"x": ' + "[" * levels + "]" * levels + "}}"
    r = running.admin.put(
        "/v1/leads/L1", content=lead, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "deeper than 32" in r.json()["detail"], r.text
    assert running.admin.get("/v1/leads/u1").status_code == 404


def test_overlong_texts_are_a_422_naming_the_field(running: Running) -> None:
    blob = "x" * (bodies.MAX_TEXT + 1)
    r = running.tracking.post("/v1/identify", json={"userId": "u1", "traits": {"note": blob}})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "in": "body",
            "field": "traits.note",
            "message": "text of 10,001 characters; at most 10,000",
        }
    ]
    r = running.tracking.post("/v1/identify", json={"userId": "u1", "traits": {blob: 1}})
    assert r.status_code == 422 and "a key of 10,001" in r.json()["detail"]
    r = running.admin.put("/v1/leads/L1", json={"lead_id": "L1", "attributes": {"n": blob}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "attributes.n"
    assert running.admin.get("/v1/leads/u1").status_code == 404
    assert running.admin.get("/v1/leads/L1").status_code == 404
    # at the limit is fine
    ok = "y" * bodies.MAX_TEXT
    r = running.tracking.post("/v1/identify", json={"userId": "u1", "traits": {"note": ok}})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_forms_and_yaml_are_not_read_as_json(running: Running) -> None:
    # a model upload is YAML, even when it looks like JSON; its own limits apply
    source = '{"name": "m", "version": "1", "fit": {"rules": []}}'
    r = running.admin.post(
        "/v1/models", content=source, headers={"content-type": "application/yaml"}
    )
    assert r.status_code in (201, 422), r.text
    assert "deeper" not in r.text
