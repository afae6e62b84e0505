"""docs/service.md and the README describe the API that exists, and their examples work."""

from __future__ import annotations

import itertools
import re
import shlex
from datetime import datetime
from pathlib import Path

from servicekit import Running

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENDPOINT = re.compile(r"`(GET|POST|PUT|DELETE) (/[^`?\s]*)")


def documented() -> set[tuple[str, str]]:
    """(method, path) pairs the guide names, including `GET a, GET b` lists."""
    found = set()
    for cell in re.findall(r"^\| `([^|]*)\|", GUIDE, re.M):
        method = None
        for part in re.split(r",\s*", cell.replace("`", "")):
            bits = part.split()
            if bits and bits[0] in ("GET", "POST", "PUT", "DELETE"):
                method, bits = bits[0], bits[1:]
            if bits and method:
                found.add((method, bits[0].split("?")[0]))
    found.update(ENDPOINT.findall(GUIDE))
    return {(m, _shape(p)) for m, p in found}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def test_the_guide_names_every_endpoint_and_no_other(running: Running) -> None:
    spec = running.anonymous.get("/openapi.json").json()
    actual = {
        (method.upper(), _shape(path))
        for path, item in spec["paths"].items()
        for method in item
        if path.startswith("/v1/") or path == "/healthz"
    }
    tracking = {
        p
        for p in actual
        if p[1].split("/")[-1] in ("identify", "track", "page", "screen", "group", "alias", "batch")
    }
    named = documented()
    missing = sorted(actual - tracking - named)
    assert not missing, f"endpoints missing from docs/service.md: {missing}"
    unknown = sorted(p for p in named if p not in actual)
    assert not unknown, f"docs/service.md names endpoints that do not exist: {unknown}"
    for path in sorted(p for _, p in tracking):
        assert f"`{path}`" in GUIDE, path


def test_the_readme_curl_examples_work(running: Running) -> None:
    running.publish((ROOT / "models" / "starter.yaml").read_text())
    running.clock.set(datetime(2026, 11, 21))  # the day after the example's event
    section = README[README.index("## The scoring service") :]
    commands = re.findall(r"^    (curl .*?)(?:#.*)?$((?:\n         .*)*)", section, re.M)
    assert len(commands) == 3
    for first, rest in commands:
        line = (first + rest).replace("\\\n", " ").replace("$KEY", running.admin_key)
        args = shlex.split(line)[1:]
        method, headers, data = "GET", {}, None
        url = next(a for a in args if a.startswith("localhost:8000"))
        for flag, value in itertools.pairwise(args):
            if flag == "-X":
                method = value
            elif flag == "-H":
                name, _, text = value.partition(":")
                headers[name.strip()] = text.strip()
            elif flag == "-d":
                data = value
        r = running.anonymous.request(
            method, url.removeprefix("localhost:8000"), headers=headers, content=data
        )
        assert r.status_code == 200, (line, r.text)
    card = r.json()
    assert card["score"]["stage"] == "MQL" and card["ledger_sum"] == card["score"]["total"]
