"""What a tracking key (a browser's write key) may change: it fills in, never rewrites another
lead's identity or stage, takes only an anonymous lead's history, and reads no score."""

from __future__ import annotations

from typing import Any

import httpx

from servicekit import MODELS, Running

KNOWN = {
    "lead_id": "L1",
    "email": "ada@acme.example",
    "job_title": "CTO",
    "stage": "SQL",
    "account_id": "A1",
}


def _send(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _lead(running: Running, lead_id: str) -> dict[str, Any]:
    r = running.admin.get(f"/v1/leads/{lead_id}")
    assert r.status_code == 200, r.text
    lead: dict[str, Any] = r.json()["lead"]
    return lead


def _events(running: Running, lead_id: str) -> list[str]:
    items = running.admin.get("/v1/events", params={"lead_id": lead_id}).json()["items"]
    return sorted(e["event_id"] for e in items)


def _track(user: str, message_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "event": "Demo Requested",
        "messageId": message_id,
        "timestamp": "2026-03-01T09:00:00Z",
        **kw,
    }


def test_a_tracking_key_cannot_rewrite_a_known_lead(running: Running) -> None:
    running.publish((MODELS / "starter.yaml").read_text())
    assert running.admin.put("/v1/accounts/A1", json={"account_id": "A1"}).status_code == 200
    assert running.admin.put("/v1/leads/L1", json=KNOWN).status_code == 200
    for traits, field in (
        ({"email": "evil@example.com"}, "email"),
        ({"title": "Intern"}, "job_title"),
        ({"stage": "customer"}, "stage"),
        ({"email": None}, "email"),  # clearing is changing
        ({"plan": "pro", "company": {"id": "A2"}}, "account_id"),
    ):
        body = _send(running.tracking, "/v1/identify", {"userId": "L1", "traits": traits})
        assert body["accepted"] == 0, (traits, body)
        reason = body["rejected"][0]["reason"]
        assert reason.startswith(f"field '{field}': a tracking key may fill in"), reason
        assert "ada@acme" not in reason  # nothing stored is quoted back
    group = {"userId": "L1", "groupId": "A2"}
    assert _send(running.tracking, "/v1/group", group)["accepted"] == 0
    lead = _lead(running, "L1")
    assert {k: lead[k] for k in KNOWN} == KNOWN
    assert lead["attributes"] == {}

    # the same values again (SDKs resend every trait) and new traits are taken
    traits = {"email": "ada@acme.example", "title": "CTO", "plan": "pro", "country": "DE"}
    assert (
        _send(running.tracking, "/v1/identify", {"userId": "L1", "traits": traits})["accepted"] == 1
    )
    lead = _lead(running, "L1")
    assert lead["country"] == "DE" and lead["attributes"] == {"plan": "pro"}

    # an admin key, through the same endpoint, keeps full power
    change = {"userId": "L1", "traits": {"email": "ada@new.example", "stage": "customer"}}
    assert _send(running.admin, "/v1/identify", change)["accepted"] == 1
    assert _lead(running, "L1")["stage"] == "customer"


def test_a_batch_cannot_change_what_it_filled_itself(running: Running) -> None:
    items = [
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
        {"type": "identify", "userId": "u1", "traits": {"email": "b@example.com"}},
        {"type": "group", "userId": "u1", "groupId": "G1", "traits": {"priority": "tier2"}},
        {"type": "group", "userId": "u1", "groupId": "G1", "traits": {"priority": "tier1"}},
    ]
    body = _send(running.tracking, "/v1/batch", {"batch": items})
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    running.wait_idle()
    assert _lead(running, "u1")["email"] == "a@example.com"
    account = running.admin.get("/v1/accounts/G1").json()
    assert account["account"]["priority"] == "tier2"


def test_a_tracking_key_takes_only_an_anonymous_history(running: Running) -> None:
    running.publish((MODELS / "starter.yaml").read_text())
    assert running.admin.put(
        "/v1/leads/L1", json={"lead_id": "L1", "email": "v@x.example"}
    ).is_success
    assert _send(running.tracking, "/v1/track", _track("L1", "v-1"))["accepted"] == 1

    # moving a known lead's events to oneself, either way a merge is asked for
    for path, body in (
        ("/v1/alias", {"previousId": "L1", "userId": "mallory"}),
        ("/v1/identify", {"userId": "mallory", "anonymousId": "L1"}),
    ):
        answer = _send(running.tracking, path, body)
        assert answer["accepted"] == 0, answer
        assert answer["rejected"][0]["reason"].startswith("field 'previousId'")
    assert _events(running, "L1") == ["v-1"]
    assert running.admin.get("/v1/leads/mallory").status_code == 404

    # the usual flow: an anonymous visitor signs in, its history follows
    anonymous = {**_track("", "a-1"), "userId": None, "anonymousId": "anon-7"}
    assert _send(running.tracking, "/v1/track", anonymous)["accepted"] == 1
    sign_in = {"userId": "u7", "anonymousId": "anon-7", "traits": {"title": "CEO"}}
    assert _send(running.tracking, "/v1/identify", sign_in)["accepted"] == 1
    assert _events(running, "u7") == ["a-1"]

    # a visitor who left their e-mail first, then signs in with it
    left = {"userId": None, "anonymousId": "anon-8", "traits": {"email": "eve@x.example"}}
    assert _send(running.tracking, "/v1/identify", left)["accepted"] == 1
    visit = {**_track("", "a-2"), "userId": None, "anonymousId": "anon-8"}
    assert _send(running.tracking, "/v1/track", visit)["accepted"] == 1
    sign_in = {"userId": "u8", "anonymousId": "anon-8", "traits": {"email": "eve@x.example"}}
    assert _send(running.tracking, "/v1/identify", sign_in)["accepted"] == 1
    assert _events(running, "u8") == ["a-2"]

    # a server (admin key) may merge any two leads
    assert _send(running.admin, "/v1/alias", {"previousId": "L1", "userId": "u7"})["accepted"] == 1
    assert _events(running, "u7") == ["a-1", "v-1"]


def test_a_tracking_key_reads_no_score(running: Running) -> None:
    running.publish((MODELS / "starter.yaml").read_text())
    assert running.admin.put("/v1/leads/L1", json={"lead_id": "L1", "job_title": "CEO"}).is_success
    event = {"event_id": "e1", "lead_id": "L1", "type": "demo_request", "ts": "2026-03-01"}
    r = running.tracking.post("/v1/events", json=event)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": ["e1"], "duplicates": [], "rejected": []}
    r = running.admin.post("/v1/events", json={**event, "event_id": "e2"})
    assert r.status_code == 200 and r.json()["score"]["lead_id"] == "L1"
    for path in ("/v1/leads/L1", "/v1/leads/L1/score", "/v1/leads"):
        assert running.tracking.get(path).status_code == 403
