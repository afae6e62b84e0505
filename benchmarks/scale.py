"""The cost model of issue #6: the full 31-rule model on DuckDB and on local Spark (local[2]).

    python benchmarks/scale.py                       # 100k, 1M and 5M leads (~1M, 10M, 50M events)
    python benchmarks/scale.py --leads 1000000       # one size: the 10M-event comparison

Both sides read the same generated Parquet files, score with the same compiled model and write
the scores to Parquet; each run is a fresh subprocess. Spark's start-up (the JVM and the
session) is timed apart from the scoring. The scores written by both sides are checked to be the
same (count and sum of totals) before anything is recorded. Results go to
benchmarks/scale-results.json and the plot to docs/scale-cost.svg.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine  # noqa: E402
from run import AS_OF, MODEL, data_dir  # noqa: E402

SIZES = (100_000, 1_000_000, 5_000_000)
ENGINES = ("duckdb", "local[2]")
PLOT = HERE.parent / "docs" / "scale-cost.svg"


def measure(engine: str, path: Path, out: Path) -> dict[str, Any]:
    """Score the data at `path` on `engine`, writing Parquet to `out`; the timings."""
    from leadscore.engine.batch import compile_batch
    from leadscore.io.backends import connect
    from leadscore.model import load_model
    from leadscore.schema import Dataset

    start = time.perf_counter()
    con = connect(engine)
    started = time.perf_counter()
    if engine == "duckdb":
        for name in ("leads", "accounts", "events"):
            parquet = path / f"{name}.parquet"
            con.raw_sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{parquet}')")
        tables = {name: con.table(name) for name in ("leads", "accounts", "events")}
    else:
        tables = {
            name: con.read_parquet(str(path / f"{name}.parquet"), table_name=name)
            for name in ("leads", "accounts", "events")
        }
    # the generator's files: ids unique, every event's lead known (as in benchmarks/run.py)
    data = Dataset(**tables, validated=True)
    scores = compile_batch(load_model(MODEL), data, AS_OF).scores
    if engine == "duckdb":
        con.raw_sql(f"COPY ({con.compile(scores)}) TO '{out}' (FORMAT parquet)")
    else:
        scores.to_parquet(out)  # a folder of part files, as Spark writes
    done = time.perf_counter()
    return {
        "engine": engine,
        "startup_seconds": started - start,
        "seconds": done - started,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _check(out: Path) -> tuple[int, float]:
    import duckdb

    source = f"{out}/*.parquet" if out.is_dir() else str(out)
    (row,) = duckdb.sql(f"SELECT count(*), sum(total) FROM read_parquet('{source}')").fetchall()
    return int(row[0]), float(row[1])


def _events(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path / "events.parquet").metadata.num_rows)


def run_size(leads: int) -> dict[str, Any]:
    """Both engines on one size of data, each in its own subprocess; checked to agree."""
    path = data_dir(leads)
    results: dict[str, Any] = {"leads": leads, "events": _events(path)}
    checks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ENGINES:
            out = Path(tmp) / f"{engine.replace('[', '').replace(']', '')}.parquet"
            done = subprocess.run(
                [sys.executable, __file__, "--one", engine, "--leads", str(leads), "--out", out],
                check=True,
                capture_output=True,
                text=True,
            )
            results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
            checks[engine] = _check(out)
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink()
    (count, total), (count_s, total_s) = checks["duckdb"], checks["local[2]"]
    if count != count_s or count != leads or not math.isclose(total, total_s, rel_tol=1e-12):
        raise SystemExit(f"the engines disagree: {checks}")
    results["sum_total"] = total
    results["ratio"] = results["local[2]"]["seconds"] / results["duckdb"]["seconds"]
    return results


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Seconds against events, both axes logarithmic, one line per engine, as an SVG."""
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with mpl.rc_context({"svg.hashsalt": "leadscore-scale", "svg.fonttype": "none"}):
        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = figure.add_subplot()
        events = [r["events"] for r in rows]
        for engine, label in (("duckdb", "DuckDB"), ("local[2]", "Spark local[2]")):
            seconds = [r[engine]["seconds"] for r in rows]
            ax.plot(events, seconds, marker="o", label=label)
            for x, y in zip(events, seconds, strict=True):
                ax.annotate(f"{y:.0f} s", (x, y), textcoords="offset points", xytext=(6, -10))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.set_xlabel("events (leads: a tenth of that)")
        ax.set_ylabel("seconds, Parquet in to Parquet out")
        ax.set_title("The 31-rule model on DuckDB and on local Spark (2 cores)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})


def main() -> None:
    """Measure every size (or one), print the table, save the results and the plot."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, action="append")
    parser.add_argument("--one", choices=ENGINES)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", action="store_true", help="only redraw the plot from results")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads((HERE / "scale-results.json").read_text())["sizes"], PLOT)
        return
    if args.one:
        print(json.dumps(measure(args.one, data_dir(args.leads[0]), args.out)))
        return
    rows = []
    for leads in args.leads or SIZES:
        r = run_size(leads)
        rows.append(r)
        print(
            f"{r['events']:>11,} events: DuckDB {r['duckdb']['seconds']:6.1f} s, "
            f"Spark local[2] {r['local[2]']['seconds']:6.1f} s "
            f"(+{r['local[2]']['startup_seconds']:.0f} s start-up), ratio {r['ratio']:.1f}",
            flush=True,
        )
    summary = {"date": datetime.now().isoformat(timespec="seconds"), "machine": machine()}
    summary["sizes"] = rows
    (HERE / "scale-results.json").write_text(json.dumps(summary, indent=2) + "\n")
    if len(rows) > 1:
        plot(rows, PLOT)
        print(f"plot: {PLOT}")


if __name__ == "__main__":
    main()
