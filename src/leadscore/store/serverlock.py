"""One `leadscore serve` per SQLite file: an OS file lock next to the database.

Two servers on one SQLite file fight over its single write lock (requests fail or crawl) and
each runs the background work (rescoring, webhooks, `--model`) as if it were alone. The lock
is the operating system's (`flock`), so it goes with the process however it ends, `kill -9`
included; the file only says who holds it, for the message the second server gives.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from leadscore.errors import LeadscoreError


class ServerRunning(LeadscoreError):
    """Another process already serves this SQLite database."""


def lock_path(url: str) -> Path | None:
    """The lock file of a SQLite database file at `url` (`<file>.lock`); None for others."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".lock").resolve()


class ServerLock:
    """Held while a server runs on a SQLite file; `release` (or the process's end) frees it."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        """Give the lock up (closing the file releases the OS lock)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def acquire(url: str) -> ServerLock | None:
    """Take the server lock of the SQLite file at `url`; None when `url` is no SQLite file.

    Raises ServerRunning, naming the database and the process that holds it, when another
    server has it.
    """
    path = lock_path(url)
    if path is None:
        return None
    database = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    if not _try_lock(handle):
        handle.seek(0)
        holder = " ".join(handle.read().split()) or "a process that wrote nothing yet"
        handle.close()
        raise ServerRunning(
            f"{database}: another leadscore serve is running on this database ({holder}; "
            f"lock file {path}). Stop it first, or give this server its own --db."
        )
    handle.seek(0)
    handle.truncate()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
    handle.flush()
    return ServerLock(path, handle)
