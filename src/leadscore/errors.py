"""The exception hierarchy of leadscore.

LeadscoreError                  base of every error leadscore raises on purpose
 ├── ModelError (ValueError)    a scoring model file is not valid
 ├── DataError (ValueError)     input data is missing a column, unreadable, or of the wrong form
 └── EngineError                a model cannot be evaluated against the data (e.g. a rule names a
                                column the data does not have, or of the wrong type)
"""

from __future__ import annotations


class LeadscoreError(Exception):
    """Base class of all leadscore errors."""


class ModelError(LeadscoreError, ValueError):
    """A scoring model is not valid; the message names file, line and field."""


class DataError(LeadscoreError, ValueError):
    """Input data is not of the expected form; the message names file, row or column."""


class EngineError(LeadscoreError, ValueError):
    """A model cannot be evaluated against the given data."""
