"""Text compared in code point order on every backend: how ties between ids and types break.

Python compares `str` by code points, and DuckDB and Spark compare strings by their UTF-8
bytes, which is the same order. PostgreSQL compares text by the database's collation instead
(`en_US` and ICU put `a` before `B`, `é` before `f`, lower before upper case), so ordering a
window by a text column there could keep another duplicate or another of two events at the same
instant than every other path. Its text as UTF-8 bytes (`bytea`) compares byte by byte.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from leadscore.engine.batch_conditions import backend_name


def _convert_to_stub(text: str, encoding: str) -> object: ...


_CONVERT_TO: Callable[[ir.Value, str], ir.Value] = ibis.udf.scalar.builtin(
    _convert_to_stub, name="convert_to", signature=(("string", "string"), "binary")
)


def byte_order(text: ir.Value) -> ir.Value:
    """A sort key that orders `text` by code points (UTF-8 bytes) on the column's backend."""
    if backend_name(text) == "postgres":
        return _CONVERT_TO(text, "UTF8")
    return text
