"""The service benchmark runs end to end on a small load (so `make bench` cannot rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_service_benchmark_runs_on_a_small_load(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["--stores", "sqlite", "--ingest-leads", "200", "--rate", "20", "--seconds", "1"]
    args += ["--publish-leads", "300", "--out", str(out)]
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "service.py"), *args],
        check=True,
        capture_output=True,
        timeout=300,
    )
    results = json.loads(out.read_text())["sqlite"]
    assert results["ingest"]["events"] > 1000 and results["ingest"]["events_per_s"] > 0
    assert results["latency"]["requests"] == 20 and results["latency"]["errors"] == 0
    assert results["publish"]["leads"] == 300 and results["publish"]["seconds"] > 0
