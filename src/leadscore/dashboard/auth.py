"""Dashboard users: scrypt-hashed passwords, sessions kept in the store, CSRF tokens.

A session is a row of `dashboard_sessions` made at sign-in: the cookie is `id.signature`, a
random id signed with HMAC-SHA256 under a secret the store keeps (created on first use); the
store holds only the id's SHA-256. A session lasts `SESSION_HOURS` from sign-in. Signing out
deletes its row, so a copy of the cookie stops working too; a new password, "sign out
everywhere" and removing the user delete all of the user's rows. The CSRF token of a form is
derived from the session cookie, so it is worthless without it, and the cookie alone cannot
post a form.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.store import tables as t

SESSION_HOURS: Final = 12
# a user signing in again and again (a script, say) keeps this many sessions; older ones end
MAX_SESSIONS: Final = 20
MIN_PASSWORD: Final = 10
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1}
_USERNAME: Final = re.compile(r"[A-Za-z0-9._@-]{1,100}")
_SECRET_KEY: Final = "dashboard_secret"


class UserError(ValueError):
    """A user that cannot be created as asked: the message says which field and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class User:
    """A signed-in dashboard user."""

    id: int
    username: str
    admin: bool


def hash_password(password: str) -> str:
    """The scrypt hash of a password with a fresh salt, as one self-describing string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a hash made by `hash_password` (in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        again = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(again.hex(), digest)


def create_user(
    conn: Connection, username: str, password: str, *, admin: bool, now: datetime
) -> int:
    """Store a new user; UserError names the field when the username or password will not do."""
    if not _USERNAME.fullmatch(username):
        raise UserError("username", "1 to 100 letters, digits and . _ @ - (no spaces)")
    _check_password(password)
    taken = conn.execute(
        sa.select(t.dashboard_users.c.id).where(t.dashboard_users.c.username == username)
    ).first()
    if taken is not None:
        raise UserError("username", f"{username!r} exists already")
    row = conn.execute(
        t.dashboard_users.insert()
        .values(
            username=username,
            password_hash=hash_password(password),
            admin=admin,
            created_at=now,
        )
        .returning(t.dashboard_users.c.id)
    ).one()
    return int(row.id)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError("password", f"at least {MIN_PASSWORD} characters")


def _user_id(conn: Connection, username: str) -> int:
    users = t.dashboard_users
    row = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
    if row is None:
        raise UserError("username", f"no user {username!r}")
    return int(row.id)


def _end_all(conn: Connection, user_id: int) -> None:
    sessions = t.dashboard_sessions
    conn.execute(sessions.delete().where(sessions.c.user_id == user_id))


def set_password(conn: Connection, username: str, password: str) -> None:
    """Give a user a new password, ending every session they have."""
    _check_password(password)
    user_id = _user_id(conn, username)
    users = t.dashboard_users
    conn.execute(
        users.update().where(users.c.id == user_id).values(password_hash=hash_password(password))
    )
    _end_all(conn, user_id)


def change_password(conn: Connection, user: User, current: str, new: str) -> User:
    """A signed-in user's own new password, given the current one; every session of the user
    ends (start a fresh one for this browser)."""
    row = conn.execute(
        sa.select(t.dashboard_users.c.password_hash).where(t.dashboard_users.c.id == user.id)
    ).first()
    if row is None or not verify_password(current, row.password_hash):
        raise UserError("current", "not the current password")
    _check_password(new)
    if new == current:
        raise UserError("password", "the same as the current password")
    users = t.dashboard_users
    conn.execute(
        users.update().where(users.c.id == user.id).values(password_hash=hash_password(new))
    )
    _end_all(conn, user.id)
    return user


def end_sessions(conn: Connection, username: str) -> None:
    """Sign a user out everywhere: every session cookie issued so far stops working."""
    _end_all(conn, _user_id(conn, username))


def remove_user(conn: Connection, username: str) -> None:
    """Delete a user (their sessions end with them); the last administrator stays."""
    users = t.dashboard_users
    row = conn.execute(sa.select(users.c.admin).where(users.c.username == username)).first()
    if row is None:
        raise UserError("username", f"no user {username!r}")
    if row.admin:
        admins = conn.execute(
            sa.select(sa.func.count()).select_from(users).where(users.c.admin.is_(True))
        ).scalar_one()
        if admins <= 1:
            raise UserError("username", f"{username!r} is the last administrator")
    _end_all(conn, _user_id(conn, username))
    conn.execute(users.delete().where(users.c.username == username))


def list_users(conn: Connection, limit: int | None) -> list[dict[str, Any]]:
    """Who may sign in (never their password hashes), oldest first, at most `limit`."""
    u = t.dashboard_users
    query = sa.select(u.c.username, u.c.admin, u.c.created_at).order_by(u.c.id)
    rows = conn.execute(query if limit is None else query.limit(limit)).mappings()
    return [dict(r) for r in rows]


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user with this username and password, or None (the same for either mistake)."""
    row = conn.execute(
        sa.select(t.dashboard_users).where(t.dashboard_users.c.username == username)
    ).first()
    if row is None:
        # as slow as a wrong password, so a response time does not tell which names exist
        verify_password(password, _DUMMY)
        return None
    if not verify_password(password, row.password_hash):
        return None
    return User(row.id, row.username, bool(row.admin))


_DUMMY: Final = hash_password(secrets.token_hex(8))


def stored_secret(conn: Connection) -> bytes | None:
    """The key sessions are signed with, if one was made (no session exists before)."""
    meta = t.meta
    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == _SECRET_KEY)).first()
    return None if row is None else bytes.fromhex(row.value)


def secret(conn: Connection) -> bytes:
    """The key sessions are signed with, made on first use and kept in the store."""
    found = stored_secret(conn)
    if found is not None:
        return found
    meta = t.meta
    value = secrets.token_hex(32)
    conn.execute(meta.insert().values(key=_SECRET_KEY, value=value))
    return bytes.fromhex(value)


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _session_id(key: bytes, cookie: str | None) -> str | None:
    """The session id in a cookie, if our key signed it."""
    if not cookie:
        return None
    session_id, _, signature = cookie.rpartition(".")
    if not session_id or not hmac.compare_digest(_sign(key, session_id), signature):
        return None
    return session_id


def start_session(conn: Connection, key: bytes, user: User, now: datetime) -> str:
    """A new session for `user` from `now`: stored, and its cookie returned."""
    sessions = t.dashboard_sessions
    session_id = secrets.token_urlsafe(32)
    expired = now - timedelta(hours=SESSION_HOURS)
    # whoever signs in sweeps away every expired session: the table stays small
    conn.execute(sessions.delete().where(sessions.c.created_at < expired))
    conn.execute(
        sessions.insert().values(id_hash=_id_hash(session_id), user_id=user.id, created_at=now)
    )
    kept = (
        sa.select(sessions.c.id_hash)
        .where(sessions.c.user_id == user.id)
        .order_by(sessions.c.created_at.desc(), sessions.c.id_hash)
        .limit(MAX_SESSIONS)
    )
    conn.execute(
        sessions.delete().where(
            sessions.c.user_id == user.id, sessions.c.id_hash.not_in(kept.scalar_subquery())
        )
    )
    return f"{session_id}.{_sign(key, session_id)}"


def session_user(conn: Connection, key: bytes, cookie: str | None, now: datetime) -> User | None:
    """The user a session cookie stands for, if it is genuine, not ended and not expired."""
    session_id = _session_id(key, cookie)
    if session_id is None:
        return None
    users, sessions = t.dashboard_users, t.dashboard_sessions
    row = conn.execute(
        sa.select(users.c.id, users.c.username, users.c.admin, sessions.c.created_at)
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
        .where(sessions.c.id_hash == _id_hash(session_id))
    ).first()
    if row is None or not timedelta(0) <= now - row.created_at <= timedelta(hours=SESSION_HOURS):
        return None
    return User(row.id, row.username, bool(row.admin))


def end_session(conn: Connection, key: bytes, cookie: str | None) -> None:
    """Sign this one session out: its cookie, and every copy of it, stops working."""
    session_id = _session_id(key, cookie)
    if session_id is not None:
        sessions = t.dashboard_sessions
        conn.execute(sessions.delete().where(sessions.c.id_hash == _id_hash(session_id)))


def csrf_token(key: bytes, cookie: str) -> str:
    """The token a form of this session carries."""
    return _sign(key, "csrf." + cookie)


def csrf_ok(key: bytes, cookie: str | None, token: str | None) -> bool:
    """Whether a posted form's token belongs to the session that posted it."""
    if not cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(key, cookie), token)


def address_key(client: str) -> str:
    """The address a throttle counts: IPv4 as it is, IPv6 by its /64 network (one machine
    usually holds a whole /64), anything else (a test client's name) as given."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


class Throttle:
    """Failed sign-ins, counted so that guessing is slow and a stranger cannot lock anyone
    out. Within `window`:

    - one name from one address: `limit` failures (5), then that pair waits;
    - one address, any names: `per_address` failures (20), then the address waits;
    - one name, all addresses together: `per_name` failures (100), then the name waits at
      every address except those it signed in from successfully within `remember` (30 days),
      so a guesser with many addresses stays slow while the real user's usual computer
      still gets in.

    A wait lasts until the oldest counted failure leaves the window. Kept in the process (a
    restart forgets it; scrypt makes each guess slow anyway) and bounded in memory.
    """

    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=15),
        *,
        per_address: int | None = None,
        per_name: int | None = None,
        remember: timedelta = timedelta(days=30),
        max_entries: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.per_address = per_address if per_address is not None else limit * 4
        self.per_name = per_name if per_name is not None else limit * 20
        self.remember = remember
        self.max_entries = max_entries
        self._failures: OrderedDict[tuple[str, ...], list[datetime]] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._lock = threading.Lock()

    def _limits(
        self, username: str, client: str, now: datetime
    ) -> list[tuple[tuple[str, ...], int]]:
        name, address = username.lower(), address_key(client)
        limits = [(("pair", name, address), self.limit), (("address", address), self.per_address)]
        seen = self._known.get((name, address))
        if seen is None or now - seen > self.remember:
            limits.append((("name", name), self.per_name))
        return limits

    def wait(self, username: str, client: str, now: datetime) -> int:
        """Seconds to wait before another try is checked (0: go ahead)."""
        longest = timedelta(0)
        with self._lock:
            for key, limit in self._limits(username, client, now):
                recent = [f for f in self._failures.get(key, []) if now - f < self.window]
                if recent:
                    self._failures[key] = recent
                else:
                    self._failures.pop(key, None)
                if len(recent) >= limit:
                    longest = max(longest, recent[-limit] + self.window - now)
        return math.ceil(longest.total_seconds())

    def failed(self, username: str, client: str, now: datetime) -> None:
        """Count a failed try."""
        name, address = username.lower(), address_key(client)
        with self._lock:
            for key in (("pair", name, address), ("address", address), ("name", name)):
                recent = [f for f in self._failures.pop(key, []) if now - f < self.window]
                self._failures[key] = [*recent, now]
            self._bound(now)

    def succeeded(self, username: str, client: str, now: datetime) -> None:
        """A right password clears the pair's failures (not the address's or the name's) and
        makes the address one the name signs in from."""
        name, address = username.lower(), address_key(client)
        with self._lock:
            self._failures.pop(("pair", name, address), None)
            self._known[(name, address)] = now
            self._known.move_to_end((name, address))
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)

    def _bound(self, now: datetime) -> None:
        if len(self._failures) <= self.max_entries:
            return
        for key in [k for k, v in self._failures.items() if now - v[-1] >= self.window]:
            del self._failures[key]
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)  # the longest without a new failure
