"""Learning features: one example per decided lead, nothing from after its outcome."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.errors import DataError
from leadscore.io import generate, load_dataset
from leadscore.learn.features import build

AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(2000, seed=14, out=out, as_of=AS_OF)
    return out


def test_one_example_per_decided_lead_labelled_by_its_first_outcome(data_dir: Path) -> None:
    f = build(load_dataset(data_dir))
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    first: dict[str, tuple[datetime, str]] = {}
    for o in outcomes:
        if o["lead_id"] not in first or o["ts"] < first[o["lead_id"]][0]:
            first[o["lead_id"]] = (o["ts"], o["outcome"])
    assert f.lead_ids == sorted(first)
    assert f.y.tolist() == [first[i][1] == "won" for i in f.lead_ids]
    assert f.X.shape == (len(f.lead_ids), len(f.features))
    # every feature varies: at least min_support leads with and without it
    support = f.X.astype(bool).sum(axis=0)
    assert (support >= 30).all() and (support <= len(f.y) - 30).all()
    kinds = {feature.kind for feature in f.features}
    assert {"category", "band", "count"} <= kinds
    assert not any(feature.field in ("lead_id", "email", "name") for feature in f.features)


def test_events_after_the_outcome_cannot_leak(data_dir: Path, tmp_path: Path) -> None:
    before = build(load_dataset(data_dir))
    leaky = tmp_path / "leaky"
    shutil.copytree(data_dir, leaky)
    events = pq.read_table(leaky / "events.parquet")
    outcomes = pq.read_table(leaky / "outcomes.parquet").to_pylist()
    extra = [
        {
            "event_id": f"after-{i}",
            "lead_id": o["lead_id"],
            "type": "demo_request",
            # at the very instant of the outcome and after it
            "ts": o["ts"] + timedelta(seconds=i % 2 * 3600),
        }
        for i, o in enumerate(outcomes)
    ]
    more = pa.Table.from_pylist(extra, schema=events.schema)
    pq.write_table(pa.concat_tables([events, more]), leaky / "events.parquet")
    after = build(load_dataset(leaky))
    assert after.names == before.names
    assert np.array_equal(after.X, before.X)


def test_too_few_outcomes_are_refused_with_the_numbers(data_dir: Path, tmp_path: Path) -> None:
    few = tmp_path / "few"
    shutil.copytree(data_dir, few)
    outcomes = pq.read_table(few / "outcomes.parquet").to_pylist()
    won = [o for o in outcomes if o["outcome"] == "won"][:5]
    lost = [o for o in outcomes if o["outcome"] == "lost"]
    pq.write_table(pa.Table.from_pylist(won + lost), few / "outcomes.parquet")
    with pytest.raises(DataError, match=r"5 won and \d+ lost leads: learning needs at least 20"):
        build(load_dataset(few))
    pq.write_table(pa.Table.from_pylist(lost), few / "outcomes.parquet")
    with pytest.raises(DataError, match=r"only one class"):
        build(load_dataset(few))
    (few / "outcomes.parquet").unlink()
    with pytest.raises(DataError, match="no outcomes table"):
        build(load_dataset(few))
