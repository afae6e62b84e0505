"""A hybrid model's artefact is unpickled (code runs): its path stays inside the artefacts folder.

The model file's folder for `load_model`, the `base` folder (the service's --artefacts) for a
model parsed from text. Errors about a file that is no artefact never quote its bytes.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from leadscore.errors import ModelError
from leadscore.learn.hybrid import artefact_path
from leadscore.learn.predictive import ArtefactError, load
from leadscore.model import load_model, parse_model

HEAD = 'name: m\nversion: "1"\n'


def model_text(artefact: str) -> str:
    return HEAD + f"prediction: {{artefact: '{artefact}'}}\n"


@pytest.mark.parametrize(
    "artefact",
    [
        "/etc/passwd",
        "\\\\server\\share\\x.joblib",
        "C:\\models\\x.joblib",
        "c:x.joblib",
        "../x.joblib",
        "models/../../x.joblib",
        "models\\..\\..\\x.joblib",
        "..",
    ],
)
def test_absolute_and_climbing_paths_are_refused_at_load_time(artefact: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(model_text(artefact), "m.yaml")
    message = str(caught.value)
    assert message.startswith("m.yaml:3: prediction.artefact: ")
    assert "must be a path inside the artefacts folder" in message and "without `..`" in message


@pytest.mark.parametrize("artefact", ["x.joblib", "sub/x.joblib", "./x.joblib", "a..b.joblib"])
def test_paths_inside_the_folder_load(artefact: str) -> None:
    prediction = parse_model(model_text(artefact)).prediction
    assert prediction is not None and prediction.artefact == artefact


def test_a_symbolic_link_out_of_the_model_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.joblib").write_bytes(b"anything")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "x.joblib").symlink_to(tmp_path / "outside" / "x.joblib")
    (folder / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    for artefact in ("x.joblib", "sub/x.joblib"):
        (folder / "m.yaml").write_text(model_text(artefact))
        with pytest.raises(ModelError) as caught:
            load_model(folder / "m.yaml")
        assert str(caught.value) == (
            f"{folder / 'm.yaml'}: prediction.artefact: {artefact!r} leads outside the "
            f"artefacts folder {str(folder.resolve())!r} (through a symbolic link)"
        )
    # a link that stays inside the folder is fine, and read where it leads
    (folder / "real.joblib").write_bytes(b"anything")
    (folder / "alias.joblib").symlink_to(folder / "real.joblib")
    (folder / "m.yaml").write_text(model_text("alias.joblib"))
    prediction = load_model(folder / "m.yaml").prediction
    assert prediction is not None and prediction.artefact == str((folder / "real.joblib").resolve())


def test_a_parsed_model_is_confined_to_the_base_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "artefacts"
    base.mkdir()
    (tmp_path / "secret.joblib").write_bytes(b"anything")
    (base / "link.joblib").symlink_to(tmp_path / "secret.joblib")
    model = parse_model(model_text("link.joblib"))
    with pytest.raises(ArtefactError, match=r"'link\.joblib' leads outside the artefacts folder"):
        artefact_path(model, base)
    # without a base folder: the current one
    monkeypatch.chdir(base)
    with pytest.raises(ArtefactError, match="leads outside the artefacts folder"):
        artefact_path(model)
    ok = parse_model(model_text("sub/x.joblib"))
    assert artefact_path(ok, base) == base.resolve() / "sub" / "x.joblib"


@pytest.mark.parametrize(
    "content",
    [
        b"database_url = postgresql://leadscore:s3cret-pw@db.internal/leadscore\n",
        pickle.dumps({"database_url": "postgresql://leadscore:s3cret-pw@db.internal/x"}),
        b"\x80\x04\x95" + b"s3cret-pw" * 10,
    ],
)
def test_a_file_that_is_no_artefact_is_refused_without_quoting_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "settings.joblib"
    path.write_bytes(content)
    with pytest.raises(ArtefactError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a leadscore predictive model")
    assert "s3cret" not in message and "postgresql" not in message and "database" not in message
