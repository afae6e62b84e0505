"""Reading, writing, mapping and generating data in leadscore's canonical tables."""

from leadscore.io.errors import MappingError
from leadscore.io.generate import (
    GenerationSummary,
    generate,
    generate_dataset,
    generate_tables,
)
from leadscore.io.mapping import Mapping, apply_mapping, load_mapping, packaged_mapping
from leadscore.io.readers import load_dataset, write_table

__all__ = [
    "GenerationSummary",
    "Mapping",
    "MappingError",
    "apply_mapping",
    "generate",
    "generate_dataset",
    "generate_tables",
    "load_dataset",
    "load_mapping",
    "packaged_mapping",
    "write_table",
]
