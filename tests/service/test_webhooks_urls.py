"""Which URLs the server will call: refused by default, allowed by name, checked again when it
connects (after DNS), on real receivers on 127.0.0.1."""

from __future__ import annotations

import html
import ipaddress
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from leadscore.dashboard.auth import create_user
from leadscore.service import urls
from leadscore.service import webhooks as wh
from leadscore.service.app import Settings
from leadscore.store import tables as t
from leadscore.store.database import Store, open_store
from servicekit import ManualClock, Receiver, Running, running_service

T0 = datetime(2025, 3, 1, 12, 0, 0)
SECRET = "s3cret-for-tests-0123456789"
LEADSCORE = Path(sys.executable).with_name("leadscore")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    yield store
    store.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


REFUSED = [
    # the probe's list
    ("http://127.0.0.1/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "local or metadata name"),
    ("http://[::1]:8080/", "loopback"),
    ("http://[fd00::1]/", "unique-local"),
    ("http://[fd12:3456::9]/", "unique-local"),
    ("http://0x7f000001/", "127.0.0.1 is a loopback"),
    ("http://2130706433/", "127.0.0.1 is a loopback"),
    # the same class, other spellings and ranges
    ("http://127.1/", "127.0.0.1 is a loopback"),
    ("http://0x7f.1/", "127.0.0.1 is a loopback"),
    ("http://017700000001/", "127.0.0.1 is a loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:127.0.0.1]/", "carrying 127.0.0.1"),
    ("http://[::ffff:a9fe:a9fe]/", "carrying 169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/", "carrying 169.254.169.254"),
    ("http://[2002:a00:1::]/", "carrying 10.0.0.1"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "not a public"),
    ("http://100.100.100.200/", "metadata"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "private"),
    ("http://localhost:8000/", "local or metadata name"),
    ("http://LOCALHOST./", "local or metadata name"),
    ("http://api.localhost/", "local or metadata name"),
    ("http://printer.local/", "local or metadata name"),
    ("http://metadata/", "local or metadata name"),
    ("http://router.home.arpa/", "local or metadata name"),
    ("http://%31%32%37.0.0.1/", "not a valid IPv4"),
    ("http://1.2.3.256/", "Invalid IPv4"),
    ("http://example.123/", "not a valid IPv4"),
    ("ftp://example.com/", "absolute http"),
    ("file:///etc/passwd", "absolute http"),
    ("gopher://example.com/", "absolute http"),
    ("//example.com/hook", "absolute http"),
    ("http:example.com", "absolute http"),
    ("http://evil.example\\@127.0.0.1/", "backslashes"),
    ("http://example.com\t/", "spaces"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_the_default_refuses_local_private_and_metadata_urls(
    store: Store, url: str, why: str
) -> None:
    with store.write() as conn, pytest.raises(urls.UrlRefused, match=r"^url: ") as refused:
        wh.create_webhook(conn, url, None, SECRET, T0)
    assert why in str(refused.value)
    with store.read() as conn:
        assert wh.list_webhooks(conn) == []


def test_credentials_are_refused_and_not_echoed(store: Store) -> None:
    for url in ("https://ada:s3cr3t@hooks.example.com/", "https://t0ken@hooks.example.com/"):
        with store.write() as conn, pytest.raises(urls.UrlRefused) as refused:
            wh.create_webhook(conn, url, None, SECRET, T0)
        assert refused.value.reason == "credentials"
        assert "s3cr3t" not in str(refused.value) and "t0ken" not in str(refused.value)
        assert "https://***@hooks.example.com/" in str(refused.value)
    # Even for a host the allow-list names.
    allowing = urls.Policy(["hooks.example.com"])
    with pytest.raises(urls.UrlRefused, match="user name or password"):
        allowing.check("https://user:pass@hooks.example.com/")


def test_public_urls_are_stored_as_the_client_will_call_them(store: Store) -> None:
    with store.write() as conn:
        made = [
            wh.create_webhook(conn, url, None, SECRET, T0)["url"]
            for url in (
                "https://hooks.example.com/in?token=abc",
                "http://0x08080808:8080/x",  # 8.8.8.8, written in hex
                "http://134744072/x",  # 8.8.8.8, as one number
                "https://[2606:4700:4700::1111]/",
                "https://Bücher.example/hook",
            )
        ]
    assert made == [
        "https://hooks.example.com/in?token=abc",
        "http://8.8.8.8:8080/x",
        "http://8.8.8.8/x",
        "https://[2606:4700:4700::1111]/",
        "https://xn--bcher-kva.example/hook",
    ]


@pytest.mark.parametrize(
    "host", ["0x7f000001", "2130706433", "127.1", "0x7f.1", "017700000001", "0177.0.1", "10.1"]
)
def test_numeric_hosts_are_read_as_the_resolver_reads_them(host: str) -> None:
    # The system's own resolver (what the HTTP client connects with) gives the same address.
    resolved = {info[4][0] for info in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
    assert resolved == {str(urls.parse_host(host))}


def test_allow_list_entries_and_their_ports() -> None:
    policy = urls.Policy(
        ["127.0.0.1:9000", "[::1]", "10.0.0.0/8", "[fd00::/8]:443", "hooks.corp.internal"]
    )
    assert policy.check("http://127.0.0.1:9000/x") == "http://127.0.0.1:9000/x"
    assert policy.check("http://2130706433:9000/x") == "http://127.0.0.1:9000/x"
    assert policy.check("http://[::1]:1234/") == "http://[::1]:1234/"
    assert policy.check("http://10.20.30.40/") == "http://10.20.30.40/"
    assert policy.check("https://[fd00::5]/") == "https://[fd00::5]/"
    assert policy.check("https://hooks.corp.internal/in") == "https://hooks.corp.internal/in"
    for url in (
        "http://127.0.0.1:9001/x",  # another port
        "http://[fd00::5]:8443/",  # another port
        "http://192.168.0.1/",  # not listed
        "https://other.corp.internal/",  # not listed
        "http://169.254.169.254/",
    ):
        with pytest.raises(urls.UrlRefused, match="--webhook-allow"):
            policy.check(url)
    for entry in ("", "not a host", "127.0.0.1:0", "127.0.0.1:http", "[::1", "10.0.0.0/33"):
        if not entry:
            assert urls.Policy([entry]).allowed == ()
            continue
        with pytest.raises(ValueError, match="is not host\\[:port\\]"):
            urls.Policy([entry])


def add_row(store: Store, url: str) -> int:
    """A webhook as stored before URLs were checked (or edited in the database)."""
    with store.write() as conn:
        key = conn.execute(
            t.webhooks.insert().values(
                url=url, secret=SECRET, topics=list(wh.TOPICS), active=True, created_at=T0
            )
        ).inserted_primary_key
        assert key is not None
        webhook_id = int(key[0])
        wh.Subscriptions.load(conn).enqueue(conn, "score_changed", "L1", {"n": 1}, T0)
    return webhook_id


def last(store: Store, webhook_id: int) -> dict[str, object]:
    with store.read() as conn:
        (row,) = wh.deliveries(conn, webhook_id, 10)
    return row


def test_delivery_checks_again_a_url_stored_unchecked(store: Store, receiver: Receiver) -> None:
    webhook_id = add_row(store, receiver.url())
    deliverer = wh.Deliverer(store, lambda: T0, timeout=2.0)  # the default policy
    try:
        assert deliverer.deliver_due() == 1
    finally:
        deliverer.stop()
    assert receiver.requests == []
    row = last(store, webhook_id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert str(row["last_error"]).startswith("UrlRefused: url: 127.0.0.1 is a loopback address")


def test_stored_credentials_are_never_listed(store: Store) -> None:
    webhook_id = add_row(store, "https://admin:hunter2@hooks.example.com/in")
    with store.read() as conn:
        assert wh.get_webhook(conn, webhook_id) is not None
        assert [w["url"] for w in wh.list_webhooks(conn)] == ["https://***@hooks.example.com/in"]


class DNS:
    """The answers a name server gives, changed by the test (there is no network here)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host in self.answers:
            return self.answers[host]
        # Addresses resolve to themselves, as getaddrinfo does.
        return [str(ipaddress.ip_address(host))]


def test_a_name_that_resolves_to_a_private_address_at_delivery_is_refused(
    store: Store, receiver: Receiver
) -> None:
    dns = DNS({"hooks.example.com": ["93.184.215.14"]})
    policy = urls.Policy([], resolve=dns)
    port = receiver.server.server_address[1]
    with store.write() as conn:
        hook = wh.create_webhook(
            conn, f"http://hooks.example.com:{port}/hook", None, SECRET, T0, policy=policy
        )
        wh.Subscriptions.load(conn).enqueue(conn, "score_changed", "L1", {}, T0)
    dns.answers["hooks.example.com"] = ["127.0.0.1"]  # rebound after registration
    deliverer = wh.Deliverer(store, lambda: T0, policy=policy, timeout=2.0)
    try:
        assert deliverer.deliver_due() == 1
    finally:
        deliverer.stop()
    assert dns.asked == ["hooks.example.com"]
    assert receiver.requests == []
    error = str(last(store, hook["id"])["last_error"])
    assert "hooks.example.com resolves to 127.0.0.1 (a loopback address)" in error


def test_an_allowed_name_is_called_at_the_address_that_was_checked(
    store: Store, receiver: Receiver
) -> None:
    # The system resolver cannot resolve this name: only the checked answer can be used.
    dns = DNS({"receiver.example.com": ["10.9.9.9", "127.0.0.1"]})
    port = receiver.server.server_address[1]
    policy = urls.Policy([f"127.0.0.1:{port}"], resolve=dns)
    url = f"http://receiver.example.com:{port}/hook"
    with store.write() as conn:
        hook = wh.create_webhook(conn, url, None, SECRET, T0, policy=policy)
        wh.Subscriptions.load(conn).enqueue(conn, "score_changed", "L1", {}, T0)
    deliverer = wh.Deliverer(store, lambda: T0, policy=policy, timeout=2.0)
    try:
        assert deliverer.deliver_due() == 1
    finally:
        deliverer.stop()
    (request,) = receiver.requests
    assert request.headers["host"] == f"receiver.example.com:{port}"
    assert last(store, hook["id"])["status"] == "delivered"


def test_the_client_refuses_whoever_builds_the_request(receiver: Receiver) -> None:
    with urls.STRICT.client(2.0) as client:
        with pytest.raises(urls.UrlRefused, match="loopback"):
            client.post(receiver.url(), content=b"{}")
        with pytest.raises(urls.UrlRefused, match="user name or password"):
            client.get("http://user:pw@93.184.215.14/")
    assert receiver.requests == []
    # Proxies from the environment are not used: the request goes where it says.
    os.environ["HTTP_PROXY"] = "http://127.0.0.1:9"
    try:
        with urls.Policy(["127.0.0.1"]).client(2.0) as client:
            assert client.post(receiver.url(), content=b"{}").status_code == 200
    finally:
        del os.environ["HTTP_PROXY"]
    assert len(receiver.requests) == 1


def test_the_api_refuses_by_default_and_allows_what_serve_was_told(
    database_url: str, receiver: Receiver
) -> None:
    settings = Settings(database_url=database_url, rescore_interval=0, background=False)
    with running_service(settings, ManualClock()) as running:
        r = running.admin.post("/v1/webhooks", json={"url": receiver.url()})
        assert r.status_code == 422
        assert r.json()["detail"].startswith("url: 127.0.0.1 is a loopback address")
        r = running.admin.post("/v1/webhooks", json={"url": "http://[::ffff:169.254.169.254]/"})
        assert r.status_code == 422 and "169.254.169.254" in r.json()["detail"]
        assert running.admin.get("/v1/webhooks").json() == []
    port = receiver.server.server_address[1]
    allowed = Settings(
        database_url=database_url,
        rescore_interval=0,
        background=False,
        webhook_allow=(f"127.0.0.1:{port}",),
    )
    with running_service(allowed, ManualClock()) as running:
        r = running.admin.post("/v1/webhooks", json={"url": receiver.url()})
        assert r.status_code == 201, r.text
        r = running.admin.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port + 1}/"})
        assert r.status_code == 422 and "loopback" in r.json()["detail"]


def test_serve_refuses_a_bad_allow_list_entry(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/leadscore.db"
    env = {**os.environ, "LEADSCORE_WEBHOOK_ALLOW": "127.0.0.1:9000, not/a/host"}
    done = subprocess.run(
        [str(LEADSCORE), "serve", "--db", db, "--no-bootstrap-key"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--webhook-allow: 'not/a/host' is not host[:port]" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_httpx_itself_refuses_what_it_cannot_parse() -> None:
    # The client's parser is the one the check uses: what it refuses, the check refuses too.
    with pytest.raises(httpx.InvalidURL):
        httpx.URL("http://0177.0.0.1/")
    with pytest.raises(urls.UrlRefused, match="absolute http"):
        urls.STRICT.check("http://0177.0.0.1/")


def test_the_dashboard_form_refuses_the_same_urls_saying_why(running: Running) -> None:
    with running.service.store.write() as conn:
        create_user(conn, "maria", "correct horse battery", admin=True, now=running.clock())
    with httpx.Client(base_url=running.base_url, timeout=30) as client:
        form = client.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        data = {"username": "maria", "password": "correct horse battery", "csrf": token.group(1)}
        assert client.post("/ui/login", data=data).status_code == 303
        for lang, url, said in [
            ("en", "http://169.254.169.254/latest", "URL: 169.254.169.254 is a cloud metadata"),
            ("en", "http://ada:s3cr3t@hooks.example.com/", "URL: must not hold a user name"),
            ("de", "http://[fd00::1]/", "URL: der Server ruft nur öffentliche Adressen auf"),
            ("de", "http://ada:s3cr3t@hooks.example.com/", "URL: darf keinen Benutzernamen"),
        ]:
            page = client.get("/ui/settings", headers={"accept-language": lang})
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            answer = client.post(
                "/ui/settings/webhooks",
                data={"csrf": csrf.group(1), "url": url, "topics": ["sla_met"]},
                headers={"accept-language": lang},
            )
            assert answer.status_code == 422, answer.text
            assert said in html.unescape(answer.text), (lang, url)
    assert running.admin.get("/v1/webhooks").json() == []
