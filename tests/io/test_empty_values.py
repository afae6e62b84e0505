"""Empty text is a missing value in every format, so rules score a lead alike from any file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import leadscore
from leadscore.io import load_dataset
from leadscore.model.loader import parse_model
from leadscore.service.inputs import EventIn, LeadIn

MODEL = """
name: empty
version: "1"
fit:
  rules:
    - {name: no_plan, when: {field: plan, exists: false}, points: 10}
    - {name: no_city, when: {field: country, exists: false}, points: 5}
behaviour:
  rules: []
"""

LEADS = [
    {"lead_id": "L1", "country": "", "plan": ""},
    {"lead_id": "L2", "country": "DE", "plan": "pro"},
]


def write(tmp_path: Path, fmt: str) -> Path:
    folder = tmp_path / fmt
    folder.mkdir()
    path = folder / f"leads.{fmt}"
    if fmt == "csv":
        path.write_text("lead_id,country,plan\nL1,,\nL2,DE,pro\n")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in LEADS))
    else:
        pq.write_table(pa.Table.from_pylist(LEADS), path)
    return folder


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_empty_text_is_null_in_every_format(tmp_path: Path, fmt: str) -> None:
    data = load_dataset(write(tmp_path, fmt))
    rows = {r["lead_id"]: r for r in data.leads.to_pyarrow().to_pylist()}
    assert (rows["L1"]["country"], rows["L1"]["plan"]) == (None, None)
    assert (rows["L2"]["country"], rows["L2"]["plan"]) == ("DE", "pro")


def test_exists_false_scores_a_lead_alike_from_every_format(tmp_path: Path) -> None:
    model = parse_model(MODEL)
    as_of = datetime(2026, 1, 1)
    totals = {}
    for fmt in ("csv", "jsonl", "parquet"):
        data = load_dataset(write(tmp_path, fmt))
        scores = leadscore.score(model, data, as_of).table.to_pyarrow().to_pylist()
        totals[fmt] = {r["lead_id"]: r["total"] for r in scores}
        explained = leadscore.explain(model, data, "L1", as_of)
        assert explained.total == 15.0, fmt
    assert totals == {fmt: {"L1": 15.0, "L2": 0.0} for fmt in ("csv", "jsonl", "parquet")}


def test_the_api_reads_an_empty_attribute_as_missing() -> None:
    lead = LeadIn(lead_id="L1", attributes={"plan": "", "seats": 0, "note": " "})
    assert lead.attributes == {"plan": None, "seats": 0, "note": " "}
    event = EventIn(event_id="e", lead_id="L1", type="t", ts="2026-01-01", attributes={"x": ""})
    assert event.attributes == {"x": None}
