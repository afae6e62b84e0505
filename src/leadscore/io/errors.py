"""Errors raised by the io layer (re-exported from `leadscore.errors`, plus the mapping error)."""

from __future__ import annotations

from leadscore.errors import DataError, LeadscoreError

__all__ = ["DataError", "LeadscoreError", "MappingError"]


class MappingError(DataError):
    """A column-mapping file is not valid; the message names the file, line and field."""
