"""The public surface is explicit: adding or removing a name is a decision, made here."""

import leadscore


def test_public_names_are_pinned() -> None:
    assert leadscore.__all__ == [
        "CompiledModel",
        "DataError",
        "Dataset",
        "EngineError",
        "LeadScore",
        "LeadscoreError",
        "LedgerLine",
        "ModelError",
        "Rejection",
        "Scores",
        "ScoringModel",
        "check",
        "explain",
        "generate",
        "load_dataset",
        "load_model",
        "parse_model",
        "score",
        "write_table",
    ]


def test_every_public_name_resolves() -> None:
    for name in leadscore.__all__:
        assert getattr(leadscore, name) is not None, name
