"""Dashboard users: hashed passwords, signed sessions that expire, CSRF tokens (real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from leadscore.dashboard import auth
from leadscore.store import tables as t
from leadscore.store.database import Store, open_store

NOW = datetime(2026, 12, 2, 9, 0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/users.db")
    yield store
    store.close()


def test_passwords_are_kept_only_as_salted_scrypt_hashes(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        auth.create_user(conn, "jonas", "correct horse battery", admin=True, now=NOW)
        rows = conn.execute(sa.select(t.dashboard_users)).mappings().all()
    hashes = [r["password_hash"] for r in rows]
    assert all(h.startswith("scrypt$") and "correct horse" not in h for h in hashes)
    assert hashes[0] != hashes[1]  # salted
    with store.read() as conn:
        assert auth.authenticate(conn, "maria", "correct horse battery") is not None
        assert auth.authenticate(conn, "maria", "correct horse battery!") is None
        assert auth.authenticate(conn, "nobody", "correct horse battery") is None
        jonas = auth.authenticate(conn, "jonas", "correct horse battery")
    assert jonas is not None and jonas.admin


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("maria", "short", "password"),
        ("maria schmidt", "long enough password", "username"),
        ("", "long enough password", "username"),
    ],
)
def test_bad_users_are_refused_by_field_and_nothing_is_stored(
    store: Store, username: str, password: str, field: str
) -> None:
    with pytest.raises(auth.UserError) as caught, store.write() as conn:
        auth.create_user(conn, username, password, admin=False, now=NOW)
    assert caught.value.field == field
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.dashboard_users)).scalar() == 0


def test_a_username_is_taken_once(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
    taken = "username: 'maria' exists already"
    with pytest.raises(auth.UserError, match=taken), store.write() as conn:
        auth.create_user(conn, "maria", "another good password", admin=False, now=NOW)


def test_sessions_are_signed_expire_and_end_with_a_new_password(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        assert auth.secret(conn) == key  # made once, then kept
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        cookie = auth.session_cookie(key, user, NOW)
        assert auth.session_user(conn, key, cookie, NOW + timedelta(hours=11)) == user
        assert auth.session_user(conn, key, cookie, NOW + timedelta(hours=13)) is None
        assert auth.session_user(conn, key, cookie, NOW - timedelta(minutes=1)) is None
        forged = cookie.replace(f"{user.id}.", f"{user.id + 1}.", 1)
        assert auth.session_user(conn, key, forged, NOW) is None
        assert auth.session_user(conn, b"another key", cookie, NOW) is None
        assert auth.session_user(conn, key, "garbage", NOW) is None
        auth.set_password(conn, "maria", "a brand new password")
        assert auth.session_user(conn, key, cookie, NOW) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    key = b"k" * 32
    token = auth.csrf_token(key, "session-a")
    assert auth.csrf_ok(key, "session-a", token)
    assert not auth.csrf_ok(key, "session-b", token)
    assert not auth.csrf_ok(key, "session-a", "")
    assert not auth.csrf_ok(key, None, token)
