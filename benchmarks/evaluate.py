"""Evaluation benchmark (issue #4): a backtest at one cut-off against one batch scoring run.

Uses the data `benchmarks/run.py` generates (1,000,000 leads, about 10,000,000 events, in
benchmarks/.data/) and the same 31-rule model. Both sides read the Parquet files through
DuckDB in the same process; each is run three times and the medians are compared. Target: the
backtest in under 3x the time of the scoring run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

from leadscore.api import score
from leadscore.evaluate.backtest import backtest
from leadscore.io import load_dataset
from leadscore.model import load_model

ROOT = Path(__file__).resolve().parents[1]
CUTOFF = datetime(2025, 10, 1)


def main() -> None:
    """Time both sides and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = ROOT / "benchmarks" / ".data" / str(args.leads)
    if not folder.exists():
        raise SystemExit(f"{folder} is missing: run benchmarks/run.py --leads {args.leads} first")
    model = load_model(ROOT / "benchmarks" / "model-30.yaml")
    scoring, testing = [], []
    for _ in range(args.repeat):
        data = load_dataset(folder)
        started = time.perf_counter()
        table = score(model, data, CUTOFF).table
        table.aggregate(total=table.total.sum()).to_pyarrow()  # run the whole query
        scoring.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = backtest(model, data, CUTOFF)
        testing.append(time.perf_counter() - started)
    report = {
        "leads": args.leads,
        "cutoff": CUTOFF.isoformat(),
        "scoring_s": round(statistics.median(scoring), 2),
        "backtest_s": round(statistics.median(testing), 2),
        "ratio": round(statistics.median(testing) / statistics.median(scoring), 2),
        "auc": result.auc,
        "evaluated_leads": result.truth.leads,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
