"""Event types no rule names are reported when scoring, with a hint for a difference of case."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

import leadscore
from leadscore.cli import app
from leadscore.io import load_dataset
from leadscore.io.health import MAX_LISTED, unmatched_event_types
from leadscore.model.loader import parse_model

MODEL = """
name: types
version: "1"
behaviour:
  rules:
    - {name: visit, event: page_view, points: 1}
    - {name: demo, event: [demo_request], points: 20}
  frequency:
    - {name: busy, event: email_open, min_count: 3, within_days: 7, points: 5}
"""


def data_with(tmp_path: Path, types: list[str]) -> Path:
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n")
    lines = "".join(f"e{i},L1,{t},2025-12-01\n" for i, t in enumerate(types))
    (tmp_path / "events.csv").write_text("event_id,lead_id,type,ts\n" + lines)
    return tmp_path


def test_unmatched_types_are_counted_with_a_hint_for_case(tmp_path: Path) -> None:
    types = ["page_view", "PAGE_VIEW", "PAGE_VIEW", "Demo_Request", "chat", "email_open"]
    data = load_dataset(data_with(tmp_path, types))
    model = parse_model(MODEL)
    (note,) = unmatched_event_types(model, data.events)
    assert note == (
        "4 events are of types no rule of model 'types' names, so they give no points: "
        "'PAGE_VIEW' 2 (the model has 'page_view': event types are case-sensitive), "
        "'Demo_Request' 1 (the model has 'demo_request': event types are case-sensitive), "
        "'chat' 1"
    )
    # and they really give no points: only page_view counts
    scores = leadscore.score(model, data, datetime(2026, 1, 1))
    assert scores.notes == (note,)
    assert scores.top(1)[0]["behaviour"] > 0


def test_nothing_is_said_when_every_type_is_named_or_the_model_reads_no_events(
    tmp_path: Path,
) -> None:
    data = load_dataset(data_with(tmp_path, ["page_view", "email_open", "demo_request"]))
    assert unmatched_event_types(parse_model(MODEL), data.events) == []
    fit_only = parse_model('name: fit\nversion: "1"\nbehaviour: {rules: []}\n')
    assert unmatched_event_types(fit_only, data.events) == []


def test_many_types_are_listed_up_to_a_limit_and_the_rest_counted(tmp_path: Path) -> None:
    types = [f"t{i:02d}" for i in range(MAX_LISTED + 3) for _ in range(2)] + ["t99"]
    data = load_dataset(data_with(tmp_path, types))
    (note,) = unmatched_event_types(parse_model(MODEL), data.events)
    assert note.startswith(f"{len(types)} events are of types")
    assert "'t00' 2, 't01' 2" in note and "'t12'" not in note
    assert note.endswith("; and 4 more types with 7 events")


def test_the_cli_prints_the_note_when_scoring(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    folder = data_with(tmp_path / "data", ["page_view", "Page_View"])
    model = tmp_path / "m.yaml"
    model.write_text(MODEL)
    args = ["score", str(model), "--data", str(folder), "--as-of", "2026-01-01"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "s.csv")])
    assert done.exit_code == 0, done.output
    assert "1 events are of types no rule" in done.output
    assert "the model has 'page_view'" in done.output
