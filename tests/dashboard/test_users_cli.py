"""`leadscore users add`: the admin made from the command line signs in to the dashboard."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.dashboard.auth import authenticate
from leadscore.store import tables as t
from leadscore.store.database import open_store


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
