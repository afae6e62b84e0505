"""Attributes of mixed types across leads (a flag here, a text there) never stop evaluation:
each column takes the type its values agree on, and what was read differently is reported."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from leadscore.service.dataset import attribute_column, read_store
from servicekit import Running

MODEL = """
name: vip
version: "1"
fit:
  rules:
    - {name: vip, when: {field: vip, equals: "yes"}, points: 10}
    - {name: seats, when: {field: seats, gt: 10}, points: 5}
behaviour:
  decay: {type: none}
  rules:
    - {name: download, event: download, points: 1}
"""


def _lead(lead_id: str, **attributes: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "source": "web", "attributes": attributes}


def test_mixed_types_across_leads_are_read_as_text_and_reported(running: Running) -> None:
    running.publish(MODEL)
    leads = [
        _lead("L1", vip=True, seats=20, plan="pro"),
        _lead("L2", vip="yes", seats=2.5, plan="pro"),
        _lead("L3", vip=1, seats=12),
        _lead("L4", plan=None),
    ]
    r = running.admin.post("/v1/leads", json={"leads": leads})
    assert r.status_code == 200, r.text
    for lead_id, outcome in (("L1", "won"), ("L2", "lost"), ("L3", "won")):
        body = {"outcome": outcome, "ts": "2026-02-20T00:00:00"}
        assert running.admin.post(f"/v1/leads/{lead_id}/outcome", json=body).status_code == 201
    running.wait_idle()

    # every evaluation used to fail with ArrowInvalid on the vip column
    for path, params in (
        ("/v1/evaluate/channels", {"as_of": "2026-03-01T00:00:00"}),
        ("/v1/evaluate/backtest", {"cutoff": "2026-02-01T00:00:00", "horizon_days": 60}),
    ):
        r = running.admin.get(path, params=params)
        assert r.status_code == 200, r.text
        assert r.json()["conversions"] == [
            {
                "table": "leads",
                "column": "vip",
                "type": "text",
                "count": 2,
                "examples": [
                    {"id": "L1", "written": True, "read": "true"},
                    {"id": "L3", "written": 1, "read": "1"},
                ],
            }
        ]

    read = read_store(running.service.store)
    leads_table = read.dataset.leads.to_pyarrow()
    assert leads_table.schema.field("vip").type == pa.string()
    assert leads_table.schema.field("seats").type == pa.float64()  # integers and decimals
    assert leads_table.schema.field("plan").type == pa.string()
    assert read.dataset.leads.order_by("lead_id").vip.to_pyarrow().to_pylist() == [
        "true",
        "yes",
        "1",
        None,
    ]


def test_a_column_takes_the_type_its_values_agree_on() -> None:
    keys = ["a", "b", "c"]
    cases = [
        ([True, None, False], pa.bool_(), None),
        ([1, 2, None], pa.int64(), None),
        ([1, 2.5, None], pa.float64(), None),
        (["x", None, "y"], pa.string(), None),
        ([None, None, None], pa.string(), None),
        ([True, 1, None], pa.string(), 2),
        ([2**64, 1, None], pa.float64(), 1),  # beyond 64 bits: a float, and said so
    ]
    for values, kind, converted in cases:
        array, note = attribute_column("leads", "x", keys, values)
        assert array.type == kind, values
        assert (note.count if note is not None else None) == converted, values
