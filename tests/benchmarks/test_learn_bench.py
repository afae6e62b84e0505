"""The learning benchmark runs end to end on small data (so `make bench` cannot rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from leadscore.io import generate

ROOT = Path(__file__).resolve().parents[2]


def test_the_learning_benchmark_runs_on_small_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(3000, seed=42, out=data, as_of=datetime(2026, 1, 1))
    out = tmp_path / "results.json"
    args = ["--leads", "3000", "--data", str(data), "--out", str(out)]
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learn.py"), *args],
        check=True,
        capture_output=True,
        timeout=600,
        # one thread per pool: on two cores shared with the rest of the suite, OpenMP and BLAS
        # workers spin while they wait, many times slower than one thread
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    entry = json.loads(out.read_text())["3000"]
    for kind in ("suggest", "train"):
        assert entry[kind]["leads"] == 3000 and entry[kind]["events"] > 0
        assert entry[kind]["pass"] and entry[kind]["seconds"] > 0
    assert entry["train"]["predicted_leads"] == 3000
    assert 0.5 < entry["train"]["holdout_auc"] <= 1
