"""The one rule for reading a timestamp from text, on every path (files, mappings, the service).

A timestamp is an ISO 8601 date, optionally followed by a time and a UTC offset:

    2026-03-01                      midnight
    2026-3-1                        months and days may have one digit
    2026-03-01T12:00                T, t or one space between date and time
    2026-03-01 2:05:09.123456789    hours may have one digit; the fraction is cut to microseconds
    2026-03-01T24:00                the end of a day: midnight of the next one
    2026-03-01T12:00:00Z            Z, UTC or GMT (any case), optionally after one space
    2026-03-01 12:00:00 +02:00      +HH, +HHMM, +HH:MM, +HHMMSS, +HH:MM:SS (or -), optionally
                                    after one space; up to 23:59:59

and nothing else: an offset the rule does not know (a zone name such as `CET`) rejects the
value instead of being dropped. The result is naive UTC and must lie in years 1-9999, both as
written and once converted to UTC. `PATTERN` is written for both Python's `re` and RE2 (DuckDB),
so that the readers' SQL and `parse_timestamp` accept exactly the same texts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = [
    "ACCEPTED",
    "EXPECTED",
    "GROUPS",
    "MAX",
    "MIN",
    "PATTERN",
    "TimestampError",
    "parse_timestamp",
]

#: What a rejection says was expected.
EXPECTED: Final = "expected ISO 8601 like 2026-03-01T12:00:00"
#: The accepted forms in one line, for messages about options and parameters people type.
ACCEPTED: Final = (
    "accepted: a date (2026-03-01), optionally a time after T or a space (12:00, 12:00:00.5) "
    "and a UTC offset, directly or after a space (Z, UTC, GMT, +02, +0200, +02:00, +02:00:00); "
    "no zone names such as CET"
)

_DATE: Final = r"([0-9]{4,})-([0-9]{1,2})-([0-9]{1,2})"
_TIME: Final = r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
_ZONE: Final = (
    r"([Zz]|[Uu][Tt][Cc]|[Gg][Mm][Tt])"
    r"|([+-])([01][0-9]|2[0-3])(?::([0-5][0-9])(?::([0-5][0-9]))?|([0-5][0-9])([0-5][0-9])?)?"
)
#: The whole grammar; the groups are named, in order, by GROUPS.
PATTERN: Final = rf"^{_DATE}(?:[Tt ]{_TIME} ?(?:{_ZONE})?)?$"
GROUPS: Final = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fraction",
    "utc",
    "sign",
    "off_h",
    "off_m",
    "off_s",
    "off_m_basic",
    "off_s_basic",
)

#: The first and last instants a timestamp may be (Python's datetime, pyarrow's conversions).
MIN: Final = datetime(1, 1, 1)
MAX: Final = datetime(9999, 12, 31, 23, 59, 59, 999_999)

_COMPILED: Final = re.compile(PATTERN)


class TimestampError(ValueError):
    """A text is not a timestamp by the rule of this module; the message says why."""


def parse_timestamp(text: str) -> datetime:
    """Naive UTC from an ISO 8601 text (module docstring); TimestampError when it is none."""
    # spaces only, as the readers trim values (SQL TRIM): a tab or newline is no timestamp
    found = _COMPILED.fullmatch(text.strip(" "))
    if found is None:
        raise TimestampError(f"cannot parse {_shown(text)} as a timestamp ({EXPECTED})")
    g = dict(zip(GROUPS, found.groups(), strict=True))
    year = int(g["year"])
    if not 1 <= year <= 9999:
        raise TimestampError(f"{_shown(text)} is outside the years 1-9999")
    hour = int(g["hour"] or 0)
    minute = int(g["minute"] or 0)
    second = int(g["second"] or 0)
    micro = int(((g["fraction"] or "") + "000000")[:6])
    end_of_day = hour == 24 and minute == second == 0 and not (g["fraction"] or "").strip("0")
    try:
        local = datetime(year, int(g["month"]), int(g["day"]), 0 if end_of_day else hour)
        local = local.replace(minute=minute, second=second, microsecond=micro)
    except ValueError:
        raise TimestampError(
            f"cannot parse {_shown(text)} as a timestamp (no such date or time)"
        ) from None
    try:
        if end_of_day:
            local += timedelta(days=1)
        offset = _offset_seconds(g, text)
        # datetime arithmetic raises OverflowError past year 9999 and before year 1
        result = local - timedelta(seconds=offset)
    except OverflowError:
        raise TimestampError(f"{_shown(text)} is outside the years 1-9999 in UTC") from None
    return result


def _offset_seconds(g: dict[str, str | None], text: str) -> int:
    if not g["sign"]:
        return 0
    hours = int(g["off_h"] or 0)
    minutes = int(g["off_m"] or g["off_m_basic"] or 0)
    seconds = int(g["off_s"] or g["off_s_basic"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise TimestampError(f"cannot parse {_shown(text)} as a timestamp (no such UTC offset)")
    total = hours * 3600 + minutes * 60 + seconds
    return -total if g["sign"] == "-" else total


def aware_to_naive_utc(value: datetime) -> datetime:
    """An aware datetime as naive UTC (naive ones are UTC already); TimestampError past 1-9999."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise TimestampError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
