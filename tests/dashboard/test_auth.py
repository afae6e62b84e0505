"""Dashboard users: hashed passwords, stored sessions that expire and end, CSRF tokens (real
SQLite and PostgreSQL)."""

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


@pytest.fixture
def any_store(database_url: str) -> Iterator[Store]:
    """A store on SQLite and on PostgreSQL (booleans and RETURNING differ between them)."""
    store = open_store(database_url)
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


def test_sessions_are_signed_expire_and_end_with_a_new_password(any_store: Store) -> None:
    store = any_store
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        assert auth.secret(conn) == key  # made once, then kept
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        cookie = auth.start_session(conn, key, user, NOW)
        assert auth.session_user(conn, key, cookie, NOW + timedelta(hours=11)) == user
        assert auth.session_user(conn, key, cookie, NOW + timedelta(hours=13)) is None
        assert auth.session_user(conn, key, cookie, NOW - timedelta(minutes=1)) is None
        session_id, _, signature = cookie.rpartition(".")
        forged = f"{session_id[:-1]}{'A' if session_id[-1] != 'A' else 'B'}.{signature}"
        assert auth.session_user(conn, key, forged, NOW) is None
        assert auth.session_user(conn, b"another key", cookie, NOW) is None
        assert auth.session_user(conn, key, "garbage", NOW) is None
        assert auth.session_user(conn, key, ".", NOW) is None
        auth.set_password(conn, "maria", "a brand new password")
        assert auth.session_user(conn, key, cookie, NOW) is None


def test_the_store_keeps_only_a_hash_of_the_session_id(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        cookie = auth.start_session(conn, key, user, NOW)
        stored = conn.execute(sa.select(t.dashboard_sessions)).mappings().one()
    session_id = cookie.rpartition(".")[0]
    assert stored["user_id"] == user.id and session_id not in stored["id_hash"]
    assert len(session_id) >= 43  # 32 random bytes


def test_signing_out_ends_that_session_for_good_and_no_other(any_store: Store) -> None:
    store = any_store
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        laptop = auth.start_session(conn, key, user, NOW)
        phone = auth.start_session(conn, key, user, NOW)
        copied = str(laptop)  # what a thief copied from the laptop's browser
        auth.end_session(conn, key, laptop)
        assert auth.session_user(conn, key, copied, NOW) is None
        assert auth.session_user(conn, key, phone, NOW) == user
        auth.end_session(conn, key, "forged.cookie")  # a cookie we never signed: nothing ends
        assert auth.session_user(conn, key, phone, NOW) == user


def test_sessions_are_bounded_per_user_and_expired_ones_are_swept(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        stale = auth.start_session(conn, key, user, NOW)
        later = NOW + timedelta(hours=auth.SESSION_HOURS, minutes=1)
        cookies = [
            auth.start_session(conn, key, user, later + timedelta(seconds=i))
            for i in range(auth.MAX_SESSIONS + 3)
        ]
        count = conn.execute(
            sa.select(sa.func.count()).select_from(t.dashboard_sessions)
        ).scalar_one()
        now = later + timedelta(minutes=1)
        alive = [auth.session_user(conn, key, c, now) is not None for c in cookies]
        assert auth.session_user(conn, key, stale, NOW + timedelta(minutes=1)) is None  # swept
    assert count == auth.MAX_SESSIONS
    assert alive == [False] * 3 + [True] * auth.MAX_SESSIONS  # the oldest ended


def test_csrf_tokens_belong_to_their_session() -> None:
    key = b"k" * 32
    token = auth.csrf_token(key, "session-a")
    assert auth.csrf_ok(key, "session-a", token)
    assert not auth.csrf_ok(key, "session-b", token)
    assert not auth.csrf_ok(key, "session-a", "")
    assert not auth.csrf_ok(key, None, token)


def test_a_users_own_password_change_needs_the_current_one_and_ends_other_sessions(
    any_store: Store,
) -> None:
    store = any_store
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        other = auth.start_session(conn, key, user, NOW)
    for current, new, field in (
        ("wrong horse battery", "a brand new password", "current"),
        ("correct horse battery", "short", "password"),
        ("correct horse battery", "correct horse battery", "password"),
    ):
        with pytest.raises(auth.UserError) as caught, store.write() as conn:
            auth.change_password(conn, user, current, new)
        assert caught.value.field == field
    with store.write() as conn:
        assert auth.session_user(conn, key, other, NOW) == user  # the refusals changed nothing
        changed = auth.change_password(conn, user, "correct horse battery", "a brand new password")
        assert auth.session_user(conn, key, other, NOW) is None
        fresh = auth.start_session(conn, key, changed, NOW)
        assert auth.session_user(conn, key, fresh, NOW) == changed
        assert auth.authenticate(conn, "maria", "a brand new password") == changed


def test_signing_out_everywhere_ends_every_session_but_keeps_the_password(store: Store) -> None:
    with store.write() as conn:
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        user = auth.authenticate(conn, "maria", "correct horse battery")
        assert user is not None
        cookies = [auth.start_session(conn, key, user, NOW + timedelta(minutes=m)) for m in (0, 5)]
        auth.end_sessions(conn, "maria")
        later = NOW + timedelta(minutes=10)
        assert [auth.session_user(conn, key, c, later) for c in cookies] == [None, None]
        assert auth.authenticate(conn, "maria", "correct horse battery") is not None
    with pytest.raises(auth.UserError, match="username: no user 'nobody'"), store.write() as c:
        auth.end_sessions(c, "nobody")


def test_a_removed_user_is_signed_out_and_the_last_admin_stays(any_store: Store) -> None:
    store = any_store
    with store.write() as conn:
        auth.create_user(conn, "anna", "correct horse battery", admin=True, now=NOW)
        auth.create_user(conn, "maria", "correct horse battery", admin=False, now=NOW)
        key = auth.secret(conn)
        maria = auth.authenticate(conn, "maria", "correct horse battery")
        assert maria is not None
        cookie = auth.start_session(conn, key, maria, NOW)
        auth.remove_user(conn, "maria")
        assert auth.session_user(conn, key, cookie, NOW) is None
        left = conn.execute(sa.select(sa.func.count()).select_from(t.dashboard_sessions))
        assert left.scalar_one() == 0  # no row outlives its user
    last = "'anna' is the last administrator"
    with pytest.raises(auth.UserError, match=last), store.write() as conn:
        auth.remove_user(conn, "anna")
    with pytest.raises(auth.UserError, match="no user 'maria'"), store.write() as conn:
        auth.remove_user(conn, "maria")
    with store.write() as conn:
        auth.create_user(conn, "jonas", "correct horse battery", admin=True, now=NOW)
        auth.remove_user(conn, "anna")  # another admin is left
        listed = auth.list_users(conn, limit=None)
    assert [(u["username"], u["admin"]) for u in listed] == [("jonas", True)]
