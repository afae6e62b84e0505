"""Test support: `leadscore serve` as a real process on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LEADSCORE = str(Path(sys.executable).with_name("leadscore"))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_process(port: int, log: Path, *args: str, wait: float = 60.0) -> subprocess.Popen[bytes]:
    """`leadscore serve --port PORT ARGS...` with its output in `log`, once it answers."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [LEADSCORE, "serve", "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("leadscore serve did not start: " + log.read_text())
