"""Dashboard users: scrypt-hashed passwords, signed session cookies and CSRF tokens.

A session is a cookie `user.generation.issued.nonce.signature`, signed with HMAC-SHA256 under a
secret the store keeps (created on first use), valid for `SESSION_HOURS`. Raising a user's
generation (a new password, "sign out everywhere") ends all their sessions. The CSRF token of a
form is derived from the session's nonce, so it is worthless without the session cookie, and the
cookie alone cannot post a form.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.engine.timebase import EPOCH
from leadscore.store import tables as t

SESSION_HOURS: Final = 12
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
    generation: int


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
            generation=1,
        )
        .returning(t.dashboard_users.c.id)
    ).one()
    return int(row.id)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError("password", f"at least {MIN_PASSWORD} characters")


def set_password(conn: Connection, username: str, password: str) -> None:
    """Give a user a new password, ending every session they have."""
    _check_password(password)
    users = t.dashboard_users
    done = conn.execute(
        users.update()
        .where(users.c.username == username)
        .values(password_hash=hash_password(password), generation=users.c.generation + 1)
    )
    if done.rowcount == 0:
        raise UserError("username", f"no user {username!r}")


def change_password(conn: Connection, user: User, current: str, new: str) -> User:
    """A signed-in user's own new password, given the current one; every session ends, and the
    user with the new generation (for a fresh session in this browser) is returned."""
    row = conn.execute(
        sa.select(t.dashboard_users.c.password_hash).where(t.dashboard_users.c.id == user.id)
    ).first()
    if row is None or not verify_password(current, row.password_hash):
        raise UserError("current", "not the current password")
    _check_password(new)
    if new == current:
        raise UserError("password", "the same as the current password")
    users = t.dashboard_users
    row = conn.execute(
        users.update()
        .where(users.c.id == user.id)
        .values(password_hash=hash_password(new), generation=users.c.generation + 1)
        .returning(users.c.generation)
    ).one()
    return User(user.id, user.username, user.admin, int(row.generation))


def end_sessions(conn: Connection, username: str) -> None:
    """Sign a user out everywhere: every session cookie issued so far stops working."""
    users = t.dashboard_users
    done = conn.execute(
        users.update().where(users.c.username == username).values(generation=users.c.generation + 1)
    )
    if done.rowcount == 0:
        raise UserError("username", f"no user {username!r}")


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
    return User(row.id, row.username, bool(row.admin), row.generation)


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


def session_cookie(key: bytes, user: User, now: datetime) -> str:
    """A signed session for `user`, issued at `now`."""
    issued = (now - EPOCH) // timedelta(seconds=1)
    body = f"{user.id}.{user.generation}.{issued}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(key, body)}"


def session_user(conn: Connection, key: bytes, cookie: str | None, now: datetime) -> User | None:
    """The user a session cookie stands for, if it is genuine, current and not expired."""
    if not cookie:
        return None
    body, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(_sign(key, body), signature):
        return None
    try:
        user_id, generation, issued, _nonce = body.split(".")
        started = EPOCH + timedelta(seconds=int(issued))
    except ValueError:
        return None
    if not timedelta(0) <= now - started <= timedelta(hours=SESSION_HOURS):
        return None
    row = conn.execute(
        sa.select(t.dashboard_users).where(t.dashboard_users.c.id == int(user_id))
    ).first()
    if row is None or row.generation != int(generation):
        return None
    return User(row.id, row.username, bool(row.admin), row.generation)


def csrf_token(key: bytes, cookie: str) -> str:
    """The token a form of this session carries."""
    return _sign(key, "csrf." + cookie)


def csrf_ok(key: bytes, cookie: str | None, token: str | None) -> bool:
    """Whether a posted form's token belongs to the session that posted it."""
    if not cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(key, cookie), token)


class Throttle:
    """Failed sign-ins per username and per client address: after `limit` failures within
    `window`, further tries wait until the oldest failure leaves the window.

    Kept in the process: a restart forgets it, which costs an attacker a restart per
    `limit` guesses, and scrypt already makes each guess slow.
    """

    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[datetime]] = {}
        self._lock = threading.Lock()

    def _keys(self, username: str, client: str) -> tuple[str, str]:
        # per name (a slow guess at one account from many addresses) and per address with
        # a higher limit (one address trying many names)
        return f"user:{username.lower()}", f"client:{client}"

    def wait(self, username: str, client: str, now: datetime) -> int:
        """Seconds to wait before another try is checked (0: go ahead)."""
        longest = timedelta(0)
        with self._lock:
            limits = (self.limit, self.limit * 4)
            for key, limit in zip(self._keys(username, client), limits, strict=True):
                recent = [f for f in self._failures.get(key, []) if now - f < self.window]
                self._failures[key] = recent
                if len(recent) >= limit:
                    longest = max(longest, recent[-limit] + self.window - now)
        return math.ceil(longest.total_seconds())

    def failed(self, username: str, client: str, now: datetime) -> None:
        """Count a failed try."""
        with self._lock:
            for key in self._keys(username, client):
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, username: str, client: str) -> None:
        """A right password clears the name's failures (not the address's)."""
        with self._lock:
            self._failures.pop(self._keys(username, client)[0], None)
