"""Load a scoring model from YAML, with errors that name file, line and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from leadscore.errors import ModelError
from leadscore.model.scoring import ScoringModel

Loc = tuple[str | int, ...]


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int], source: str) -> Any:
    """Build Python data from a YAML node, remembering the line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                raise ModelError(
                    f"{source}:{key_node.start_mark.line + 1}: {_dotted((*path, key))}: "
                    f"duplicate key {key!r} (first at line {lines[(*path, key)]})"
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*path, key), lines, source)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top)"


_ALIASES = {"in_": "in", "not_": "not"}
_TAGS = {"leaf", "all", "any", "not", "half_life", "linear", "step", "none"}


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    # pydantic puts union tags and our internal field names in the path; users wrote neither.
    out: list[str | int] = []
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if (
            isinstance(part, str)
            and part in _TAGS
            and (part not in ("all", "any", "not") or nxt in (part, f"{part}_"))
        ):
            continue
        if isinstance(part, str) and part.startswith(("function-", "tagged-union")):
            continue
        out.append(_ALIASES.get(part, part) if isinstance(part, str) else part)
    return tuple(out)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _expected(error: Any) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if error["type"] == "missing":
        return "required key is missing"
    given = error.get("input")
    if error["type"] not in ("value_error", "missing", "condition") and not isinstance(
        given, dict | list
    ):
        msg += f" (got {given!r})"
    return msg


def parse_model(text: str, source: str = "<model>") -> ScoringModel:
    """Parse and validate a model from YAML text; `source` names it in errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelError(f"{where}: not valid YAML: {problem}") from None
    if node is None:
        raise ModelError(
            f"{source}: the file is empty; a model needs at least `name` and `version`"
        )
    lines: dict[Loc, int] = {}
    data = _construct(node, (), lines, source)
    if not isinstance(data, dict):
        raise ModelError(f"{source}:1: a model is a mapping of keys (name, version, fit, ...)")
    try:
        return ScoringModel.model_validate(data)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"])
            unknown = re.match(r"Value error, unknown key '([^']+)'", str(error["msg"]))
            line = _line_of((*loc, unknown.group(1)) if unknown else loc, lines)
            where = f"{source}:{line}" if line is not None else source
            messages.append(f"{where}: {_dotted(loc)}: {_expected(error)}")
        raise ModelError("\n".join(dict.fromkeys(messages))) from None


def load_model(path: str | Path) -> ScoringModel:
    """Load and validate a model file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{p}: no such model file") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_model(text, str(p))
