"""Every URL the server will call: which hosts it may reach, checked again when it connects.

A URL an admin gives the server (a webhook today; CRM and alert endpoints later) is a way
for whoever sets it to make the server send requests from inside its network. So, by
default, the server calls only public addresses over http(s):

- the scheme is ``http`` or ``https``; the URL has no user name or password (credentials
  would sit in the settings list; receivers authenticate requests by their signature);
- the host is not a loopback, private, shared (CGNAT), link-local, unique-local,
  multicast, reserved, documentation or unspecified address, nor a cloud metadata address;
  IPv4 addresses embedded in IPv6 (mapped, compatible, 6to4, Teredo, NAT64) count as the
  IPv4 address they carry;
- the host is not a local name (``localhost``, ``*.localhost``, ``*.local``, ``*.internal``
  such as ``metadata.google.internal``, ``*.home.arpa``, ``*.localdomain``, or a single
  label such as ``metadata``).

Numeric hosts are read the way the HTTP client reads them: httpx parses the URL, and a host
whose last label is a number is an IPv4 address in the libc (``inet_aton``) and WHATWG
forms, so ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1.

The check runs when a URL is stored and again on every connection: `Policy.client` makes an
httpx client whose connections resolve the host, check every address, and connect to an
address that passed (never resolving again), so a name that resolves to a private address
at delivery time is refused even if it was public when it was registered (DNS rebinding).
Environment proxies and ``.netrc`` are ignored and redirects are not followed.

Self-hosted receivers on private addresses are allowed explicitly: `Policy` takes
allow-list entries ``host[:port]`` where host is a name (exact, any address it resolves
to), an IP address or a network (``10.0.0.0/8``, ``[fd00::/8]:443``); without a port any
port is allowed. Credentials and other schemes are refused whatever the allow-list says.

`deadline` bounds a whole request (connect, TLS, sending, the answer) rather than each
read, so a peer sending a byte every few seconds cannot hold a caller for long.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (as text), like getaddrinfo
Resolver = Callable[[str, int], Sequence[str]]

SCHEMES: Final = ("http", "https")
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Names that resolve to metadata services or only inside a network (RFC 6761, 6762, 8375;
# ICANN's private-use .internal).
LOCAL_NAMES: Final = frozenset({"localhost", "metadata.goog", "instance-data"})
LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
# Cloud metadata and host agents that sit on otherwise public-looking addresses.
# (AWS, ECS, AWS over IPv6, Alibaba, Azure's wire server)
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL: Final = ipaddress.ip_network("fc00::/7")
_NUMERIC_LABEL: Final = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)")
_NAME: Final = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
# Characters that different URL parsers read differently; a URL holding one is refused.
_AMBIGUOUS: Final = re.compile(r"[\s\\\x00-\x1f\x7f]")

_deadline: ContextVar[float | None] = ContextVar("leadscore_url_deadline", default=None)
# Lookups run here so that a resolver that never answers cannot outlast the deadline.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="leadscore-dns")


class UrlRefused(ValueError):
    """A URL or address the server will not call; the message starts with the field, and
    `reason` is "form" (not an absolute http(s) URL), "credentials" or "address"."""

    def __init__(self, message: str, reason: str = "form") -> None:
        super().__init__(message)
        self.reason = reason


def _default_resolve(host: str, port: int) -> Sequence[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


def _embedded(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and reaches through a gateway)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    packed = address.packed
    if address in _NAT64 or packed[:12] == bytes(12):  # NAT64 and IPv4-compatible
        found.append(ipaddress.IPv4Address(packed[12:]))
    return found


def refusal(address: IPAddress) -> str | None:
    """Why the server must not call `address` by default (a phrase such as "a loopback
    address"), or None if it is public."""
    first = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
    )
    for refused, why in first:
        if refused:
            return why
    for inner in _embedded(address):
        inside = refusal(inner)
        if inside is not None:
            return f"an address carrying {inner} ({inside})"
    rest = (
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.version == 6 and address in _UNIQUE_LOCAL, "a unique-local address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    for refused, why in rest:
        if refused:
            return why
    return None


def parse_host(host: str) -> IPAddress | str:
    """A URL host as the client reads it: an IP address (numeric forms normalised) or a
    lower-case name; ValueError if it is neither."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise ValueError(f"{host!r} has a zone id")
        return ipaddress.IPv6Address(host)
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # WHATWG: a host ending in a number is an IPv4 address or invalid; inet_aton
        # (what getaddrinfo uses) reads the same decimal, octal, hex and short forms.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
    if not _NAME.fullmatch(name) or len(name) > 253:
        raise ValueError(f"{host!r} is not a valid host name")
    return name


def _local_name(name: str) -> bool:
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES) or "." not in name


@dataclass(frozen=True)
class Allowed:
    """One allow-list entry: a name or network, and optionally one port."""

    text: str
    name: str | None
    network: IPNetwork | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> Allowed:
        """An entry from `host[:port]`, `[v6]:port`, `a.b.c.d/n` or `v6/n`; ValueError if bad."""
        entry = text.strip()
        host, port = entry, ""
        try:
            if entry.startswith("["):
                host, closed, rest = entry[1:].partition("]")
                if not closed or (rest and not rest.startswith(":")):
                    raise ValueError("brackets")
                port = rest[1:]
            elif entry.count(":") == 1:
                host, port = entry.split(":")
            number = None
            if port or entry.endswith(":"):
                number = int(port) if port.isdigit() else -1
                if not 1 <= number <= 65535:
                    raise ValueError("port")
            if "/" in host:
                return cls(entry, None, ipaddress.ip_network(host, strict=False), number)
            parsed = parse_host(host)
        except ValueError:
            raise ValueError(
                f"{text!r} is not host[:port], an IP address or a network "
                "(e.g. 127.0.0.1:9000, [::1]:9000, hooks.example.internal, 10.0.0.0/8)"
            ) from None
        if isinstance(parsed, str):
            return cls(entry, parsed, None, number)
        return cls(entry, None, ipaddress.ip_network(parsed), number)

    def admits(self, host: str, port: int, address: IPAddress | None) -> bool:
        """Whether this entry allows calling `host:port` at `address` (None: not resolved)."""
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return self.name == host.lower().rstrip(".")
        assert self.network is not None
        return (
            address is not None
            and address.version == self.network.version
            and (address in self.network)
        )


def _redacted(url: str) -> str:
    """`url` with any user name and password replaced, for messages and listings."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@", r"\1***@", url)


def redact(url: str) -> str:
    """A stored URL as it may be shown: credentials (accepted before this check) hidden."""
    return _redacted(url)


class Policy:
    """Which URLs and addresses the server may call: public ones, and the allow-list."""

    def __init__(self, allow: Iterable[str] = (), resolve: Resolver | None = None) -> None:
        self.allowed = tuple(Allowed.parse(a) for a in allow if a.strip())
        self._resolve = resolve or _default_resolve

    def __repr__(self) -> str:
        return f"Policy(allow={[a.text for a in self.allowed]!r})"

    def _admitted(self, host: str, port: int, address: IPAddress | None) -> bool:
        return any(a.admits(host, port, address) for a in self.allowed)

    def check(self, url: str, field: str = "url") -> str:
        """The URL as the client will call it, or UrlRefused naming `field` and why."""
        text = url.strip()
        shown = _redacted(text)
        hint = "; allow a self-hosted receiver with --webhook-allow HOST[:PORT]"
        if _AMBIGUOUS.search(text):
            raise UrlRefused(
                f"{field}: must not contain spaces, backslashes or control characters; "
                f"got {shown!r}"
            )
        try:
            parsed = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise UrlRefused(
                f"{field}: must be an absolute http:// or https:// URL ({exc}); got {shown!r}"
            ) from None
        if parsed.scheme not in SCHEMES or not parsed.raw_host or not text.partition("://")[1]:
            raise UrlRefused(f"{field}: must be an absolute http:// or https:// URL; got {shown!r}")
        if parsed.userinfo:
            raise UrlRefused(
                f"{field}: must not hold a user name or password (they would be shown in "
                f"the settings; receivers check the signature instead); got {shown!r}",
                "credentials",
            )
        port = DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
        if not 1 <= port <= 65535:
            raise UrlRefused(f"{field}: port must be 1 to 65535; got {shown!r}")
        raw = parsed.raw_host.decode("ascii")
        try:
            host = parse_host(raw)
        except ValueError as exc:
            raise UrlRefused(f"{field}: {exc}; got {shown!r}") from None
        if isinstance(host, str):
            if _local_name(host) and not self._admitted(host, port, None):
                raise UrlRefused(
                    f"{field}: {host!r} is a local or metadata name, not a public one{hint}",
                    "address",
                )
            return str(parsed)
        why = refusal(host)
        if why is not None and not self._admitted(raw, port, host):
            raise UrlRefused(f"{field}: {host} is {why}{hint}", "address")
        # Stored with the address the client connects to, however it was written.
        shown_host = str(host) if host.version == 4 else f"[{host}]"
        return str(parsed.copy_with(host=shown_host.strip("[]")))

    def addresses(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """The addresses of `host` the server may connect to, or UrlRefused (resolved now)."""
        future = _lookups.submit(self._resolve, host, port)
        try:
            found = future.result(timeout)
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        allowed: list[str] = []
        refused: list[str] = []
        for text in dict.fromkeys(found):
            address = ipaddress.ip_address(text)
            why = refusal(address)
            if why is None or self._admitted(host, port, address):
                allowed.append(text)
            else:
                refused.append(f"{address} ({why})")
        if not allowed:
            raise UrlRefused(
                f"url: {host} resolves to {', '.join(refused) or 'nothing'}; the server calls "
                "only public addresses unless allowed with --webhook-allow",
                "address",
            )
        return allowed

    def client(
        self, timeout: float, *, max_connections: int = 10, user_agent: str | None = None
    ) -> httpx.Client:
        """An httpx client that calls only what this policy allows, connection by connection."""
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=10)
        headers = {"User-Agent": user_agent} if user_agent else None
        return httpx.Client(
            transport=_Transport(self, limits),
            timeout=timeout,
            follow_redirects=False,  # a redirect could send the request anywhere
            trust_env=False,  # no proxy or .netrc from the environment
            headers=headers,
        )


STRICT: Final = Policy()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound everything a `Policy.client` does in this block to `seconds` in total."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every read and write stops at the caller's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """Connections only to addresses the policy allows, resolved and checked here."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._policy.addresses(host, port, _bounded(timeout, httpcore.ConnectTimeout))
        failed: Exception | None = None
        for address in addresses:
            try:
                # The checked address itself: resolving the name again could answer otherwise.
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    _bounded(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
                continue
            return _Stream(stream)
        assert failed is not None
        raise failed

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise UrlRefused("url: the server calls http(s) addresses, not unix sockets", "address")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextmanager
def _as_httpx() -> Iterator[None]:
    """httpcore's errors as httpx's, as httpx's own transport raises them."""
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class _Transport(httpx.BaseTransport):
    """httpx's transport over an httpcore pool whose connections the policy checks."""

    def __init__(self, policy: Policy, limits: httpx.Limits) -> None:
        self._policy = policy
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Whoever builds the request, what it names is checked before anything is sent.
        self._policy.check(str(request.url))
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()
