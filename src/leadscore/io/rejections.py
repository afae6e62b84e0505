"""Write a dataset's rejection report (and the notes on rows kept) to CSV or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from leadscore.errors import DataError
from leadscore.io.formulas import safe_rows
from leadscore.schema import Rejection

__all__ = ["REJECTION_COLUMNS", "write_rejections"]

#: The columns of a rejections file, in order. `status` is `rejected` (the row was not loaded)
#: or `kept` (a note: the row was loaded, e.g. a left join found no match for its key).
REJECTION_COLUMNS: Final = ("table", "file", "row", "reason", "status")

_SUFFIXES: Final = (".csv", ".jsonl", ".ndjson")


def _rows(rejections: Iterable[Rejection], notes: Iterable[Rejection]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for status, items in (("rejected", rejections), ("kept", notes)):
        for r in items:
            rows.append(
                {"table": r.table, "file": r.source, "row": r.row, "reason": r.reason}
                | {"status": status}
            )
    return rows


def write_rejections(
    path: Path, rejections: Iterable[Rejection], notes: Iterable[Rejection] = ()
) -> int:
    """Write every rejection (and note) to `path`, CSV or JSON lines by suffix; return the count.

    A summary rejection (`... and N more rows ...`) has no row: an empty cell, or null in JSON.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise DataError(
            f"{path.name}: a rejections file is .csv or JSON lines ({', '.join(_SUFFIXES[1:])})"
        )
    rows = _rows(rejections, notes)
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            if suffix == ".csv":
                writer = csv.DictWriter(fh, fieldnames=list(REJECTION_COLUMNS))
                writer.writeheader()
                # a spreadsheet opens it: a reason or file name must not run as a formula
                writer.writerows(safe_rows(rows))
            else:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise DataError(f"{path}: cannot write the rejections: {exc}") from exc
    return len(rows)
