"""API keys and scopes, request validation, the body size limit, transactions and the docs."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from leadscore.store import records
from leadscore.store import tables as t
from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()


def client(running: Running, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=running.base_url, headers=headers or {}, timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def count(running: Running, table: sa.Table) -> int:
    with running.service.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def ev(event_id: str, lead_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """An event nine days before the service's default now."""
    ts = (T0 - timedelta(days=9)).isoformat() + "Z"
    return {"event_id": event_id, "lead_id": lead_id, "type": kind, "ts": ts, **fields}


def refused(r: httpx.Response, field: str) -> dict[str, Any]:
    """Assert a 422 whose detail names `field`; returns the body."""
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()
    # A value matching no member of a union is named with the member: 'attributes.a.str'.
    unions = {e["field"].rpartition(".")[0] for e in body.get("errors", [])}
    assert f"'{field}'" in body["detail"] or field in unions, body
    return body


# -- keys and scopes ------------------------------------------------------------------------------


def test_requests_without_a_valid_key_get_401(running: Running) -> None:
    for path in ("/v1/leads", "/v1/keys", "/v1/models"):
        r = running.anonymous.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert "API key" in r.json()["detail"]
    r = running.anonymous.post("/v1/events", json=ev("e1", "ann", "page_view"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    # Authentication comes before validation: a bad body without a key is a 401, not a 422.
    r = running.anonymous.put("/v1/leads/x", json={"lead_id": "x", "employees": "many"})
    assert r.status_code == 401

    forged = running.admin_key[:-4] + "xxxx"
    for headers in (
        bearer("ls_00000000_nothing"),
        bearer(forged),
        {"x-api-key": forged},
        {"authorization": "Basic " + base64.b64encode(forged.encode() + b":").decode()},
        {"authorization": "Basic not-base64!"},
        {"authorization": f"Token {running.admin_key}"},
    ):
        with client(running, headers) as c:
            r = c.get("/v1/leads")
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"

    # The same key works in each of the accepted forms.
    basic = base64.b64encode(running.admin_key.encode() + b":").decode()
    for headers in (
        bearer(running.admin_key),
        {"x-api-key": running.admin_key},
        {"authorization": f"Basic {basic}"},
    ):
        with client(running, headers) as c:
            assert c.get("/v1/leads").status_code == 200, headers


def test_tracking_keys_send_events_and_nothing_else(running: Running) -> None:
    assert running.admin.put("/v1/leads/ann", json={"lead_id": "ann"}).status_code == 200
    tracking = running.tracking
    for method, path, body in [
        ("GET", "/v1/leads", None),
        ("GET", "/v1/leads/ann", None),
        ("PUT", "/v1/leads/ann", {"lead_id": "ann", "name": "Changed"}),
        ("POST", "/v1/leads", {"leads": [{"lead_id": "bob"}]}),
        ("DELETE", "/v1/leads/ann", None),
        ("GET", "/v1/leads/ann/export", None),
        ("POST", "/v1/leads/ann/outcome", {"outcome": "won"}),
        ("PUT", "/v1/accounts/acme", {"account_id": "acme"}),
        ("GET", "/v1/accounts", None),
        ("GET", "/v1/events?lead_id=ann", None),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"name": "mine", "scopes": ["admin"]}),
        ("DELETE", "/v1/keys/1", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/rescore", None),
    ]:
        r = tracking.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert "'admin' scope" in r.json()["detail"]
    r = tracking.post("/v1/models", content=STARTER, headers={"content-type": "application/yaml"})
    assert r.status_code == 403

    # Nothing the tracking key tried was done.
    assert running.admin.get("/v1/models").json()["items"] == []
    got = running.admin.get("/v1/leads/ann").json()["lead"]
    assert got["name"] is None
    assert running.admin.get("/v1/leads/bob").status_code == 404
    assert len(running.admin.get("/v1/keys").json()["items"]) == 2
    assert running.admin.get("/v1/leads/ann/outcomes").json()["items"] == []

    # What tracking keys are for.
    r = tracking.post("/v1/events", json=ev("e1", "ann", "page_view", url="/pricing"))
    assert r.status_code == 200 and r.json()["accepted"] == ["e1"], r.text
    r = tracking.post("/v1/events/batch", json={"events": [ev("e2", "ann", "download")]})
    assert r.status_code == 200 and r.json()["accepted"] == ["e2"], r.text

    # Admin keys may do everything, tracking included.
    admin = running.admin
    r = admin.post("/v1/events", json=ev("e3", "ann", "email_click"))
    assert r.status_code == 200 and r.json()["accepted"] == ["e3"], r.text
    r = admin.post("/v1/events/batch", json={"events": [ev("e4", "ann", "webinar_attended")]})
    assert r.status_code == 200 and r.json()["accepted"] == ["e4"], r.text
    events = admin.get("/v1/events", params={"lead_id": "ann"}).json()["items"]
    assert sorted(e["event_id"] for e in events) == ["e1", "e2", "e3", "e4"]
    r = admin.post("/v1/models", content=STARTER, headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    for path in ("/v1/leads", "/v1/accounts", "/v1/keys", "/v1/models", "/v1/sla"):
        assert admin.get(path).status_code == 200, path


def test_keys_are_created_listed_without_secrets_and_revoked(running: Running) -> None:
    r = running.admin.post("/v1/keys", json={"name": "website", "scopes": ["tracking"]})
    assert r.status_code == 201, r.text
    made = r.json()
    token = made["token"]
    assert made["name"] == "website" and made["scopes"] == ["tracking"]
    assert token.startswith("ls_") and len(token) > 40
    r = running.admin.post("/v1/keys", json={"name": "ops", "scopes": ["admin", "tracking"]})
    assert r.status_code == 201, r.text
    ops_token = r.json()["token"]
    assert r.json()["scopes"] == ["admin", "tracking"]

    assert running.admin.put("/v1/leads/ann", json={"lead_id": "ann"}).status_code == 200
    with client(running, bearer(token)) as website, client(running, bearer(ops_token)) as ops:
        r = website.post("/v1/events", json=ev("e1", "ann", "page_view"))
        assert r.status_code == 200, r.text
        assert website.get("/v1/leads").status_code == 403
        assert ops.get("/v1/leads").status_code == 200

        r = running.admin.get("/v1/keys")
        assert r.status_code == 200
        items = r.json()["items"]
        assert [(k["name"], k["scopes"]) for k in items] == [
            ("test admin", ["admin"]),
            ("test tracking", ["tracking"]),
            ("website", ["tracking"]),
            ("ops", ["admin", "tracking"]),
        ]
        for item in items:
            assert set(item) == {"id", "name", "prefix", "scopes", "created_at", "revoked_at"}
        secrets = [token, ops_token, running.admin_key, running.tracking_key]
        for secret in secrets:
            assert secret not in r.text
            assert hashlib.sha256(secret.encode()).hexdigest() not in r.text
        website_key = next(k for k in items if k["name"] == "website")
        assert token.startswith(website_key["prefix"] + "_")
        assert website_key["revoked_at"] is None

        running.clock.advance(minutes=5)
        r = running.admin.delete(f"/v1/keys/{website_key['id']}")
        assert r.status_code == 200 and r.json() == {"id": website_key["id"], "revoked": True}
        r = website.post("/v1/events", json=ev("e2", "ann", "page_view"))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert ops.get("/v1/leads").status_code == 200  # other keys are untouched
        assert running.tracking.post("/v1/events", json=ev("e3", "ann", "page_view")).is_success

    items = running.admin.get("/v1/keys").json()["items"]
    revoked = next(k for k in items if k["id"] == website_key["id"])
    assert revoked["revoked_at"] == running.clock().isoformat()
    assert [k["revoked_at"] for k in items if k["id"] != website_key["id"]] == [None] * 3
    events = running.admin.get("/v1/events", params={"lead_id": "ann"}).json()["items"]
    assert sorted(e["event_id"] for e in events) == ["e1", "e3"]

    r = running.admin.delete(f"/v1/keys/{website_key['id']}")
    assert r.status_code == 404
    assert running.admin.delete("/v1/keys/999").status_code == 404
    refused(running.admin.post("/v1/keys", json={"name": "x", "scopes": ["root"]}), "scopes.0")
    refused(running.admin.post("/v1/keys", json={"name": "x", "scopes": []}), "scopes")
    refused(running.admin.post("/v1/keys", json={"scopes": ["admin"]}), "name")
    assert len(running.admin.get("/v1/keys").json()["items"]) == 4


# -- validation -----------------------------------------------------------------------------------


def test_every_request_body_is_validated(running: Running) -> None:
    admin = running.admin
    assert admin.put("/v1/leads/ann", json={"lead_id": "ann", "employees": 10}).is_success
    before = admin.get("/v1/leads/ann").json()["lead"]

    body = refused(
        admin.put("/v1/leads/ann", json={"lead_id": "ann", "employees": "many"}), "employees"
    )
    assert body["errors"] == [
        {"in": "body", "field": "employees", "message": body["errors"][0]["message"]}
    ]
    assert "integer" in body["errors"][0]["message"]
    refused(
        admin.put("/v1/leads/ann", json={"lead_id": "ann", "favourite_colour": "red"}),
        "favourite_colour",
    )
    refused(admin.put("/v1/leads/ann", json={"name": "Ann"}), "lead_id")
    refused(
        admin.put("/v1/leads/ann", json={"lead_id": "ann", "attributes": {"a": [1]}}),
        "attributes.a",
    )
    refused(
        admin.put("/v1/leads/ann", json={"lead_id": "ann", "created_at": "monday"}), "created_at"
    )
    refused(admin.put("/v1/leads/ann", json=["ann"]), "body")
    refused(
        admin.post("/v1/leads", json={"leads": [{"lead_id": "ok"}, {"lead_id": 7}]}),
        "leads.1.lead_id",
    )
    refused(admin.post("/v1/leads", json={"lead": []}), "leads")
    refused(
        admin.put("/v1/accounts/acme", json={"account_id": "acme", "employees": "lots"}),
        "employees",
    )
    refused(
        admin.post("/v1/accounts", json={"accounts": [{"account_id": "a", "size": 1}]}),
        "accounts.0.size",
    )
    refused(admin.post("/v1/leads/ann/worked", json={"note": 5}), "note")
    # Unknown fields are refused in the envelopes of batches too.
    refused(admin.post("/v1/leads", json={"leads": [], "dry_run": True}), "dry_run")
    refused(admin.post("/v1/accounts", json={"accounts": [], "upsert": 1}), "upsert")
    refused(admin.post("/v1/leads/ann/worked", json={"notes": "called"}), "notes")
    refused(admin.post("/v1/keys", json={"name": "k", "scopes": ["admin"], "ttl": 1}), "ttl")
    assert len(admin.get("/v1/keys").json()["items"]) == 2

    for raw in (b'{"lead_id": "ann", ', b"lead_id=ann", b'{"lead_id": "ann"}}'):
        r = admin.put("/v1/leads/ann", content=raw, headers={"content-type": "application/json"})
        body = refused(r, "body")
        assert "JSON" in body["detail"] and body["errors"][0]["field"] == "body"

    tracking = running.tracking
    refused(
        tracking.post("/v1/events", json=ev("e1", "ann", "page_view") | {"ts": "yesterday"}), "ts"
    )
    refused(tracking.post("/v1/events", json=ev("e1", "ann", "page_view") | {"ts": None}), "ts")
    refused(
        tracking.post(
            "/v1/events", json={k: v for k, v in ev("e1", "ann", "x").items() if k != "type"}
        ),
        "type",
    )
    refused(tracking.post("/v1/events", json=ev("e1", "ann", "page_view", value="high")), "value")
    refused(
        tracking.post("/v1/events", json=ev("e1", "ann", "page_view", referrer="x")), "referrer"
    )
    refused(tracking.post("/v1/events", json=ev("e1", "ghost", "page_view")), "lead_id")
    refused(tracking.post("/v1/events", json=ev("", "ann", "page_view")), "event_id")
    refused(tracking.post("/v1/events/batch", json={"events": []}), "events")
    refused(tracking.post("/v1/events/batch", json={"events": "e1"}), "events")
    refused(tracking.post("/v1/events", json=ev("e1", "ann", "page\x00view")), "type")

    # Values JSON allows but the store cannot hold are refused up front (not a 500 later).
    for raw, field in [
        (b'{"lead_id": "ann", "annual_revenue": NaN}', "annual_revenue"),
        (b'{"lead_id": "ann", "annual_revenue": 1e400}', "annual_revenue"),
        (b'{"lead_id": "ann", "annual_revenue": -Infinity}', "annual_revenue"),
        (b'{"lead_id": "ann", "attributes": {"score": NaN}}', "attributes.score"),
        (b'{"lead_id": "ann", "employees": 100000000000000000000}', "employees"),
        (b'{"lead_id": "ann", "name": "A\\u0000nn"}', "name"),
        (b'{"lead_id": "ann", "created_at": "0001-01-01T00:00:00+01:00"}', "created_at"),
    ]:
        r = admin.put("/v1/leads/ann", content=raw, headers={"content-type": "application/json"})
        refused(r, field)
    r = admin.post(
        "/v1/leads/ann/outcome",
        content=b'{"outcome": "won", "value": Infinity}',
        headers={"content-type": "application/json"},
    )
    refused(r, "value")
    assert admin.put("/v1/leads/ann", json={"lead_id": "ann", "employees": 2**63 - 1}).is_success
    assert admin.put("/v1/leads/ann", json={"lead_id": "ann", "employees": 10}).is_success

    # Nothing was written by any refused request.
    after = admin.get("/v1/leads/ann").json()["lead"]
    assert after == before
    assert admin.get("/v1/leads").json()["total"] == 1
    assert admin.get("/v1/accounts").json()["total"] == 0
    assert admin.get("/v1/events", params={"lead_id": "ann"}).json()["items"] == []
    assert admin.get("/v1/leads/ann/outcomes").json()["items"] == []


def test_an_event_batch_reports_each_item(running: Running) -> None:
    running.publish(STARTER)
    assert running.admin.put("/v1/leads/ann", json={"lead_id": "ann"}).status_code == 200
    r = running.tracking.post("/v1/events", json=ev("e0", "ann", "email_click"))
    assert r.status_code == 200, r.text
    batch = [
        ev("e1", "ann", "demo_request"),  # 0: good
        ev("bad-ts", "ann", "page_view") | {"ts": "last week"},  # 1: bad timestamp
        ev("e1", "ann", "demo_request"),  # 2: repeated within the batch
        ev("e-ghost", "ghost", "page_view"),  # 3: unknown lead
        ev("e2", "ann", "form_submit", url="/contact"),  # 4: good
        {k: v for k, v in ev("no-type", "ann", "x").items() if k != "type"},  # 5: no type
        ev("e-extra", "ann", "page_view", colour="red"),  # 6: unknown field
        ev("e0", "ann", "email_click"),  # 7: stored before
        {"lead_id": "ann", "type": "page_view", "ts": "2026-03-01T00:00:00Z"},  # 8: no id
    ]
    r = running.tracking.post("/v1/events/batch", json={"events": batch})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == ["e1", "e2"]
    assert report["duplicates"] == ["e1", "e0"]
    rejected = report["rejected"]
    assert [(x["index"], x["event_id"]) for x in rejected] == [
        (1, "bad-ts"),
        (3, "e-ghost"),
        (5, "no-type"),
        (6, "e-extra"),
        (8, None),
    ]
    for item, field in zip(rejected, ["ts", "lead_id", "type", "colour", "event_id"], strict=True):
        assert f"field '{field}'" in item["reason"], item
    assert "ghost" in rejected[1]["reason"]

    running.wait_idle()
    events = running.admin.get("/v1/events", params={"lead_id": "ann"}).json()["items"]
    assert sorted(e["event_id"] for e in events) == ["e0", "e1", "e2"]
    assert running.admin.get("/v1/events", params={"lead_id": "ghost"}).json()["items"] == []
    assert running.admin.get("/v1/leads/ghost").status_code == 404
    rules = {r["name"]: r["points"] for r in yaml.safe_load(STARTER)["behaviour"]["rules"]}
    expected = round((rules["demo_request"] + rules["form_submit"] + rules["email_click"]) * 0.9, 2)
    score = running.admin.get("/v1/leads/ann").json()["score"]
    assert score["behaviour"] == expected  # nine days into a 90-day linear decay

    # Sending the same batch again changes nothing.
    again = running.tracking.post("/v1/events/batch", json={"events": batch}).json()
    assert again["accepted"] == []
    assert again["duplicates"] == ["e1", "e1", "e2", "e0"]
    assert again["rejected"] == rejected
    assert count(running, t.events) == 3


# -- request size ---------------------------------------------------------------------------------


def test_bodies_over_the_limit_get_413_and_write_nothing(running: Running) -> None:
    limit = running.service.settings.max_request_bytes
    headers = {"content-type": "application/json"}

    # texts are at most 10,000 characters (service.bodies): the bytes go into many attributes
    blobs = {f"b{i}": "x" * 9000 for i in range(limit // 9020)}
    full = json.dumps({"leads": [{"lead_id": "big", "attributes": blobs}]})

    def body(size: int) -> bytes:
        # A valid batch of one lead with long attributes, padded to exactly `size` bytes.
        assert len(full) <= size
        return (full + " " * (size - len(full))).encode()

    def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    too_big = body(limit + 1)
    r = running.admin.post("/v1/leads", content=too_big, headers=headers)
    assert r.status_code == 413, r.text
    assert str(limit) in r.json()["detail"]
    r = running.admin.post("/v1/leads", content=chunked(too_big), headers=headers)
    assert r.status_code == 413, r.text
    assert str(limit) in r.json()["detail"]
    assert running.admin.get("/v1/leads/big").status_code == 404
    assert count(running, t.leads) == 0

    r = running.tracking.post(
        "/v1/events/batch",
        content=chunked(b'{"events": [' + b" " * limit + b"]}"),
        headers=headers,
    )
    assert r.status_code == 413, r.text
    assert count(running, t.events) == 0

    # The service still answers, and a body of exactly the limit is taken, chunked or not.
    assert running.admin.get("/v1/leads").status_code == 200
    r = running.admin.post("/v1/leads", content=body(limit), headers=headers)
    assert r.status_code == 200 and r.json()["created"] == ["big"], r.text
    r = running.admin.post("/v1/leads", content=chunked(body(limit)), headers=headers)
    assert r.status_code == 200 and r.json()["created"] == [], r.text
    stored = running.admin.get("/v1/leads/big").json()["lead"]
    assert stored["attributes"] == blobs


# -- transactions ---------------------------------------------------------------------------------


def test_a_batch_with_one_bad_lead_writes_nothing(running: Running) -> None:
    running.publish(STARTER)
    leads = [{"lead_id": "ok-1"}, {"lead_id": "ok-2", "employees": 100}, {"lead_id": "x" * 201}]
    r = running.admin.post("/v1/leads", json={"leads": leads})
    refused(r, "leads.2.lead_id")
    running.wait_idle()
    assert running.admin.get("/v1/leads").json()["total"] == 0
    assert count(running, t.leads) == count(running, t.scores) == count(running, t.dirty_leads) == 0
    # The longest id the store holds is fine.
    leads[2]["lead_id"] = "x" * 200
    r = running.admin.post("/v1/leads", json={"leads": leads})
    assert r.status_code == 200 and len(r.json()["created"]) == 3, r.text
    running.wait_idle()
    assert running.admin.get("/v1/leads").json()["total"] == count(running, t.scores) == 3


def test_a_failing_store_transaction_leaves_nothing_half_written(running: Running) -> None:
    running.publish(STARTER)
    store, now = running.service.store, running.clock()
    rows = [{"lead_id": "tx-1", "job_title": "CEO"}, {"lead_id": "tx-2"}]

    # A real database error midway: a second plain insert of a key written a moment before.
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        records.upsert_leads(conn, rows, now)
        records.mark_dirty(conn, ["tx-1", "tx-2"], "lead")
        assert len(records.lead_records(conn, ["tx-1", "tx-2"])) == 2  # written so far
        conn.execute(t.leads.insert(), {"lead_id": "tx-2", "attributes": {}, "updated_at": now})
    # Any other error inside the transaction rolls back too.
    with pytest.raises(RuntimeError), store.write() as conn:
        records.upsert_leads(conn, rows, now)
        event = {"event_id": "tx-e1", "lead_id": "tx-1", "type": "demo_request", "ts": T0}
        records.insert_events(conn, [event], now)
        raise RuntimeError("fail after the writes")

    running.wait_idle()
    for table in (t.leads, t.events, t.dirty_leads, t.scores):
        assert count(running, table) == 0, table.name
    assert running.admin.get("/v1/leads/tx-1").status_code == 404
    # The store is usable afterwards: the same rows go in cleanly.
    r = running.admin.post("/v1/leads", json={"leads": rows})
    assert r.status_code == 200 and r.json()["created"] == ["tx-1", "tx-2"], r.text
    running.wait_idle()
    assert running.admin.get("/v1/leads/tx-1").json()["score"]["fit"] == 20


# -- documentation --------------------------------------------------------------------------------


def test_docs_and_openapi_are_served_without_a_key(running: Running) -> None:
    r = running.anonymous.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in r.text and "/openapi.json" in r.text
    r = running.anonymous.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "leadscore"
    paths = spec["paths"]
    for path, methods in {
        "/v1/leads": {"get", "post"},
        "/v1/leads/{lead_id}": {"get", "put", "delete"},
        "/v1/leads/{lead_id}/export": {"get"},
        "/v1/leads/{lead_id}/outcome": {"post"},
        "/v1/leads/{lead_id}/outcomes": {"get"},
        "/v1/accounts": {"get", "post"},
        "/v1/accounts/{account_id}": {"get", "put", "delete"},
        "/v1/events": {"get", "post"},
        "/v1/events/batch": {"post"},
        "/v1/keys": {"get", "post"},
        "/v1/keys/{key_id}": {"delete"},
        "/v1/models": {"get", "post"},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    lead_schema = spec["components"]["schemas"]["LeadIn"]
    assert lead_schema["additionalProperties"] is False
    assert "employees" in lead_schema["properties"]


def test_nul_characters_in_urls_and_unknown_batch_fields_are_refused(running: Running) -> None:
    assert running.admin.get("/v1/leads/a%00b").status_code == 400
    assert running.admin.get("/v1/events", params={"lead_id": "a\x00"}).status_code == 400
    r = running.tracking.post("/v1/events/batch", json={"events": [], "more": 1})
    assert r.status_code == 422 and "more" in r.json()["detail"]
    r = running.admin.get("/v1/events", params={"lead_id": "x", "limit": -1})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    created = running.admin.post("/v1/keys", json={"name": "n", "scopes": ["tracking"]}).json()
    assert running.admin.delete(f"/v1/keys/{created['id']}").status_code == 200
