"""Learning features: rules in the engine's semantics, from events before each cut-off only."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.io import generate, load_dataset
from leadscore.learn import examples as ex
from leadscore.learn.features import RECENT_WINDOWS, build, folded_codes, nice

AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(2000, seed=14, out=out, as_of=AS_OF)
    return out


def test_every_feature_varies_and_names_a_rule(data_dir: Path) -> None:
    data = load_dataset(data_dir)
    found = ex.examples(data, ex.frame(data))
    f = build(data, found)
    assert f.X.shape == (found.table.num_rows, len(f.features))
    train = ~f.holdout
    support = f.X[train].astype(bool).sum(axis=0)
    assert (support >= 30).all() and (support <= train.sum() - 30).all()
    kinds = {feature.kind for feature in f.features}
    assert {"category", "count", "recent"} <= kinds and kinds & {"at_least", "below"}
    assert not any(feature.field in ("lead_id", "email", "name") for feature in f.features)
    # account fields are features too, named as rules name them
    assert any(feature.field.startswith("account.") for feature in f.features)
    assert {feature.days for feature in f.features if feature.kind == "recent"} <= set(
        RECENT_WINDOWS
    )
    # thresholds are numbers a person writes, and all of a field's point one way
    for feature in f.features:
        if feature.threshold is not None:
            assert feature.threshold == nice(feature.threshold)
    fields: dict[str, set[str]] = {}
    for feature in f.features:
        if feature.kind in ("at_least", "below"):
            fields.setdefault(feature.field, set()).add(feature.kind)
    assert fields and all(len(k) == 1 for k in fields.values())


def test_events_after_the_last_cutoff_or_the_outcome_cannot_leak(
    data_dir: Path, tmp_path: Path
) -> None:
    data = load_dataset(data_dir)
    fr = ex.frame(data)
    before = build(data, ex.examples(data, fr))
    leaky = tmp_path / "leaky"
    shutil.copytree(data_dir, leaky)
    events = pq.read_table(leaky / "events.parquet")
    leads = pq.read_table(leaky / "leads.parquet")["lead_id"].to_pylist()
    assert fr.evaluation is not None
    # at the very instant of the last cut-off and after it ...
    extra = [
        {
            "event_id": f"after-{i}",
            "lead_id": lead,
            "type": "demo_request",
            "ts": fr.evaluation + timedelta(seconds=(i % 2) * 3600),
        }
        for i, lead in enumerate(leads[::3])
    ]
    # ... and at or after each lead's outcome, which ends its examples
    outcomes = pq.read_table(leaky / "outcomes.parquet").to_pylist()
    extra += [
        {
            "event_id": f"decided-{i}",
            "lead_id": o["lead_id"],
            "type": "contract_signed",
            "ts": o["ts"] + timedelta(seconds=(i % 2) * 3600),
        }
        for i, o in enumerate(outcomes)
    ]
    more = pa.Table.from_pylist(extra, schema=events.schema)
    pq.write_table(pa.concat_tables([events, more]), leaky / "events.parquet")
    changed = load_dataset(leaky)
    after = build(changed, ex.examples(changed, fr))
    assert after.names == before.names
    assert np.array_equal(after.X, before.X)


def test_categories_are_folded_as_the_engine_compares_text() -> None:
    index, values = folded_codes(
        pa.array(["Google", "google", "GOOGLE", "Straße", "STRASSE", None])
    )
    assert index.tolist() == [0, 0, 0, 1, 1, -1]
    assert values == ["Google", "Straße"]


def test_nice_numbers() -> None:
    assert [nice(v) for v in (0.7333, 1234.0, -1.83, 0.0)] == [0.73, 1200.0, -1.8, 0.0]
