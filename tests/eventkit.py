"""Event tables with duplicate event ids, for the tests that files and databases agree on them."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc


def with_duplicates(events: pa.Table) -> pa.Table:
    """Every 7th event again, after it in the file: a later copy of another type, an earlier
    copy (which is the one that counts) and an earlier copy of a lead nobody knows."""
    picked = events.take(list(range(0, events.num_rows, 7)))
    ts = picked.column("ts")
    later = picked.set_column(
        picked.schema.get_field_index("ts"), "ts", pc.add(ts, pa.scalar(timedelta(days=1)))
    ).set_column(
        picked.schema.get_field_index("type"), "type", pa.array(["demo_request"] * len(picked))
    )
    earlier = picked.set_column(
        picked.schema.get_field_index("ts"), "ts", pc.subtract(ts, pa.scalar(timedelta(hours=5)))
    )
    stranger = earlier.set_column(
        picked.schema.get_field_index("lead_id"), "lead_id", pa.array(["nobody"] * len(picked))
    ).set_column(
        picked.schema.get_field_index("ts"), "ts", pc.subtract(ts, pa.scalar(timedelta(days=3)))
    )
    return pa.concat_tables([stranger, events, later, earlier])
