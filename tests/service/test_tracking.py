"""The Segment HTTP Tracking API: the real Segment SDK feeds a real service (SQLite, PostgreSQL).

Leads, accounts and events arrive as Segment messages and are scored with a published model
exactly as the engine's reference evaluator scores the same data.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from segment.analytics import Client
from segment.analytics import request as segment_request
from segment.analytics.consumer import Consumer
from segment.analytics.request import APIError

from leadscore.engine.reference import score_many
from leadscore.model import load_model
from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()
CEO = {"title": "CEO", "employees": 500, "industry": "Software", "email": "ada@acme.example"}


def basic(key: str) -> dict[str, str]:
    """Segment's write-key auth: the key as user name, no password."""
    return {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def at(hours_before: float) -> str:
    """An ISO time before the service's clock (the engine counts events before 'now' only)."""
    return (T0 - timedelta(hours=hours_before)).isoformat() + "Z"


def aware(hours_before: float) -> datetime:
    return (T0 - timedelta(hours=hours_before)).replace(tzinfo=UTC)


def expected_total(lead: dict[str, Any], events: list[dict[str, Any]]) -> float:
    """What the reference evaluator gives as of the service's clock (the oracle)."""
    model = load_model(MODELS / "starter.yaml")
    (score,) = score_many(model, [lead], events, T0)
    return score.total


def stored(event_id: str, lead: str, type_: str, hours_before: float, **kw: Any) -> dict[str, Any]:
    """An event as the engine reads it (for the oracle)."""
    ts = T0 - timedelta(hours=hours_before)
    return {"event_id": event_id, "lead_id": lead, "type": type_, "ts": ts, **kw}


def lead_view(running: Running, lead_id: str) -> dict[str, Any]:
    r = running.admin.get(f"/v1/leads/{lead_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def events_of(running: Running, lead_id: str) -> list[dict[str, Any]]:
    items = running.admin.get("/v1/events", params={"lead_id": lead_id}).json()["items"]
    return sorted(items, key=lambda e: e["ts"])


def batch(
    running: Running, *items: dict[str, Any], admin: bool = False, **kw: Any
) -> dict[str, Any]:
    client = running.admin if admin else running.tracking
    r = client.post("/v1/batch", json={"batch": list(items), **kw})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def track(lead: str, event: str, message_id: str, hours_before: float, **kw: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": lead,
        "event": event,
        "messageId": message_id,
        "timestamp": at(hours_before),
        **kw,
    }


@pytest.fixture
def sdk(running: Running) -> Iterator[Callable[..., Client]]:
    """Real Segment clients pointed at the service; synchronous, so no consumer threads."""
    made: list[Client] = []

    def make(write_key: str | None = None, **kw: Any) -> Client:
        client = Client(
            write_key=write_key or running.tracking_key,
            host=running.base_url,
            sync_mode=True,
            **kw,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        # shutdown() would fail in sync mode (it joins `consumers`, which is None there);
        # flush() returns at once as nothing is ever queued.
        client.flush()
        assert client.consumers is None
    assert not [t for t in threading.enumerate() if isinstance(t, Consumer)]
    # The SDK keeps one module-wide requests session: close its sockets to this server.
    segment_request._session.close()


# -- the real SDK ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_the_segment_sdk_feeds_leads_accounts_and_events(
    running: Running, sdk: Callable[..., Client], gzipped: bool
) -> None:
    running.publish(STARTER)
    client = sdk(gzip=gzipped)
    client.identify("u1", {**CEO, "firstName": "Ada", "lastName": "Lovelace", "plan": "trial"})
    client.group(
        "u1", "acme", {"name": "Acme", "website": "https://www.acme.example", "tier": "tier1"}
    )
    client.track(
        "u1",
        "Demo Request",
        {"asset": "demo-form", "revenue": 120, "plan": "pro"},
        timestamp=aware(1),
        message_id="t-1",
    )
    client.page(
        "u1",
        "Docs",
        "Pricing",
        {"url": "https://acme.example/pricing"},
        timestamp=aware(2),
        message_id="p-1",
    )
    running.wait_idle()

    view = lead_view(running, "u1")
    lead = view["lead"]
    assert (lead["name"], lead["job_title"], lead["employees"], lead["industry"]) == (
        "Ada Lovelace",
        "CEO",
        500,
        "Software",
    )
    assert lead["email"] == "ada@acme.example" and lead["account_id"] == "acme"
    assert lead["attributes"] == {"plan": "trial"}

    account = running.admin.get("/v1/accounts/acme").json()["account"]
    assert (account["name"], account["domain"], account["priority"]) == (
        "Acme",
        "acme.example",
        "tier1",
    )

    demo, page = events_of(running, "u1")[::-1]
    assert (demo["event_id"], demo["type"], demo["asset"], demo["value"]) == (
        "t-1",
        "demo_request",
        "demo-form",
        120.0,
    )
    assert demo["attributes"] == {"plan": "pro"}
    assert (page["event_id"], page["type"], page["url"]) == (
        "p-1",
        "page_view",
        "https://acme.example/pricing",
    )
    assert page["attributes"] == {"name": "Pricing", "category": "Docs"}

    oracle = expected_total(
        {"lead_id": "u1", "job_title": "CEO", "employees": 500, "industry": "Software"},
        [
            stored("t-1", "u1", "demo_request", 1),
            stored("p-1", "u1", "page_view", 2, url="https://acme.example/pricing"),
        ],
    )
    score = view["score"]
    assert score["total"] == oracle and score["fit"] == 40
    assert 39 < score["behaviour"] <= 40  # 30 + 10, faded by an hour or two of 90 days
    assert (score["grade"], score["stage"], score["temperature"]) == ("A", "SQL", "hot")


def test_a_wrong_write_key_is_refused(running: Running, sdk: Callable[..., Client]) -> None:
    with pytest.raises(APIError) as info:
        sdk("ls_00000000_not-a-key").track("u1", "Demo Request", timestamp=aware(1))
    assert info.value.status == 401
    message = {"userId": "u1", "event": "x", "messageId": "m1"}
    wrong = running.anonymous.post("/v1/track", json=message, headers=basic("ls_nope"))
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["detail"]
    assert running.anonymous.post("/v1/track", json=message).status_code == 401
    # The key is checked before the body is read: garbage does not tell anything either.
    assert running.anonymous.post("/v1/batch", content=b"{", headers=basic("x")).status_code == 401
    assert running.admin.get("/v1/leads/u1").status_code == 404


def test_an_admin_key_is_a_write_key_too(running: Running, sdk: Callable[..., Client]) -> None:
    sdk(running.admin_key).identify("u1", {"email": "grace@example.com"})
    assert lead_view(running, "u1")["lead"]["email"] == "grace@example.com"
    # Bearer works as well as Segment's Basic auth.
    r = running.tracking.post("/v1/identify", json={"userId": "u2", "traits": {"stage": "MQL"}})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert lead_view(running, "u2")["lead"]["stage"] == "MQL"


# -- per message: taken, duplicate or rejected ----------------------------------------------------


def test_each_message_is_taken_or_rejected_with_its_reason(running: Running) -> None:
    body = batch(
        running,
        {"type": "identify", "userId": "u1", "traits": {"title": "CTO"}},
        {"type": "track", "userId": "u1", "event": "Demo Request", "timestamp": at(1)},
        {"type": "scream", "userId": "u1", "messageId": "s-1"},
        track("u2", "Webinar Attended", "t-2", 2),  # nobody identified u2: a bare lead
        track("u1", "Download", "t-3", 3, timestamp="last tuesday"),
        ["not", "a", "message"],
        track("u1", "Form Submit", "t-4", 4),
        track("u1", "Form Submit", "t-4", 4),  # the SDK retried within the batch
        {"type": "page", "anonymousId": "a1", "messageId": "p-1", "timestamp": at(5)},
        {"type": "group", "userId": "u1", "traits": {"name": "No id"}},
    )
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 4, 5, 9]
    assert rejected[1]["message_id"] is None
    assert rejected[1]["reason"].startswith("field 'messageId': required")
    assert rejected[2]["message_id"] == "s-1"
    assert rejected[2]["reason"].startswith("field 'type': 'scream'; expected one of identify")
    assert rejected[4]["message_id"] == "t-3" and "field 'timestamp'" in rejected[4]["reason"]
    assert "JSON object" in rejected[5]["reason"]
    assert rejected[9]["reason"].startswith("field 'groupId': required")
    assert body["duplicates"] == ["t-4"]
    assert body["accepted"] == 4 and body["success"] is True

    running.wait_idle()
    assert lead_view(running, "u1")["lead"]["job_title"] == "CTO"
    assert [e["event_id"] for e in events_of(running, "u1")] == ["t-4"]
    assert [(e["event_id"], e["type"]) for e in events_of(running, "u2")] == [
        ("t-2", "webinar_attended")
    ]
    assert [e["type"] for e in events_of(running, "a1")] == ["page_view"]

    again = batch(running, track("u2", "Webinar Attended", "t-2", 2), track("u1", "x", "t-5", 1))
    assert again["duplicates"] == ["t-2"] and again["accepted"] == 1 and again["rejected"] == []


def test_a_single_invalid_message_is_answered_like_segment(running: Running) -> None:
    r = running.tracking.post("/v1/track", json={"userId": "u1", "event": "Demo Request"})
    assert r.status_code == 200
    assert r.json() == {
        "success": True,
        "accepted": 0,
        "duplicates": [],
        "rejected": [
            {
                "index": 0,
                "message_id": None,
                "reason": "field 'messageId': required: it is the event's id and makes "
                "resending harmless",
            }
        ],
    }
    not_an_object = running.tracking.post("/v1/track", json=["x"])
    assert not_an_object.status_code == 422 and "field 'body'" in not_an_object.json()["detail"]


def test_single_calls_are_scored_before_the_response(running: Running) -> None:
    running.publish(STARTER)
    post = running.tracking.post
    assert post("/v1/identify", json={"userId": "u1", "traits": CEO}).status_code == 200
    fit_only = lead_view(running, "u1")["score"]
    assert fit_only["total"] == 40 and fit_only["behaviour"] == 0

    page = {"userId": "u1", "messageId": "p-1", "timestamp": at(1)}
    page["context"] = {"page": {"url": "https://acme.example/pricing"}}
    assert post("/v1/page", json=page).json()["accepted"] == 1
    assert 49 < lead_view(running, "u1")["score"]["total"] <= 50

    demo = {"userId": "u1", "event": "Demo Request", "messageId": "t-1", "timestamp": at(1)}
    assert post("/v1/track", json=demo).json()["accepted"] == 1
    assert 79 < lead_view(running, "u1")["score"]["total"] <= 80

    screen = {"userId": "u1", "messageId": "s-1", "timestamp": at(1), "name": "Home"}
    assert post("/v1/screen", json=screen).json()["accepted"] == 1
    types = {e["event_id"]: e["type"] for e in events_of(running, "u1")}
    assert types == {"p-1": "page_view", "t-1": "demo_request", "s-1": "screen_view"}

    group = {"userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "employees": 900}}
    assert post("/v1/group", json=group).json()["accepted"] == 1
    assert lead_view(running, "u1")["lead"]["account_id"] == "acme"
    assert running.admin.get("/v1/accounts/acme").json()["account"]["employees"] == 900
    history = running.admin.get("/v1/leads/u1/history").json()["items"]
    assert {h["cause"] for h in history} >= {"lead", "event"}


# -- identities -----------------------------------------------------------------------------------


def test_anonymous_events_move_to_the_user_on_identify(
    running: Running, sdk: Callable[..., Client]
) -> None:
    running.publish(STARTER)
    visit = {"url": "https://acme.example/pricing"}
    page = {"type": "page", "anonymousId": "a1", "messageId": "p-1", "timestamp": at(3)}
    batch(
        running,
        {**page, "properties": visit},
        {**track("", "Demo Request", "t-1", 2), "userId": None, "anonymousId": "a1"},
    )
    running.wait_idle()
    assert 39 < lead_view(running, "a1")["score"]["behaviour"] <= 40

    sdk().identify("u1", CEO, anonymous_id="a1")
    running.wait_idle()
    assert [e["event_id"] for e in events_of(running, "u1")] == ["p-1", "t-1"]
    # The visitor was nothing but its events: it is gone, with its score.
    assert running.admin.get("/v1/leads/a1").status_code == 404
    assert events_of(running, "a1") == []
    with running.service.store.read() as conn:
        for table in ("scores", "score_history", "transitions", "dirty_leads"):
            left = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE lead_id = 'a1'"))
            assert left.scalar() == 0, table
    score = lead_view(running, "u1")["score"]
    events = [
        stored("p-1", "u1", "page_view", 3, **visit),
        stored("t-1", "u1", "demo_request", 2),
    ]
    lead = {"lead_id": "u1", "job_title": "CEO", "employees": 500, "industry": "Software"}
    assert score["total"] == expected_total(lead, events) and score["stage"] == "SQL"
    ids = [e["lead_id"] for e in running.admin.get("/v1/leads").json()["items"]]
    assert ids == ["u1"]


def test_an_anonymous_lead_known_otherwise_stays_without_its_events(running: Running) -> None:
    running.publish(STARTER)
    batch(
        running,
        {"type": "identify", "anonymousId": "a1", "traits": {"email": "x@example.com"}},
        {**track("", "Demo Request", "t-1", 2), "userId": None, "anonymousId": "a1"},
    )
    running.wait_idle()
    assert lead_view(running, "a1")["score"]["behaviour"] > 29

    # a1 has an e-mail that u1 does not have: only an admin (server) key may move its history
    r = running.tracking.post("/v1/alias", json={"previousId": "a1", "userId": "u1"})
    assert r.status_code == 200 and r.json()["accepted"] == 0
    assert r.json()["rejected"][0]["reason"].startswith("field 'previousId'")
    r = running.admin.post("/v1/alias", json={"previousId": "a1", "userId": "u1"})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # Single calls are scored before the response: both leads are current already.
    kept = lead_view(running, "a1")
    assert kept["lead"]["email"] == "x@example.com" and kept["score"]["behaviour"] == 0
    assert lead_view(running, "u1")["score"]["behaviour"] > 29
    assert [e["event_id"] for e in events_of(running, "u1")] == ["t-1"]


def test_within_a_batch_identities_come_first(running: Running) -> None:
    running.publish(STARTER)
    body = batch(
        running,
        {**track("", "Webinar Attended", "t-1", 3), "userId": None, "anonymousId": "a1"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": CEO},
        {**track("", "Demo Request", "t-2", 2), "userId": None, "anonymousId": "a1"},
        {"type": "alias", "previousId": "u1", "userId": "u9"},
        track("u2", "Demo Request", "t-3", 1),
        {"type": "identify", "userId": "u2", "traits": {"title": "Student"}},
        admin=True,  # u1 has an identity by the alias: a server's (admin) key moves it
    )
    assert body["accepted"] == 6 and body["rejected"] == []
    running.wait_idle()
    # Every event of the anonymous id went to the user it became, at the end of the chain.
    assert [e["event_id"] for e in events_of(running, "u9")] == ["t-1", "t-2"]
    assert running.admin.get("/v1/leads/a1").status_code == 404
    # u1 was identified with traits: it stays, without events.
    assert lead_view(running, "u1")["lead"]["job_title"] == "CEO"
    assert events_of(running, "u1") == []
    # The track came before the identify of a new user, in the same batch.
    u2 = lead_view(running, "u2")
    assert u2["lead"]["job_title"] == "Student" and u2["score"]["fit"] == -20


# -- the body: gzip, JSON, sizes ------------------------------------------------------------------


def test_gzip_bodies_are_read_and_bombs_refused(running: Running) -> None:
    payload = {"batch": [track("u1", "Demo Request", "t-1", 1)]}
    packed = gzip.compress(json.dumps(payload).encode())
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    r = running.tracking.post("/v1/batch", content=packed, headers=headers)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # Two gzip members make one body, as gunzip reads them.
    parts = gzip.compress(b'{"userId": "u2", "event": "x", ') + gzip.compress(
        b'"messageId": "t-2"}'
    )
    assert (
        running.tracking.post("/v1/track", content=parts, headers=headers).json()["accepted"] == 1
    )
    assert [e["event_id"] for e in events_of(running, "u2")] == ["t-2"]

    limit = running.service.settings.max_request_bytes
    bomb = gzip.compress(b"[" + b" " * limit + b"]")
    assert len(bomb) < limit // 100
    r = running.tracking.post("/v1/batch", content=bomb, headers=headers)
    assert r.status_code == 413 and "un-gzipped" in r.json()["detail"]

    r = running.tracking.post("/v1/batch", content=packed[:-9], headers=headers)
    assert r.status_code == 400 and "gzip" in r.json()["detail"]
    r = running.tracking.post("/v1/batch", content=b"\x00" * 20, headers=headers)
    assert r.status_code == 400 and "not valid gzip" in r.json()["detail"]
    r = running.tracking.post("/v1/batch", content=packed, headers={"content-encoding": "br"})
    assert r.status_code == 415


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"batch": [}',
        b"",
        b'{"batch": [{"type": "track", "x": NaN}]}',
        b"\xff\xfe",
        b"1e999",
    ],
)
def test_invalid_json_is_a_400(running: Running, body: bytes) -> None:
    r = running.tracking.post(
        "/v1/batch", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["detail"].startswith("invalid JSON")


def test_oversized_requests_are_refused(running: Running) -> None:
    limit = running.service.settings.max_request_bytes
    big = {"batch": [{"type": "identify", "userId": "u1", "traits": {"blob": "x" * limit}}]}
    r = running.tracking.post("/v1/batch", json=big)
    assert r.status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"batch": ['
        yield from [b" " * 65536] * (limit // 65536 + 1)
        yield b"]}"

    r = running.tracking.post("/v1/batch", content=chunked())
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    most = running.service.settings.max_batch
    r = running.tracking.post("/v1/batch", json={"batch": [{}] * (most + 1)})
    assert r.status_code == 422
    assert r.json()["detail"] == f"field 'batch': {most + 1} messages in one batch; at most {most}"
    assert running.tracking.post("/v1/batch", json={"batch": [{}] * most}).status_code == 200

    for shape in ({}, {"batch": {}}, [], {"batch": None}):
        r = running.tracking.post("/v1/batch", json=shape)
        assert r.status_code == 422 and "field '" in r.json()["detail"], shape
    assert running.tracking.post("/v1/batch", json={"batch": []}).json()["accepted"] == 0


def test_concurrent_first_events_of_one_visitor_all_land(running: Running) -> None:
    # Several SDK processes may report a new visitor at once; on PostgreSQL their
    # transactions run side by side and each creates the bare lead.
    failures: list[str] = []

    def send(visitor: int, n: int) -> None:
        item = {**track("", "x", f"m{visitor}-{n}", 1), "userId": None}
        r = running.tracking.post(
            "/v1/batch", json={"batch": [{**item, "anonymousId": f"a{visitor}"}]}
        )
        if r.status_code != 200 or r.json()["accepted"] != 1:
            failures.append(r.text[:200])

    for visitor in range(15):
        threads = [threading.Thread(target=send, args=(visitor, n)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert all(len(events_of(running, f"a{v}")) == 6 for v in range(15))
