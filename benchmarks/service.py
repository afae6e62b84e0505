"""Service benchmarks (issue #3): batch ingest, single-event latency, publishing.

Runs `leadscore serve` as a subprocess on 127.0.0.1 over SQLite and a local PostgreSQL server
(durable settings), and drives it from this process:

1. ingest: generated events posted through /v1/events/batch by two client threads; the time
   runs until every event is acknowledged AND every affected lead is rescored (no lead left
   in the queue) — "scores kept current".
2. latency: single events through /v1/events at a fixed offered rate (open loop: a slow
   answer does not slow the sender down), each answered with the lead's new score.
3. publish: 100,000 leads with about 1,000,000 events loaded into the store, then a model is
   published and the time runs until its rescoring job is done.

Load is bounded: fixed counts and a time limit per phase. Results go to
benchmarks/service-results.json; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from machine import machine  # noqa: E402

from leadscore.io.generate import generate_tables  # noqa: E402
from leadscore.service.keys import create_key  # noqa: E402
from leadscore.store import records  # noqa: E402
from leadscore.store.database import open_store  # noqa: E402
from pgserver import postgres_server  # noqa: E402

MODEL = ROOT / "benchmarks" / "model-30.yaml"
LEADSCORE = Path(sys.executable).with_name("leadscore")
CUSTOM = ("segment", "age_band", "purchasing_power")
PHASE_LIMIT = 600.0  # seconds; a phase that takes longer is reported as failed


def now() -> datetime:
    """Wall-clock now as naive UTC (the service scores as of its own now)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def lead_rows(tables: dict[str, Any]) -> list[dict[str, Any]]:
    """Generated leads with the custom columns as attributes."""
    out = []
    for r in tables["leads"].to_pylist():
        attributes = {k: r[k] for k in CUSTOM if r.get(k) is not None}
        out.append({**{k: v for k, v in r.items() if k not in CUSTOM}, "attributes": attributes})
    return out


@contextmanager
def server(url: str) -> Iterator[httpx.Client]:
    """`leadscore serve` on a free port with an admin key; yields a client."""
    store = open_store(url)
    with store.write() as conn:
        key = create_key(conn, "bench", ["admin"], now())
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="leadscore-serve-", suffix=".log")[1])
    proc = subprocess.Popen(
        [
            str(LEADSCORE),
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--no-bootstrap-key",
            "--rescore-every",
            "0",
            "--max-request-bytes",
            str(64 * 1024 * 1024),
        ],
        stdout=(out := log.open("wb")),
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"authorization": f"Bearer {key}"},
        timeout=600,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        try:
            yield client
        except Exception:
            print("server log:\n" + log.read_text()[-5000:], file=sys.stderr)
            raise
    finally:
        client.close()
        proc.terminate()
        proc.wait(60)
        out.close()
        log.unlink()


def publish(client: httpx.Client, source: str) -> dict[str, Any]:
    """Upload and publish a model; wait for its job and return the job."""
    r = client.post("/v1/models", content=source, headers={"content-type": "application/yaml"})
    r.raise_for_status()
    job_id = client.post(f"/v1/models/{r.json()['id']}/publish").json()["job_id"]
    return wait_job(client, job_id)


def wait_job(client: httpx.Client, job_id: int) -> dict[str, Any]:
    """Poll a job until it is done."""
    deadline = time.monotonic() + PHASE_LIMIT
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} not done in {PHASE_LIMIT} s: {job}")
        time.sleep(0.05)


def wait_current(client: httpx.Client) -> None:
    """Wait until no lead is queued for rescoring (polling every 5 ms)."""
    deadline = time.monotonic() + PHASE_LIMIT
    while client.get("/v1/status").json()["queued_leads"]:
        if time.monotonic() > deadline:
            raise RuntimeError("scores not current in time")
        time.sleep(0.005)


def bench_ingest(url: str, leads: int, batch: int, fresh_batches: int = 30) -> dict[str, Any]:
    """Events/s through the batch endpoint until scores are current; then, one batch at a
    time, how soon after its acknowledgement its leads' scores are current."""
    tables = generate_tables(leads, seed=42, as_of=now() - timedelta(days=1))
    everything = sorted((_jsonable(r) for r in tables["events"].to_pylist()), key=lambda e: e["ts"])
    fresh_batches = min(fresh_batches, len(everything) // batch // 4)
    split = len(everything) - fresh_batches * batch
    events, later = everything[:split], everything[split:]
    bodies = [
        json.dumps({"events": events[i : i + batch]}).encode() for i in range(0, len(events), batch)
    ]
    with server(url) as client:
        publish(client, MODEL.read_text())
        accounts = [_jsonable(r) for r in tables["accounts"].to_pylist()]
        client.post("/v1/accounts", json={"accounts": accounts}).raise_for_status()
        rows = [_jsonable(r) for r in lead_rows(tables)]
        for i in range(0, len(rows), 5000):
            client.post("/v1/leads", json={"leads": rows[i : i + 5000]}).raise_for_status()
        wait_current(client)
        headers = {"content-type": "application/json"}
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda b: client.post("/v1/events/batch", content=b, headers=headers), bodies
                )
            )
        acknowledged = time.perf_counter() - started
        wait_current(client)
        current = time.perf_counter() - started
        accepted = sum(len(a.json()["accepted"]) for a in answers)
        assert accepted == len(events), (accepted, len(events))
        lags = []
        for i in range(0, len(later), batch):
            client.post(
                "/v1/events/batch", json={"events": later[i : i + batch]}
            ).raise_for_status()
            acked = time.perf_counter()
            wait_current(client)
            lags.append(time.perf_counter() - acked)
        lags.sort()
    return {
        "leads": leads,
        "events": len(events),
        "batch": batch,
        "acknowledged_s": round(acknowledged, 2),
        "current_s": round(current, 2),
        "events_per_s": round(len(events) / current),
        "fresh_batches": len(lags),
        "current_after_ack_p50_ms": round(1000 * lags[len(lags) // 2], 1) if lags else None,
        "current_after_ack_max_ms": round(1000 * lags[-1], 1) if lags else None,
    }


def bench_latency(url: str, rate: float, seconds: float, leads: int) -> dict[str, Any]:
    """Single-event ingest latency at a fixed offered rate (open loop)."""
    with server(url) as client:
        publish(client, MODEL.read_text())
        rows = [{"lead_id": f"L{i}", "job_title": "CEO", "employees": 200} for i in range(leads)]
        client.post("/v1/leads", json={"leads": rows}).raise_for_status()
        wait_current(client)
        total = int(rate * seconds)
        base = now() - timedelta(days=2)
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()

        def send(i: int) -> None:
            nonlocal errors
            body = {
                "event_id": f"lat-{i}",
                "lead_id": f"L{i % leads}",
                "type": "page_view",
                "url": "/pricing" if i % 3 else "/product",
                "ts": (base + timedelta(seconds=i)).isoformat(),
            }
            t0 = time.perf_counter()
            r = client.post("/v1/events", json=body)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                errors += r.status_code != 200 or r.json()["score"] is None

        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, i)
        duration = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "requests": total,
        "offered_rate": rate,
        "achieved_rate": round(total / duration, 1),
        "errors": errors,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 1),
    }


def bench_publish(url: str, leads: int) -> dict[str, Any]:
    """Publishing a model that rescores every lead (events loaded straight into the store)."""
    when = now() - timedelta(days=1)
    tables = generate_tables(leads, seed=42, as_of=when)
    store = open_store(url)
    try:
        with store.write() as conn:
            records.upsert_accounts(conn, tables["accounts"].to_pylist(), when)
            records.upsert_leads(conn, lead_rows(tables), when)
        events = tables["events"]
        for start in range(0, events.num_rows, 100_000):
            with store.write() as conn:
                records.insert_events(conn, events.slice(start, 100_000).to_pylist(), when)
    finally:
        store.close()
    with server(url) as client:
        started = time.perf_counter()
        job = publish(client, MODEL.read_text())
        elapsed = time.perf_counter() - started
        assert job["status"] == "done" and job["done"] == leads, job
    return {"leads": leads, "events": events.num_rows, "seconds": round(elapsed, 1)}


def main() -> None:
    """Run the chosen phases on the chosen stores and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--phases", default="ingest,latency,publish")
    parser.add_argument("--ingest-leads", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--publish-leads", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "service-results.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"date": now().date().isoformat(), "machine": machine()}
    for store in args.stores.split(","):
        with (
            tempfile.TemporaryDirectory(prefix="leadscore-bench-") as tmp,
            _store(store, tmp) as make,
        ):
            for phase in args.phases.split(","):
                url = make(phase)
                if phase == "ingest":
                    got = bench_ingest(url, args.ingest_leads, args.batch)
                elif phase == "latency":
                    got = bench_latency(url, args.rate, args.seconds, 1000)
                else:
                    got = bench_publish(url, args.publish_leads)
                results.setdefault(store, {})[phase] = got
                print(store, phase, json.dumps(got), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {args.out}")


@contextmanager
def _store(kind: str, tmp: str) -> Iterator[Any]:
    """A factory of fresh database URLs, one per phase."""
    if kind == "sqlite":
        yield lambda phase: f"sqlite:///{tmp}/{phase}.db"
        return
    import psycopg

    with postgres_server(durable=True) as base:

        def make(phase: str) -> str:
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE bench_{phase}")
            return f"{base}/bench_{phase}"

        yield make


if __name__ == "__main__":
    main()
