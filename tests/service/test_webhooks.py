"""Webhooks end to end: the outbox on a real database, delivery to a real HTTP receiver."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import itertools
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore.service import urls
from leadscore.service import webhooks as wh
from leadscore.store import tables as t
from leadscore.store.database import Store, open_store
from servicekit import Received, Receiver

T0 = datetime(2025, 3, 1, 12, 0, 0)
SECRET = "s3cret-for-tests-0123456789"
# The receivers run on 127.0.0.1, which the server refuses unless allowed.
LOCAL = urls.Policy(["127.0.0.1"])


class FakeClock:
    """A clock that stands still until told otherwise."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    yield store
    store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


MakeDeliverer = Callable[..., wh.Deliverer]


@pytest.fixture
def make_deliverer(store: Store, clock: FakeClock) -> Iterator[MakeDeliverer]:
    made: list[wh.Deliverer] = []

    def make(**options: Any) -> wh.Deliverer:
        options = {"timeout": 2.0, "rng": random.Random(7), "policy": LOCAL, **options}
        deliverer = wh.Deliverer(options.pop("store", store), clock, **options)
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        deliverer.stop()


def add_webhook(store: Store, url: str, topics: list[str] | None = None) -> int:
    with store.write() as conn:
        webhook_id: int = wh.create_webhook(conn, url, topics, SECRET, T0, policy=LOCAL)["id"]
    return webhook_id


def announce(
    store: Store, topic: str, data: dict[str, Any], now: datetime = T0, lead_id: str = "L1"
) -> int:
    with store.write() as conn:
        return wh.Subscriptions.load(conn).enqueue(conn, topic, lead_id, data, now)


def log(store: Store, webhook_id: int, status: str | None = None) -> list[dict[str, Any]]:
    with store.read() as conn:
        return wh.deliveries(conn, webhook_id, 100, status)


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]


# ---------------------------------------------------------------- webhooks


def test_create_webhook_generates_a_secret_and_lists_without_it(store: Store) -> None:
    with store.write() as conn:
        made = wh.create_webhook(conn, " https://example.com/in ", None, None, T0)
        chosen = wh.create_webhook(
            conn, "http://example.com:8080/x?a=1", ["sla_met", "score_changed", "sla_met"], None, T0
        )
    assert made["url"] == "https://example.com/in"
    assert made["topics"] == list(wh.TOPICS)
    assert made["active"] is True and made["created_at"] == T0
    assert len(made["secret"]) >= 40 and made["secret"] != chosen["secret"]
    # Canonical order, each once, however they were given.
    assert chosen["topics"] == ["score_changed", "sla_met"]
    with store.read() as conn:
        listed = wh.list_webhooks(conn)
        assert [w["id"] for w in listed] == [made["id"], chosen["id"]]
        assert all("secret" not in w for w in listed)
        assert wh.get_webhook(conn, made["id"], include_secret=True) == made
        assert wh.get_webhook(conn, 999) is None


@pytest.mark.parametrize(
    ("url", "topics", "secret", "field"),
    [
        ("ftp://example.com/x", None, None, "url"),
        ("example.com/hook", None, None, "url"),
        ("http://", None, None, "url"),
        ("http://exa mple.com/", None, None, "url"),
        ("http://example.com:99999/", None, None, "url"),
        ("https://example.com/", ["score_changed", "lead_created"], None, "topics"),
        ("https://example.com/", [], None, "topics"),
        ("https://example.com/", None, "short", "secret"),
    ],
)
def test_create_webhook_rejects_bad_input_naming_the_field(
    store: Store, url: str, topics: list[str] | None, secret: str | None, field: str
) -> None:
    with store.write() as conn, pytest.raises(ValueError, match=rf"^{field}: "):
        wh.create_webhook(conn, url, topics, secret, T0)
    with store.read() as conn:
        assert wh.list_webhooks(conn) == []


def test_deliveries_rejects_an_unknown_status(store: Store) -> None:
    with store.read() as conn, pytest.raises(ValueError, match=r"^status: "):
        wh.deliveries(conn, 1, 10, "sent")


# ---------------------------------------------------------------- the outbox


def test_no_subscribers_costs_no_statement_beyond_the_load(store: Store) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.write() as conn:
            subs = wh.Subscriptions.load(conn)
            loaded = len(statements)
            assert not subs.wants("score_changed")
            # Not even encoded: an unencodable payload would raise if it were.
            assert subs.enqueue(conn, "score_changed", "L1", {"x": object()}, T0) == 0
            assert subs.enqueue_many(conn, [wh.Notification("sla_met", "L1", {}, T0)] * 3) == 0
            assert len(statements) == loaded
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def test_topic_filtering(store: Store, receiver: Receiver, make_deliverer: MakeDeliverer) -> None:
    stages = add_webhook(store, receiver.url("/stages"), ["stage_changed"])
    everything = add_webhook(store, receiver.url("/all"))
    with store.write() as conn:
        subs = wh.Subscriptions.load(conn)
        assert subs.wants("score_changed") and subs.wants("stage_changed")
        assert subs.enqueue(conn, "score_changed", "L1", {"total": 12.5}, T0) == 1
        assert subs.enqueue(conn, "stage_changed", "L1", {"to": "MQL"}, T0) == 2
    assert make_deliverer().deliver_due() == 3
    by_path = sorted((r.path, r.headers["x-leadscore-topic"]) for r in receiver.requests)
    assert by_path == [
        ("/all", "score_changed"),
        ("/all", "stage_changed"),
        ("/stages", "stage_changed"),
    ]
    assert [d["topic"] for d in log(store, stages)] == ["stage_changed"]
    assert sorted(d["topic"] for d in log(store, everything, "delivered")) == [
        "score_changed",
        "stage_changed",
    ]
    # One event, two subscribers: the same event id, two delivery ids.
    stage_requests = [r for r in receiver.requests if r.json["topic"] == "stage_changed"]
    assert len({r.json["id"] for r in stage_requests}) == 1
    assert len({r.headers["x-leadscore-delivery"] for r in stage_requests}) == 2


def test_inactive_webhooks_get_nothing(store: Store) -> None:
    webhook_id = add_webhook(store, "https://example.com/")
    with store.write() as conn:
        conn.execute(t.webhooks.update().values(active=False))
    assert announce(store, "score_changed", {}) == 0
    assert log(store, webhook_id) == []


def test_enqueue_many_writes_one_row_per_event_and_subscriber(store: Store) -> None:
    scores = add_webhook(store, "https://example.com/a", ["score_changed"])
    slas = add_webhook(store, "https://example.com/b", ["score_changed", "sla_breached"])
    events = [
        wh.Notification("score_changed", "L1", {"total": 1.0}, T0),
        wh.Notification("stage_changed", "L1", {"to": "SQL"}, T0),
        wh.Notification("sla_breached", "L2", {"task_id": 3}, T0 + timedelta(seconds=1)),
    ]
    with store.write() as conn:
        subs = wh.Subscriptions.load(conn)
        assert subs.enqueue_many(conn, events) == 3
        with pytest.raises(ValueError, match=r"^topic: "):
            subs.enqueue(conn, "lead_created", "L1", {}, T0)
    assert [d["lead_id"] for d in log(store, scores)] == ["L1"]
    assert [(d["topic"], d["lead_id"]) for d in log(store, slas)] == [
        ("sla_breached", "L2"),
        ("score_changed", "L1"),
    ]


# ---------------------------------------------------------------- delivery


def test_a_delivery_is_signed_and_recorded(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    as_of = datetime(2025, 2, 28, 23, 59, 59, 250000)
    assert announce(store, "score_changed", {"lead_id": "L1", "as_of": as_of, "total": 42.0}) == 1
    clock.now = T0 + timedelta(seconds=3)
    assert make_deliverer().deliver_due() == 1

    request = only(receiver.requests)
    delivery = only(log(store, webhook_id))
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-leadscore-topic"] == "score_changed"
    assert headers["x-leadscore-delivery"] == str(delivery["id"])
    timestamp = headers["x-leadscore-timestamp"]
    assert timestamp == str(calendar.timegm(clock.now.timetuple()))

    # The receiver's recipe from the module docstring, spelt out.
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-leadscore-signature"], "sha256=" + expected)
    sent_at = int(timestamp)
    signature = headers["x-leadscore-signature"]
    assert wh.verify_signature(SECRET, timestamp, request.body, signature, now=sent_at + 60)
    assert not wh.verify_signature(
        "another secret!!", timestamp, request.body, signature, now=sent_at
    )
    assert not wh.verify_signature(SECRET, timestamp, request.body + b" ", signature, now=sent_at)
    assert not wh.verify_signature(SECRET, timestamp, request.body, signature, now=sent_at + 301)
    assert not wh.verify_signature(SECRET, "yesterday", request.body, signature)

    body = request.json
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["topic"] == "score_changed"
    assert body["created_at"] == "2025-03-01T12:00:00Z"
    assert body["data"] == {"lead_id": "L1", "as_of": "2025-02-28T23:59:59.250000Z", "total": 42.0}

    assert delivery["payload"] == body
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last_status"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] == clock.now
    assert delivery["next_attempt_at"] is None
    # Delivered means done: nothing is sent twice.
    assert make_deliverer().deliver_due() == 0
    assert len(receiver.requests) == 1


def test_failures_back_off_exponentially_then_deliver(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    receiver.fail_first = 3
    webhook_id = add_webhook(store, receiver.url())
    announce(store, "stage_changed", {"to": "MQL"})
    deliverer = make_deliverer(base_delay=10.0, max_attempts=8)

    delays: list[float] = []
    for attempt in (1, 2, 3):
        assert deliverer.deliver_due() == 1
        delivery = only(log(store, webhook_id))
        assert delivery["status"] == "pending"
        assert delivery["attempts"] == attempt
        assert delivery["last_status"] == 500
        assert delivery["last_error"] == "HTTP 500: internal error"
        delay = (delivery["next_attempt_at"] - clock.now).total_seconds()
        nominal = 10.0 * 2 ** (attempt - 1)
        assert nominal <= delay <= nominal * 1.1
        delays.append(delay)
        # Not due yet: nothing is sent a moment early.
        clock.now = delivery["next_attempt_at"] - timedelta(microseconds=1)
        assert deliverer.deliver_due() == 0
        clock.now = delivery["next_attempt_at"]
    for earlier, later in itertools.pairwise(delays):
        assert 2 / 1.1 <= later / earlier <= 2 * 1.1

    assert deliverer.deliver_due() == 1
    delivery = only(log(store, webhook_id))
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 4
    assert delivery["last_status"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] == clock.now
    # Retries resend the same delivery, byte for byte, freshly signed.
    assert len(receiver.requests) == 4
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["x-leadscore-delivery"] for r in receiver.requests}) == 1


def test_a_delivery_fails_after_max_attempts(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    receiver.fail_first = 1000
    webhook_id = add_webhook(store, receiver.url())
    announce(store, "sla_breached", {"task_id": 1})
    deliverer = make_deliverer(base_delay=10.0, max_delay=15.0, max_attempts=3)

    assert deliverer.deliver_due() == 1
    first = only(log(store, webhook_id))
    assert 10.0 <= (first["next_attempt_at"] - clock.now).total_seconds() <= 11.0
    clock.now = first["next_attempt_at"]
    assert deliverer.deliver_due() == 1
    second = only(log(store, webhook_id))
    # Capped at max_delay (plus jitter) instead of doubling to 20.
    assert 15.0 <= (second["next_attempt_at"] - clock.now).total_seconds() <= 16.5
    clock.now = second["next_attempt_at"]
    assert deliverer.deliver_due() == 1

    failed = only(log(store, webhook_id, "failed"))
    assert failed["attempts"] == 3
    assert failed["last_status"] == 500
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None
    assert log(store, webhook_id, "pending") == []
    clock.now += timedelta(days=30)
    assert deliverer.deliver_due() == 0
    assert len(receiver.requests) == 3


def test_a_network_error_is_recorded_and_retried(
    store: Store, clock: FakeClock, make_deliverer: MakeDeliverer
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    webhook_id = add_webhook(store, f"http://127.0.0.1:{port}/hook")
    announce(store, "score_changed", {})
    assert make_deliverer(base_delay=5.0).deliver_due() == 1
    delivery = only(log(store, webhook_id))
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status"] is None
    assert delivery["last_error"].startswith("ConnectError")
    assert 5.0 <= (delivery["next_attempt_at"] - clock.now).total_seconds() <= 5.5


def test_a_deleted_webhook_gets_nothing_more(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    receiver.fail_first = 1
    webhook_id = add_webhook(store, receiver.url())
    other = add_webhook(store, receiver.url("/other"), ["sla_met"])
    announce(store, "score_changed", {})
    deliverer = make_deliverer()
    assert deliverer.deliver_due() == 1  # fails, so a retry is pending
    announce(store, "score_changed", {})
    announce(store, "sla_met", {})
    with store.write() as conn:
        assert wh.delete_webhook(conn, webhook_id)
        assert not wh.delete_webhook(conn, webhook_id)
        assert wh.Subscriptions.load(conn).enqueue(conn, "score_changed", "L1", {}, T0) == 0
    assert log(store, webhook_id) == []
    clock.now += timedelta(hours=1)
    assert deliverer.deliver_due() == 1
    assert [r.path for r in receiver.requests] == ["/hook", "/other"]
    assert only(log(store, other))["status"] == "delivered"


def test_deliveries_whose_webhook_vanished_are_dropped(
    store: Store, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    announce(store, "score_changed", {})
    with store.write() as conn:
        conn.execute(t.webhooks.delete())
    assert make_deliverer().deliver_due() == 0
    assert receiver.requests == []
    assert log(store, webhook_id) == []


def test_deleting_a_webhook_while_its_delivery_is_in_flight(
    store: Store, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    announce(store, "score_changed", {})

    def delete(_: Received) -> None:
        # Would wait out the client timeout if the deliverer held a write transaction.
        with store.write() as conn:
            wh.delete_webhook(conn, webhook_id)

    receiver.on_request = delete
    started = time.monotonic()
    assert make_deliverer(timeout=30.0).deliver_due() == 1
    assert time.monotonic() - started < 15.0  # far below the client timeout it would wait out
    assert len(receiver.requests) == 1
    assert log(store, webhook_id) == []
    with store.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.webhook_deliveries)).scalar() == 0
        )


def test_batches_are_oldest_first_and_bounded(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    for i in range(5):
        announce(store, "score_changed", {"n": i}, now=T0 + timedelta(seconds=i))
    clock.now = T0 + timedelta(minutes=1)
    deliverer = make_deliverer(batch=2)
    assert [deliverer.deliver_due() for _ in range(4)] == [2, 2, 1, 0]
    assert [r.json["data"]["n"] for r in receiver.requests] == [0, 1, 2, 3, 4]
    assert len(log(store, webhook_id, "delivered")) == 5
    with store.read() as conn:
        assert [d["payload"]["data"]["n"] for d in wh.deliveries(conn, webhook_id, 2)] == [4, 3]


class ReadsThen:
    """A store whose reads run `after` once they end: another process slipping in."""

    def __init__(self, store: Store, after: Callable[[], object]) -> None:
        self.store = store
        self.after = after

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.store.read() as conn:
            yield conn
        self.after()

    def write(self) -> AbstractContextManager[sa.Connection]:
        return self.store.write()


def test_a_delivery_read_by_two_deliverers_is_sent_by_one(
    database_url: str, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    store = open_store(database_url)
    arrived, release = threading.Event(), threading.Event()

    def hold_the_first(_: Received) -> None:
        if not arrived.is_set():
            arrived.set()
            release.wait(10)

    try:
        webhook_id = add_webhook(store, receiver.url())
        for i in range(3):
            announce(store, "score_changed", {"n": i})
        second = make_deliverer(store=store)
        sending = threading.Thread(target=second.deliver_due, daemon=True)

        def second_claims_and_starts_sending() -> None:
            sending.start()
            assert arrived.wait(10)

        receiver.on_request = hold_the_first
        # The first reads the due rows; before it claims them the second claims them all
        # and is still sending (so they are still pending) when the first tries.
        first = make_deliverer(store=ReadsThen(store, second_claims_and_starts_sending))
        assert first.deliver_due() == 0
        release.set()
        sending.join(10)
        assert sorted(r.json["data"]["n"] for r in receiver.requests) == [0, 1, 2]
        assert len(log(store, webhook_id, "delivered")) == 3
    finally:
        release.set()
        store.close()


def test_two_deliverers_never_send_the_same_delivery(
    database_url: str, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    store = open_store(database_url)
    try:
        webhook_id = add_webhook(store, receiver.url())
        with store.write() as conn:
            subs = wh.Subscriptions.load(conn)
            events = [wh.Notification("score_changed", f"L{i}", {}, T0) for i in range(30)]
            assert subs.enqueue_many(conn, events) == 30
        # Separate stores stand for separate processes sharing the database.
        other = open_store(database_url)
        try:
            deliverers = [make_deliverer(store=s, batch=4) for s in (store, other)]
            sent = [0, 0]

            def run(i: int) -> None:
                while (n := deliverers[i].deliver_due()) or log(store, webhook_id, "pending"):
                    sent[i] += n

            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            other.close()
        ids = [r.headers["x-leadscore-delivery"] for r in receiver.requests]
        assert len(ids) == len(set(ids)) == 30 == sum(sent)
        assert len(log(store, webhook_id, "delivered")) == 30
    finally:
        store.close()


def test_the_thread_delivers_promptly_on_wake(
    store: Store, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    # A poll interval this long means only wake() can explain a prompt delivery.
    deliverer = make_deliverer(poll_interval=60.0)
    deliverer.start()
    with pytest.raises(RuntimeError):
        deliverer.start()
    time.sleep(0.05)  # let the first (empty) round pass, so the thread is waiting
    announce(store, "score_changed", {})
    started = time.monotonic()
    deliverer.wake()
    # far below the 60 s poll interval: only wake() explains it (bounds generous for busy CI)
    assert receiver.got.wait(15.0)
    assert time.monotonic() - started < 15.0
    deadline = time.monotonic() + 15.0
    while not log(store, webhook_id, "delivered") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert only(log(store, webhook_id))["status"] == "delivered"
    started = time.monotonic()
    deliverer.stop()
    assert time.monotonic() - started < 15.0


def test_stopping_mid_batch_hands_the_rest_back_at_once(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    for i in range(3):
        announce(store, "score_changed", {"n": i})
    arrived, release = threading.Event(), threading.Event()

    def hold(_: Received) -> None:
        arrived.set()
        release.wait(10)

    receiver.on_request = hold
    deliverer = make_deliverer()
    deliverer.start()
    try:
        assert arrived.wait(5)
        stopping = threading.Thread(target=deliverer.stop)
        stopping.start()
        time.sleep(0.1)  # stop() has asked; the first request is still in flight
    finally:
        release.set()
    stopping.join(5)
    assert not stopping.is_alive()
    assert len(receiver.requests) == 1
    rows = {d["payload"]["data"]["n"]: d for d in log(store, webhook_id)}
    assert rows[0]["status"] == "delivered"
    for n in (1, 2):
        # Unsent and unpenalised, due now rather than when the claim would have lapsed.
        assert rows[n]["status"] == "pending"
        assert rows[n]["attempts"] == 0
        assert rows[n]["next_attempt_at"] == clock.now


def test_prune_deliveries_keeps_pending_and_recent(
    store: Store, clock: FakeClock, receiver: Receiver, make_deliverer: MakeDeliverer
) -> None:
    webhook_id = add_webhook(store, receiver.url())
    announce(store, "score_changed", {"n": 1}, now=T0)
    announce(store, "score_changed", {"n": 3}, now=T0 + timedelta(days=2))
    clock.now = T0 + timedelta(days=2)
    assert make_deliverer().deliver_due() == 2
    announce(store, "score_changed", {"n": 2}, now=T0)  # old, but not yet sent
    with store.write() as conn:
        assert wh.prune_deliveries(conn, T0 + timedelta(days=1)) == 1
    assert sorted(d["payload"]["data"]["n"] for d in log(store, webhook_id)) == [2, 3]


def test_deliverer_rejects_nonsense_settings(store: Store, clock: FakeClock) -> None:
    for options in ({"base_delay": 0.0}, {"max_delay": 1.0}, {"max_attempts": 0}, {"batch": 0}):
        with pytest.raises(ValueError):
            wh.Deliverer(store, clock, **options)  # type: ignore[arg-type]
