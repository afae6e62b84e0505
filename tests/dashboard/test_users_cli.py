"""`leadscore users`: the admin made from the command line signs in to the dashboard; users are
listed, get new passwords, are signed out everywhere and removed from the command line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.dashboard.auth import authenticate, secret, session_user, start_session
from leadscore.store import tables as t
from leadscore.store.database import open_store

NOW = datetime(2026, 12, 3, 9, 0)


def test_an_admin_created_from_the_cli_can_sign_in(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/leadscore.db"
    runner = CliRunner()
    done = runner.invoke(
        app, ["users", "add", "maria", "--admin", "--db", db], input="s3cret-long-pw\n"
    )
    assert done.exit_code == 0, done.output
    assert "created admin user maria" in done.output
    again = runner.invoke(app, ["users", "add", "maria", "--db", db], input="another-long-pw\n")
    assert again.exit_code == 2 and "username: 'maria' exists already" in again.output
    short = runner.invoke(app, ["users", "add", "jonas", "--db", db], input="short\n")
    assert short.exit_code == 2 and "password: at least 10 characters" in short.output
    store = open_store(db)
    try:
        with store.read() as conn:
            user = authenticate(conn, "maria", "s3cret-long-pw")
            count = conn.execute(sa.select(sa.func.count()).select_from(t.dashboard_users)).scalar()
    finally:
        store.close()
    assert user is not None and user.admin
    assert count == 1  # the refused ones left nothing behind


def test_users_are_listed_reset_signed_out_and_removed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/leadscore.db"
    runner = CliRunner()
    for name, flags in (("anna", ["--admin"]), ("jonas", [])):
        add = ["users", "add", name, *flags, "--db", db]
        made = runner.invoke(app, add, input="first-long-pw\n")
        assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["users", "list", "--db", db], env={"COLUMNS": "120"})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    rows = [line.replace("│", " ").split() for line in lines if "anna" in line or "jonas" in line]
    assert [r[:2] for r in rows] == [["anna", "yes"], ["jonas", "no"]]

    store = open_store(db)
    try:
        with store.write() as conn:
            key = secret(conn)
            jonas = authenticate(conn, "jonas", "first-long-pw")
            assert jonas is not None
            cookie = start_session(conn, key, jonas, NOW)

        short = runner.invoke(app, ["users", "password", "jonas", "--db", db], input="short\n")
        assert short.exit_code == 2 and "password: at least 10 characters" in short.output
        nobody = runner.invoke(app, ["users", "password", "nobody", "--db", db], input="x" * 12)
        assert nobody.exit_code == 2 and "username: no user 'nobody'" in nobody.output
        with store.read() as conn:
            assert session_user(conn, key, cookie, NOW) == jonas  # refusals change nothing
        reset = runner.invoke(
            app, ["users", "password", "jonas", "--db", db], input="second-long-pw\n"
        )
        assert reset.exit_code == 0 and "their sessions are ended" in reset.output
        with store.write() as conn:
            assert session_user(conn, key, cookie, NOW) is None
            assert authenticate(conn, "jonas", "first-long-pw") is None
            jonas = authenticate(conn, "jonas", "second-long-pw")
            assert jonas is not None
            cookie = start_session(conn, key, jonas, NOW)

        out = runner.invoke(app, ["users", "signout", "jonas", "--db", db])
        assert out.exit_code == 0 and "every session of jonas is ended" in out.output
        with store.read() as conn:
            assert session_user(conn, key, cookie, NOW) is None
            assert authenticate(conn, "jonas", "second-long-pw") is not None
        assert runner.invoke(app, ["users", "signout", "nobody", "--db", db]).exit_code == 2

        last = runner.invoke(app, ["users", "remove", "anna", "--db", db])
        assert last.exit_code == 2 and "'anna' is the last administrator" in last.output
        gone = runner.invoke(app, ["users", "remove", "jonas", "--db", db])
        assert gone.exit_code == 0 and "removed user jonas" in gone.output
        with store.read() as conn:
            assert authenticate(conn, "jonas", "second-long-pw") is None
            assert authenticate(conn, "anna", "first-long-pw") is not None
    finally:
        store.close()
