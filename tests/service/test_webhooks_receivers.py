"""Hostile and broken receivers on 127.0.0.1: one that never answers, one that answers a
byte at a time, one whose error page is a script. None may hold up other webhooks, hold a
worker past the deadline, or get its body stored and shown."""

from __future__ import annotations

import contextlib
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest

from leadscore.dashboard.auth import create_user
from leadscore.service import urls
from leadscore.service import webhooks as wh
from leadscore.store.database import Store, open_store
from servicekit import Receiver, Running

T0 = datetime(2025, 3, 1, 12, 0, 0)
SECRET = "s3cret-for-tests-0123456789"
LOCAL = urls.Policy(["127.0.0.1"])
HOSTILE = (
    "<script>alert(1)</script>\x1b[31m red \u202eevil\u202c\r\nX-Injected: 1\x00 " + "A" * 200_000
)


class RawServer:
    """A TCP server on 127.0.0.1 that hands every connection to `serve` on its own thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.serve = serve
        self.connections = 0
        self.closing = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        # OSError: the client gave up, which is the point
        with conn, contextlib.suppress(OSError):
            self.serve(conn)

    def close(self) -> None:
        self.closing.set()
        self.thread.join(5)
        self.sock.close()


def read_request(conn: socket.socket) -> None:
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += conn.recv(65536)


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for server in made:
        server.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    yield store
    store.close()


def hook(store: Store, url: str) -> int:
    with store.write() as conn:
        return int(wh.create_webhook(conn, url, ["score_changed"], SECRET, T0, policy=LOCAL)["id"])


def announce(store: Store, n: int) -> None:
    with store.write() as conn:
        subs = wh.Subscriptions.load(conn)
        subs.enqueue_many(
            conn, [wh.Notification("score_changed", f"L{i}", {"n": i}, T0) for i in range(n)]
        )


def log(store: Store, webhook_id: int) -> list[dict[str, object]]:
    with store.read() as conn:
        return wh.deliveries(conn, webhook_id, 100)


def answer_500_hostile(conn: socket.socket) -> None:
    read_request(conn)
    body = HOSTILE.encode()
    conn.sendall(
        b"HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_an_error_body_is_kept_as_a_short_sanitised_excerpt(
    store: Store, servers: list[RawServer]
) -> None:
    servers.append(RawServer(answer_500_hostile))
    webhook_id = hook(store, servers[0].url())
    announce(store, 1)
    deliverer = wh.Deliverer(store, lambda: T0, policy=LOCAL, timeout=5.0)
    try:
        assert deliverer.deliver_due() == 1
    finally:
        deliverer.stop()
    (row,) = log(store, webhook_id)
    error = str(row["last_error"])
    assert row["last_status"] == 500
    assert error.startswith("HTTP 500: <script>alert(1)</script> [31m red evil X-Injected: 1 AAA")
    assert len(error) <= len("HTTP 500: ") + wh.EXCERPT_CHARS
    assert error.isprintable() and "\u202e" not in error and "\x1b" not in error


def sign_in(running: Running) -> httpx.Client:
    with running.service.store.write() as conn:
        create_user(conn, "maria", "correct horse battery", admin=True, now=running.clock())
    client = httpx.Client(base_url=running.base_url, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": "maria", "password": "correct horse battery", "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    return client


def test_the_delivery_log_page_shows_the_excerpt_escaped(
    running: Running, servers: list[RawServer]
) -> None:
    servers.append(RawServer(answer_500_hostile))
    made = running.admin.post("/v1/webhooks", json={"url": servers[0].url()})
    assert made.status_code == 201, made.text
    webhook_id = made.json()["id"]
    with running.service.store.write() as conn:
        wh.Subscriptions.load(conn).enqueue(conn, "score_changed", "L1", {}, running.clock())
    running.service.deliverer.wake()
    deadline = time.monotonic() + 15
    while not running.admin.get(f"/v1/webhooks/{webhook_id}/deliveries").json()[0]["attempts"]:
        assert time.monotonic() < deadline, "the delivery was not attempted"
        time.sleep(0.05)
    (row,) = running.admin.get(f"/v1/webhooks/{webhook_id}/deliveries").json()
    assert len(row["last_error"]) <= len("HTTP 500: ") + wh.EXCERPT_CHARS
    client = sign_in(running)
    try:
        page = client.get(f"/ui/settings/webhooks/{webhook_id}")
    finally:
        client.close()
    assert page.status_code == 200
    assert "HTTP 500: &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text and "AAAAA" * 30 not in page.text


def never_answer(conn: socket.socket) -> None:
    read_request(conn)
    conn.settimeout(None)
    conn.recv(1)  # until the client hangs up


def test_a_hanging_receiver_delays_no_other_webhook(store: Store, servers: list[RawServer]) -> None:
    servers.append(RawServer(never_answer))
    hanging = hook(store, servers[0].url())
    fast_receiver = Receiver()
    try:
        fast = hook(store, fast_receiver.url())
        announce(store, 5)  # five for each, the hanging one's first
        deliverer = wh.Deliverer(store, lambda: T0, policy=LOCAL, timeout=4.0, rng=random.Random(1))
        started = time.monotonic()
        deliverer.start()
        try:
            while len(fast_receiver.requests) < 5:
                assert time.monotonic() - started < 4, "the fast receiver was held up"
                time.sleep(0.01)
            # All five arrived while the hanging receiver still held its first delivery.
            assert [d["attempts"] for d in log(store, hanging)] == [0] * 5
            while any(d["attempts"] == 0 for d in log(store, hanging)):
                assert time.monotonic() - started < 15, "the hanging receiver's round did not end"
                time.sleep(0.02)
            took = time.monotonic() - started
        finally:
            deliverer.stop()
    finally:
        fast_receiver.close()
    assert [d["status"] for d in log(store, fast)] == ["delivered"] * 5
    # One request timed out (once, not per delivery); the rest of the round was not sent.
    assert servers[0].connections == 1
    assert 4.0 <= took < 7.0  # one timeout, not five
    rows = sorted(log(store, hanging), key=lambda d: int(str(d["id"])))
    assert str(rows[0]["last_error"]).startswith("ReadTimeout")
    for row in rows[1:]:
        assert row["attempts"] == 1 and row["status"] == "pending"
        assert str(row["last_error"]).startswith(f"not sent: delivery {rows[0]['id']} to this")


def trickle(conn: socket.socket) -> None:
    read_request(conn)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Slow: " + b"z" * 200 + b"\r\n\r\nok"
    for byte in answer:
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


def test_a_receiver_sending_a_byte_at_a_time_is_cut_at_the_deadline(
    store: Store, servers: list[RawServer]
) -> None:
    servers.append(RawServer(trickle))
    webhook_id = hook(store, servers[0].url())
    announce(store, 1)
    deliverer = wh.Deliverer(store, lambda: T0, policy=LOCAL, timeout=1.5)
    try:
        started = time.monotonic()
        assert deliverer.deliver_due() == 1
        took = time.monotonic() - started
    finally:
        deliverer.stop()
    # Every read came within 0.2 s, far below the timeout: only a total deadline ends it.
    assert 1.5 <= took < 3.0
    (row,) = log(store, webhook_id)
    assert row["status"] == "pending" and str(row["last_error"]).startswith("ReadTimeout")
