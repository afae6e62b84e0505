"""Datasets from leadscore's readers and generator are marked validated; the engine relies on it."""

from __future__ import annotations

from pathlib import Path

from leadscore.io import load_dataset
from leadscore.io.generate import generate_dataset


def test_readers_mark_checked_events_validated(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n")
    (tmp_path / "events.csv").write_text(
        "event_id,lead_id,type,ts\ne1,L1,page_view,2026-01-01\ne1,L1,page_view,2026-01-01\n"
        "e2,L9,page_view,2026-01-01\n"
    )
    data = load_dataset(tmp_path)
    assert data.validated
    ids = data.events.to_pyarrow().column("event_id").to_pylist()
    assert ids == ["e1"]  # the duplicate and the unknown lead's event were rejected, reported
    assert len(data.rejections) == 2


def test_generated_datasets_are_validated() -> None:
    assert generate_dataset(50, seed=2).validated
