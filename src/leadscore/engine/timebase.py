"""Time as the engine sees it: naive UTC instants counted in whole microseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1)
_ONE_MICRO = timedelta(microseconds=1)


def utc_naive(ts: datetime) -> datetime:
    """A datetime as naive UTC (aware ones are converted, naive ones taken as UTC)."""
    if ts.tzinfo is not None:
        return ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def shifted(ts: datetime, delta: timedelta) -> datetime:
    """`ts` moved by `delta`, held at the first or last instant a datetime holds (years 1 to
    9999): a window reaching past them covers no more data than one ending there."""
    try:
        return ts + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def micros(ts: datetime) -> int:
    """Microseconds since 1970-01-01 (naive UTC)."""
    return (ts - EPOCH) // _ONE_MICRO


def period_start(ts: datetime, period: str) -> date:
    """The first day of the calendar day, ISO week (Monday) or month holding `ts`."""
    day = ts.date()
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def fmt_number(value: float) -> str:
    """A number as people write it in notes: 7 not 7.0, 7.5 as 7.5."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
