"""Spreadsheet formula injection: text cells a spreadsheet would run get a leading quote.

Excel, LibreOffice and Google Sheets take a CSV cell that starts with `=`, `+`, `-` or `@`
as a formula (`=HYPERLINK(...)`, `+cmd|'/c calc'!A1`), and they drop a leading tab or
carriage return before looking. Lead ids, names and event types come from web forms and
trackers, so every CSV leadscore writes passes its text cells through here: such a cell gets
a leading `'`, which spreadsheets show as text and never evaluate (OWASP's advice). Only text
is touched: numbers, including negative ones, stay numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import ibis

#: What a text cell must not start with (OWASP CSV injection).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
QUOTE: Final = "'"


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell that no spreadsheet runs: text starting a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return QUOTE + value
    return value


def safe_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of cells for a CSV writer, every text cell passed through `safe_cell`."""
    return [{name: safe_cell(value) for name, value in row.items()} for row in rows]


def safe_table(table: ibis.Table) -> ibis.Table:
    """`table` with `safe_cell` applied to every text column, on any backend.

    An expression, not a pass in Python: the CSV is still written where the data lives
    (DuckDB's COPY, PostgreSQL, Spark), at the same speed.
    """
    changed: dict[str, ibis.Value] = {}
    for name, dtype in table.schema().items():
        if dtype.is_string():
            column = table[name]
            first = column.substr(0, 1)
            changed[name] = ibis.ifelse(first.isin(FORMULA_STARTS), QUOTE + column, column)
    return table.mutate(**changed) if changed else table
