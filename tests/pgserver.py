"""A throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.

The Debian `postgresql` package provides the binaries (`make test` installs it); the server
runs from a temporary directory on a free port and is removed when the context ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started; the message says why and what to do."""


POSTGRES_ROOT = Path("/usr/lib/postgresql")
# initdb and postgres refuse to run as root; the Debian package creates this user.
SYSTEM_USER = "postgres"


def _postgres_bin() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin holding the server binaries."""
    candidates = [
        path.parent
        for path in POSTGRES_ROOT.glob("*/bin/pg_ctl")
        if path.parts[-3].isdigit() and (path.parent / "initdb").exists()
    ]
    if not candidates:
        raise PostgresUnavailable(
            f"PostgreSQL server binaries not found under {POSTGRES_ROOT}/*/bin; "
            "run `make test`, which installs them (apt-get install postgresql)."
        )
    return max(candidates, key=lambda path: int(path.parts[-2]))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Runner:
    """Runs PostgreSQL programs, as the `postgres` system user when we are root."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, but there is no `{SYSTEM_USER}` system user to run "
                    "PostgreSQL as; run `make test`, which installs the postgresql package."
                ) from None
            os.chown(workdir, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", SYSTEM_USER, "--"]

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *map(str, args)],
            cwd=self.workdir,  # readable by the postgres user, unlike the checkout may be
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[str]:
    """A running server; yields `postgresql://postgres@127.0.0.1:PORT`.

    Tests run without fsync (fast, nothing to survive); benchmarks ask for `durable`.
    """
    bin_dir = _postgres_bin()
    workdir = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
    try:
        run = _Runner(workdir)
        data, log = workdir / "data", workdir / "server.log"
        result = run(
            bin_dir / "initdb",
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{result.stdout}\n{result.stderr}")

        # Another process may grab the chosen port between probing and binding; retry.
        for attempt in range(3):
            port = _free_port()
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(port),
                "unix_socket_directories": f"'{workdir}'",
                "max_connections": "50",
            }
            if not durable:
                settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
            with (data / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
            result = run(bin_dir / "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", log)
            if result.returncode == 0:
                break
            if attempt == 2:
                raise PostgresUnavailable(
                    f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n"
                    f"server log:\n{_log_tail(log)}"
                )

        try:
            yield f"postgresql://postgres@127.0.0.1:{port}"
        finally:
            run(bin_dir / "pg_ctl", "stop", "-m", "fast", "-w", "-D", data)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
