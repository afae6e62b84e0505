"""Property-based fuzzing of every operation of the OpenAPI document (schemathesis).

A real service runs on 127.0.0.1 (on SQLite, then on PostgreSQL) with a published model and a
little data; every operation is fuzzed with an admin key and with a tracking key, with valid
(positive) and invalid (negative) requests, derandomized so every run sends the same requests.
Every answer must be no 5xx, have a documented status code and content type, and match the
documented schema; the errors among them all have the one error shape. The figures (operations
fuzzed, examples sent, 5xx count) are printed and written to `fuzz-figures.json` in the test's
tmp dir. Webhook URLs the fuzzer invents are pointed at a receiver on 127.0.0.1, so the URL
policy itself is not fuzzed here (its own tests cover it).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from psycopg import sql
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from leadscore.service.app import Settings
from leadscore.service.keys import list_keys
from servicekit import MODELS, ManualClock, Receiver, Running, running_service

# Bounded: examples per operation, key and mode (hypothesis, derandomized), and a time cap.
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4}
TIME_LIMIT = 240.0  # seconds per database: a cap for a loaded machine (idle: under a minute)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Tally:
    """What the fuzzer sent and what came back."""

    operations: set[str] = field(default_factory=set)
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # one per operation, key and kind
    seconds: Counter[str] = field(default_factory=Counter)  # per operation

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/leadscore.db"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"leadscore_fuzz_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def seeded(database: str) -> Iterator[tuple[Running, Receiver]]:
    """A service with the starter model, leads, an account, events, an outcome and a webhook."""
    settings = Settings(
        database_url=database,
        rescore_interval=0,
        webhook_base_delay=0.05,
        webhook_allow=("127.0.0.1",),  # the tests' receivers: allowed, not the default
    )
    receiver = Receiver()
    with running_service(settings, ManualClock()) as running:
        running.publish((MODELS / "starter.yaml").read_text(encoding="utf-8"))
        admin = running.admin
        assert admin.put("/v1/accounts/A1", json={"account_id": "A1", "name": "Acme"}).is_success
        for i in range(5):
            lead = {"lead_id": f"L{i}", "job_title": "CEO", "account_id": "A1", "employees": 80}
            assert admin.put(f"/v1/leads/L{i}", json=lead).is_success
            event = {"event_id": f"e{i}", "lead_id": f"L{i}", "type": "demo_request"}
            event["ts"] = "2026-03-01T10:00:00Z"
            assert running.tracking.post("/v1/events", json=event).is_success
        assert admin.post("/v1/leads/L0/outcome", json={"outcome": "won"}).is_success
        hook = admin.post("/v1/webhooks", json={"url": receiver.url()})
        assert hook.status_code == 201, hook.text
        running.wait_idle()
        try:
            yield running, receiver
        finally:
            receiver.close()


def _keep_local(case: schemathesis.Case, receiver: Receiver) -> None:
    # Webhook URLs the fuzzer invents must not make the service call out beyond 127.0.0.1.
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        body["url"] = receiver.url()


def _fuzz_one(
    context: Fuzzing, operation: Any, who: str, mode: GenerationMode, examples: int
) -> None:
    running, receiver, tally = context.running, context.receiver, context.tally
    headers = {"authorization": f"Bearer {context.keys[who]}"}
    own_keys = context.own_key_ids
    strategy = operation.as_strategy(generation_mode=mode).filter(
        lambda c: not c.path_parameters or c.path_parameters.get("key_id") not in own_keys
    )

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        if time.monotonic() > context.deadline:
            return
        _keep_local(case, receiver)
        response = case.call(base_url=running.base_url, headers=headers, timeout=60)
        tally.examples += 1
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:
            name = f"{operation.label} [{who}, {mode.value}]"
            tally.failures.setdefault(name, str(exc)[:3000])

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to make.
        if mode is not GenerationMode.NEGATIVE:
            raise


@dataclass
class Fuzzing:
    """One fuzzing run: the service, its keys, the tally and when to stop."""

    running: Running
    receiver: Receiver
    tally: Tally
    deadline: float
    keys: dict[str, str]
    own_key_ids: set[int]


def _fuzz(context: Fuzzing) -> None:
    schema = schemathesis.openapi.from_url(f"{context.running.base_url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        context.tally.operations.add(operation.label)
        started = time.monotonic()
        for who in context.keys:
            for mode, examples in EXAMPLES.items():
                _fuzz_one(context, operation, who, mode, examples)
        context.tally.seconds[operation.label] += time.monotonic() - started
        slowest = ", ".join(f"{op} {s:.1f} s" for op, s in context.tally.seconds.most_common(5))
        assert time.monotonic() <= context.deadline, f"over {TIME_LIMIT} s; slowest: {slowest}"


def test_every_operation_answers_as_documented(
    seeded: tuple[Running, Receiver], tmp_path: Path
) -> None:
    """No 5xx and no answer outside the documented status codes, content types and schemas."""
    running, receiver = seeded
    tally = Tally()
    keys = {"admin": running.admin_key, "tracking": running.tracking_key}
    with running.service.store.read() as conn:
        # the fuzzer's own keys must survive DELETE /v1/keys/{key_id}
        own = {k["id"] for k in list_keys(conn)}
    _fuzz(Fuzzing(running, receiver, tally, time.monotonic() + TIME_LIMIT, keys, own))
    figures = {
        "database": running.service.store.engine.dialect.name,
        "operations_fuzzed": len(tally.operations),
        "keys": ["admin", "tracking"],
        "examples_sent": tally.examples,
        "server_errors_5xx": tally.server_errors,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "operations_failing_a_check": len(tally.failures),
    }
    (tmp_path / "fuzz-figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print("fuzz figures:", json.dumps(figures))
    print("slowest operations (s):", [(op, round(s, 1)) for op, s in tally.seconds.most_common(5)])
    report = "\n\n".join(f"== {name}\n{text}" for name, text in sorted(tally.failures.items()))
    assert not tally.failures, f"{len(tally.failures)} operation(s) failed a check:\n{report}"
    assert tally.server_errors == 0
    assert len(tally.operations) >= 50 and tally.examples > 600, figures
