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
    width, height, left, bottom, top, right = 640, 400, 70, 50, 30, 150
    xs = [r["events"] for r in rows]
    ys = [r[e]["seconds"] for r in rows for e in ENGINES]
    x0, x1 = math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (math.log10(y) - y0) / (y1 - y0) * (height - bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Full model (31 rules): seconds to score, '
        "read Parquet to written Parquet</text>",
    ]
    for p in range(y0, y1 + 1):
        for m in (1, 2, 5):
            v = m * 10**p
            if 10**y0 <= v <= 10**y1:
                y = py(v)
                parts.append(
                    f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#ddd"/>'
                )
                parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for x in xs:
        parts.append(
            f'<text x="{px(x):.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{x / 1e6:.0f}M events</text>"
        )
    parts.append(
        f'<text x="16" y="{(height - bottom + top) / 2:.0f}" '
        f'transform="rotate(-90 16 {(height - bottom + top) / 2:.0f})" '
        'text-anchor="middle">seconds (log)</text>'
    )
    for engine, colour, label in (
        ("duckdb", "#1f77b4", "DuckDB"),
        ("local[2]", "#d62728", "Spark local[2]"),
    ):
        points = [(px(r["events"]), py(r[engine]["seconds"])) for r in rows]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), r in zip(points, rows, strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
            parts.append(
                f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{colour}">'
                f"{r[engine]['seconds']:.0f} s</text>"
            )
        lx, ly = points[-1]
        parts.append(f'<text x="{lx + 40:.1f}" y="{ly + 4:.1f}" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    """Measure every size (or one), print the table, save the results and the plot."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, action="append")
    parser.add_argument("--one", choices=ENGINES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
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
