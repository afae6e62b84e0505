"""Benchmarks for issue #2: batch scoring vs hand-written DuckDB SQL, and the reference evaluator.

    make bench                      # 1,000,000 leads / ~10,000,000 events (generated once)
    python benchmarks/run.py --leads 100000

Each measurement runs in a fresh subprocess so its peak memory (max RSS) is its own. Data is
generated once into benchmarks/.data/ (ignored by git) and loaded into DuckDB before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model-30.yaml"
REFERENCE_SQL = HERE / "reference.sql"
AS_OF = datetime(2026, 1, 1)


def data_dir(leads: int) -> Path:
    """Where the generated data for `leads` leads lives (generated on first use)."""
    path = HERE / ".data" / f"{leads}"
    if not (path / "events.parquet").exists():
        from leadscore.io import generate

        print(f"generating {leads:,} leads into {path} ...", flush=True)
        generate(leads, seed=42, kind="mixed", out=path, as_of=AS_OF)
    return path


def _connect(path: Path) -> Any:
    import ibis

    con = ibis.duckdb.connect()
    # Views over the Parquet files: each run reads its input, as `leadscore score` would, and
    # neither side pays for holding 10M events in memory before it starts.
    for name in ("leads", "accounts", "events"):
        con.raw_sql(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path / (name + '.parquet')}')"
        )
    return con


def measure_one(kind: str, path: Path) -> dict[str, Any]:
    """Time one scoring run of `kind` (engine or reference) on loaded tables."""
    from leadscore.engine.batch import compile_batch
    from leadscore.model import load_model
    from leadscore.schema import Dataset

    con = _connect(path)
    rows = {
        "leads": con.table("leads").count().execute(),
        "events": con.table("events").count().execute(),
    }
    start = time.perf_counter()
    if kind == "engine":
        model = load_model(MODEL)
        # The files come from leadscore's generator: ids unique, every event's lead known.
        data = Dataset(
            leads=con.table("leads"),
            events=con.table("events"),
            accounts=con.table("accounts"),
            validated=True,
        )
        scores = compile_batch(model, data, AS_OF).scores
        # Ibis 12's create_table(overwrite=True) emits SQL DuckDB 2.0 rejects; CTAS does the same.
        con.raw_sql(f"CREATE OR REPLACE TABLE result AS {con.compile(scores)}")
    elif kind == "reference":
        sql = REFERENCE_SQL.read_text().replace("$AS_OF", AS_OF.isoformat(sep=" "))
        con.raw_sql(f"CREATE OR REPLACE TABLE result AS {sql}")
    else:
        raise SystemExit(f"unknown kind {kind}")
    seconds = time.perf_counter() - start
    total = con.raw_sql("SELECT sum(total) FROM result").fetchone()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"kind": kind, "seconds": seconds, "peak_bytes": peak, "sum_total": total, **rows}


def measure_reference_evaluator(path: Path, sample_leads: int) -> dict[str, Any]:
    """Events per second of the Python reference evaluator on one core, for the same model."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from leadscore.engine.reference import CompiledModel, score_many
    from leadscore.model import load_model

    leads = pq.read_table(path / "leads.parquet").slice(0, sample_leads)
    ids = leads.column("lead_id")
    events = pq.read_table(path / "events.parquet")
    events = events.filter(pc.is_in(events.column("lead_id"), value_set=ids))
    accounts = pq.read_table(path / "accounts.parquet").to_pylist()
    lead_rows, event_rows = leads.to_pylist(), events.to_pylist()
    compiled = CompiledModel(load_model(MODEL))
    timings = []
    for _ in range(3):
        start = time.process_time()
        score_many(compiled, lead_rows, event_rows, AS_OF, accounts=accounts)
        timings.append(time.process_time() - start)
    best = min(timings)
    return {
        "kind": "reference-evaluator",
        "leads": len(lead_rows),
        "events": len(event_rows),
        "seconds": best,
        "events_per_second": len(event_rows) / best,
    }


def _subprocess(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run every benchmark and print a summary (and write benchmarks/results.json)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=["engine", "reference"])
    parser.add_argument("--evaluator", action="store_true")
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()
    path = data_dir(args.leads)
    if args.one:
        print(json.dumps(measure_one(args.one, path)))
        return
    if args.evaluator:
        print(json.dumps(measure_reference_evaluator(path, args.sample)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"engine": [], "reference": []}
    for i in range(args.repeat):
        for kind in ("reference", "engine"):
            r = _subprocess(["--leads", str(args.leads), "--one", kind])
            runs[kind].append(r)
            print(
                f"run {i + 1} {kind:9}: {r['seconds']:.2f} s, "
                f"peak {r['peak_bytes'] / 2**30:.2f} GiB",
                flush=True,
            )
    eng, ref = runs["engine"], runs["reference"]
    if abs(eng[0]["sum_total"] - ref[0]["sum_total"]) > 1e-6 * max(1.0, abs(ref[0]["sum_total"])):
        raise SystemExit(
            f"engine and reference disagree: {eng[0]['sum_total']} vs {ref[0]['sum_total']}"
        )
    evaluator = _subprocess(
        ["--leads", str(args.leads), "--evaluator", "--sample", str(args.sample)]
    )
    summary = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "leads": eng[0]["leads"],
        "events": eng[0]["events"],
        "engine_seconds_median": statistics.median(r["seconds"] for r in eng),
        "reference_seconds_median": statistics.median(r["seconds"] for r in ref),
        "engine_peak_gib": max(r["peak_bytes"] for r in eng) / 2**30,
        "reference_peak_gib": max(r["peak_bytes"] for r in ref) / 2**30,
        "evaluator": evaluator,
    }
    summary["ratio"] = summary["engine_seconds_median"] / summary["reference_seconds_median"]
    (HERE / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
