"""Guessing passwords is throttled per name and address, per address and per name overall, so
that guessing stays slow while a stranger's failures elsewhere lock nobody out; and the address
counted is the connection's own unless a proxy is configured (`leadscore serve` as users run it).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from leadscore.dashboard.auth import Throttle, address_key, create_user
from leadscore.store.database import open_store
from servicekit import Running

from .conftest import PASSWORD, USER

T = datetime(2026, 12, 2, 9, 0)
LEADSCORE = Path(sys.executable).with_name("leadscore")


def _try(
    client: httpx.Client, username: str, password: str, address: str | None = None
) -> httpx.Response:
    headers = {"x-forwarded-for": address} if address else {}
    form = client.get("/ui/login", headers=headers)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": username, "password": password, "csrf": token.group(1)}
    return client.post("/ui/login", data=data, headers=headers)


def test_five_wrong_passwords_make_the_name_wait_fifteen_minutes(running: Running) -> None:
    with httpx.Client(base_url=running.base_url) as client:
        for _ in range(5):
            assert _try(client, USER, "not the password").status_code == 401
        refused = _try(client, USER, PASSWORD)  # even the right one: the name is locked
        assert refused.status_code == 429
        assert "Too many failed sign-ins; try again in 15 min." in refused.text
        assert "ls_session" not in refused.cookies
        running.clock.advance(minutes=15)
        done = _try(client, USER, PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/ui/queue"
        assert client.get("/ui/queue").status_code == 200


def test_the_wait_counts_from_the_oldest_failure_in_the_window() -> None:
    throttle = Throttle(limit=3, window=timedelta(minutes=10))
    for minute in (0, 4, 8):
        assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=minute)) == 0
        throttle.failed("maria", "10.0.0.1", T + timedelta(minutes=minute))
    assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=9)) == 60  # until minute 10
    assert throttle.wait("MARIA", "10.0.0.1", T + timedelta(minutes=9)) == 60  # names ignore case
    assert throttle.wait("jonas", "10.0.0.1", T + timedelta(minutes=9)) == 0  # address: limit 12
    assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=10)) == 0


def test_a_strangers_failures_elsewhere_do_not_lock_the_user_out() -> None:
    throttle = Throttle(limit=5, window=timedelta(minutes=15))
    for _ in range(50):
        throttle.failed("admin", "203.0.113.9", T)
    assert throttle.wait("admin", "203.0.113.9", T) == 900  # the stranger waits
    assert throttle.wait("admin", "198.51.100.7", T) == 0  # the admin at their desk does not


def test_one_address_trying_many_names_is_stopped_too() -> None:
    throttle = Throttle(limit=2, window=timedelta(minutes=10))
    for i in range(8):
        throttle.failed(f"name{i}", "10.0.0.9", T)
    assert throttle.wait("someone-else", "10.0.0.9", T) == 600
    assert throttle.wait("someone-else", "10.0.0.8", T) == 0


def test_many_addresses_guessing_one_name_stop_except_where_the_user_signs_in() -> None:
    throttle = Throttle(limit=5, window=timedelta(minutes=15), per_name=100)
    throttle.succeeded("admin", "198.51.100.7", T - timedelta(days=3))  # the admin's desk
    throttle.succeeded("admin", "198.51.100.8", T - timedelta(days=31))  # long ago
    for i in range(100):  # a botnet: four tries from each of 25 addresses
        address = f"192.0.2.{i // 4}"
        assert throttle.wait("admin", address, T) == 0
        throttle.failed("admin", address, T)
    assert throttle.wait("admin", "192.0.2.200", T) == 900  # the 26th address waits at once
    assert throttle.wait("admin", "198.51.100.7", T) == 0  # the desk it signs in from does not
    assert throttle.wait("admin", "198.51.100.8", T) == 900  # 30 days: forgotten
    assert throttle.wait("maria", "192.0.2.200", T) == 0  # other names are not concerned


def test_an_ipv6_machine_counts_as_one_address_across_its_64_network() -> None:
    throttle = Throttle(limit=2, window=timedelta(minutes=10))
    for i in range(8):  # a machine's /64 has 2**64 addresses to rotate through
        throttle.failed(f"name{i}", f"2001:db8:1:2::{i + 1:x}", T)
    assert throttle.wait("other", "2001:db8:1:2:ffff::1", T) == 600
    assert throttle.wait("other", "2001:db8:1:3::1", T) == 0
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("testclient") == "testclient"


def test_a_right_password_clears_the_pairs_failures() -> None:
    throttle = Throttle(limit=2, window=timedelta(minutes=10))
    throttle.failed("maria", "10.0.0.1", T)
    throttle.succeeded("maria", "10.0.0.1", T)
    throttle.failed("maria", "10.0.0.1", T)
    assert throttle.wait("maria", "10.0.0.1", T) == 0


def test_the_counts_stay_bounded_in_memory() -> None:
    throttle = Throttle(limit=5, window=timedelta(minutes=15), max_entries=1000)
    for i in range(5000):
        throttle.failed(f"name{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", T)
    assert len(throttle._failures) <= 1000
    for i in range(5000):
        throttle.succeeded(f"name{i}", "10.0.0.1", T)
    assert len(throttle._known) <= 1000


# -- as `leadscore serve` runs: whose address counts --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(tmp_path: Path, *extra: str) -> Iterator[httpx.Client]:
    db = f"sqlite:///{tmp_path}/leadscore.db"
    store = open_store(db)
    with store.write() as conn:
        create_user(conn, USER, PASSWORD, admin=True, now=datetime.now())
    store.close()
    port = _free_port()
    log = tmp_path / "serve.log"
    command = [str(LEADSCORE), "serve", "--db", db, "--port", str(port), "--rescore-every", "0"]
    with log.open("ab") as out:
        proc = subprocess.Popen([*command, *extra], stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
            yield client
    finally:
        proc.terminate()
        proc.wait(20)


def test_serve_counts_the_connections_address_whatever_x_forwarded_for_says(
    tmp_path: Path,
) -> None:
    with _serve(tmp_path) as client:
        for i in range(5):  # a new made-up address each time: it does not count
            assert _try(client, USER, "not the password", f"192.0.2.{i}").status_code == 401
        assert _try(client, USER, PASSWORD, "192.0.2.99").status_code == 429
        wrong = "not the password"
        for i in range(15):  # nor can one address pass for many to try many names
            assert _try(client, f"user{i}", wrong, f"198.51.100.{i}").status_code == 401
        assert _try(client, "user99", wrong, "198.51.100.99").status_code == 429
        # nor does a made-up https make the cookie Secure (the connection is plain http)
        fresh = httpx.Client(base_url=client.base_url)
        with fresh:
            form = fresh.get("/ui/login", headers={"x-forwarded-proto": "https"})
        assert "secure" not in form.headers["set-cookie"].lower()


def test_behind_a_configured_proxy_each_client_counts_and_cookies_are_secure(
    tmp_path: Path,
) -> None:
    with _serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1") as client:
        for _ in range(5):
            assert _try(client, USER, "not the password", "203.0.113.9").status_code == 401
        assert _try(client, USER, PASSWORD, "203.0.113.9").status_code == 429
        headers = {"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
        form = client.get("/ui/login", headers=headers)
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        assert "; secure" in form.headers["set-cookie"].lower()
        # httpx keeps Secure cookies for https only: send the form's cookie by hand
        login_cookie = form.headers["set-cookie"].split(";", 1)[0]
        done = client.post(
            "/ui/login",
            data={"username": USER, "password": PASSWORD, "csrf": token.group(1)},
            headers={**headers, "cookie": login_cookie},
        )
        assert done.status_code == 303, done.text  # the real user, elsewhere, gets in
        session = [c for c in done.headers.get_list("set-cookie") if c.startswith("ls_session=")]
        assert len(session) == 1 and "; secure" in session[0].lower()
        assert "httponly" in session[0].lower() and "samesite=lax" in session[0].lower()
