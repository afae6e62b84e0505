"""Learning benchmarks (issue #5): `suggest` and `train` on the engine benchmark's data.

    make bench                           # 1,000,000 leads / ~10,000,000 events
    python benchmarks/learn.py --leads 100000

Uses the data `benchmarks/run.py` generates into benchmarks/.data/ (seed 42, with outcomes).
`suggest` and `train` each run once in a fresh subprocess, so each peak memory (max RSS) is its
own; each subprocess loads the dataset with `load_dataset` (timed apart) and then times the run
as a whole and per step (the `progress` callback marks where each step starts). After `train`
the artefact is saved to a temporary file, loaded back, and `predict` is timed over all leads.
One JSON line is printed per measurement; the results are merged into
benchmarks/learn-results.json. Target: each run in under 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "learn-results.json"
AS_OF = datetime(2026, 1, 1)
TARGET_S = 300.0
KINDS = ("suggest", "train")


def commit() -> str:
    """The code measured: git's short HEAD, marked when src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' + uncommitted src changes' if dirty else ''}" if head else "unknown"


def peak_gib() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


class Steps:
    """A progress callback that records how long each step took (a step ends where the next
    starts, the last one where `done` is called)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._since = 0.0

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self._close(now)
        self._current, self._since = name, now
        print(f"  step: {name}", file=sys.stderr, flush=True)

    def _close(self, now: float) -> None:
        if self._current is not None:
            self.seconds[self._current] = round(now - self._since, 2)

    def done(self) -> dict[str, float]:
        """Close the last step and return the seconds per step."""
        self._close(time.perf_counter())
        self._current = None
        return self.seconds


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(run: Callable[[Steps], Any]) -> tuple[Any, dict[str, Any]]:
    """Run with a Steps callback: the result and the wall seconds, CPU seconds and steps."""
    steps = Steps()
    started, cpu = time.perf_counter(), cpu_seconds()
    result = run(steps)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return result, {"seconds": round(seconds, 2), "cpu_s": round(cpu, 1), "steps": steps.done()}


def measure(kind: str, folder: Path) -> dict[str, Any]:
    """Load the data, run `kind` once and report its figures (run in a fresh process)."""
    from leadscore.io import load_dataset

    started = time.perf_counter()
    data = load_dataset(folder)
    load_s = round(time.perf_counter() - started, 2)
    load_peak = peak_gib()
    report: dict[str, Any] = {
        "kind": kind,
        "commit": commit(),
        "load_dataset_s": load_s,
        "load_peak_gib": load_peak,
    }
    if kind == "suggest":
        from leadscore.learn import suggest as module

        suggest, expected = module.suggest, module.STEPS
        found, timing = _timed(lambda progress: suggest(data, progress=progress))
        report |= timing | {
            "peak_gib": peak_gib(),
            "frame": found.frame.describe(),
            "holdout_auc_points": (
                round(found.holdout_auc_points, 4) if found.holdout_auc_points is not None else None
            ),
            "holdout_auc_float": (
                round(found.holdout_auc_float, 4) if found.holdout_auc_float is not None else None
            ),
            "baselines": {k: round(v, 4) for k, v in found.baselines.items()},
            "train_leads": found.train_leads,
            "holdout_leads": found.holdout_leads,
            "rules": len(found.rules),
            "penalty": found.penalty,
            "notes": found.notes,
        }
    elif kind == "train":
        from leadscore.learn import predictive as module

        train, save, load, predict = module.train, module.save, module.load, module.predict
        expected = module.STEPS
        predictor, timing = _timed(lambda progress: train(data, progress=progress))
        report |= timing | {
            "peak_gib": peak_gib(),
            "holdout_auc": round(predictor.metrics["holdout_auc"], 4),
            "baselines": {k: round(v, 4) for k, v in predictor.metrics["baselines"].items()},
            "split": predictor.training["split"]["kind"],
            "examples": predictor.training["examples"],
            "frame": predictor.training["frame"],
            "learner": predictor.metrics.get("learner"),
            "train_leads": predictor.training["train_leads"],
            "holdout_leads": predictor.training["holdout_leads"],
            "folds": predictor.training["folds"],
            "columns": len(predictor.columns),
            "boosting_iterations": predictor.metrics["boosting_iterations"],
        }
        with tempfile.TemporaryDirectory(prefix="leadscore-learn-") as tmp:
            path = Path(tmp) / "predictive.joblib"
            started = time.perf_counter()
            save(predictor, path)
            report["save_s"] = round(time.perf_counter() - started, 2)
            report["artefact_mib"] = round(path.stat().st_size / 2**20, 1)
            started = time.perf_counter()
            loaded = load(path)
            report["load_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        predictions = predict(loaded, data, AS_OF)
        report["predict_s"] = round(time.perf_counter() - started, 2)
        report["predicted_leads"] = len(predictions.lead_ids)
        report["peak_with_predict_gib"] = peak_gib()
    else:
        raise SystemExit(f"unknown kind {kind}")
    missing = [s for s in expected if s not in report["steps"]]
    if missing:
        report["steps_not_reported"] = missing
    report["leads"] = int(data.leads.count().execute())
    report["events"] = int(data.events.count().execute())
    report["pass"] = report["seconds"] < TARGET_S
    return report


def _subprocess(kind: str, leads: int, folder: Path) -> dict[str, Any]:
    # stderr (the steps as they start) passes through; the report is stdout's last line
    out = subprocess.run(
        [sys.executable, __file__, "--leads", str(leads), "--data", str(folder), "--one", kind],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run each measurement in its own process, print and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--one", choices=KINDS, help="run one measurement in this process")
    parser.add_argument("--only", default=",".join(KINDS), help="comma-separated: suggest,train")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--data", type=Path, help="data folder (default: benchmarks/.data/N)")
    args = parser.parse_args()
    folder = args.data or ROOT / "benchmarks" / ".data" / str(args.leads)
    if not (folder / "events.parquet").exists() or not (folder / "outcomes.parquet").exists():
        raise SystemExit(f"{folder} is missing: run benchmarks/run.py --leads {args.leads} first")
    if args.one:
        print(json.dumps(measure(args.one, folder)))
        return
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text())
    key = str(args.leads)
    entry: dict[str, Any] = results.get(key, {})
    entry |= {"date": datetime.now().date().isoformat(), "machine": machine()}
    for kind in args.only.split(","):
        got = _subprocess(kind, args.leads, folder)
        print(json.dumps(got), flush=True)
        entry[kind] = got
        verdict = "PASS" if got["pass"] else "FAIL"
        print(
            f"{verdict} {kind}: {got['seconds']:.1f} s (target < {TARGET_S:.0f} s) on "
            f"{got['leads']:,} leads / {got['events'] / 1e6:.1f}M events, "
            f"peak {got['peak_gib']:.2f} GiB",
            flush=True,
        )
    results[key] = entry
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
