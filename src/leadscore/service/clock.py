"""The service's notion of now (naive UTC); the engine itself never reads a clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock as naive UTC to the microsecond."""
    return datetime.now(UTC).replace(tzinfo=None)
