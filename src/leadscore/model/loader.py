"""Load a scoring model from YAML, with errors that name file, line and field."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import SafeConstructor

from leadscore.errors import ModelError
from leadscore.model.scoring import ScoringModel

Loc = tuple[str | int, ...]

_MERGE = "tag:yaml.org,2002:merge"
# Bounds on what one model file may cost to read. The shipped models are 4-12 kB, at most 10
# levels deep and at most 539 values; the bounds are far above that and far below what stalls a
# server (a 469-byte YAML "billion laughs" expands to a billion values through its aliases).
MAX_MODEL_BYTES = 1_048_576
MAX_DEPTH = 64
MAX_VALUES = 100_000
_AS_WRITTEN_TAGS = (
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
)


class ModelTooLarge(ModelError):
    """A model file over MAX_MODEL_BYTES (the service answers 413)."""


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than MAX_DEPTH before it recurses into it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # PyYAML composes recursively: 1,000 levels end in a RecursionError, not an error here.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """Builds Python data from a YAML node tree, remembering the line of every path."""

    def __init__(self, source: str, budget: list[int] | None = None) -> None:
        self.source = source
        self.lines: dict[Loc, int] = {}
        self._scalars = SafeConstructor()
        self._open: set[int] = set()
        # values still to build, shared with the builders of merged mappings
        self._budget = budget if budget is not None else [MAX_VALUES]

    def fail(self, node: yaml.Node, path: Loc, message: str) -> ModelError:
        """A ModelError at `node`'s line."""
        return ModelError(f"{self.source}:{node.start_mark.line + 1}: {_dotted(path)}: {message}")

    def build(self, node: yaml.Node, path: Loc) -> Any:
        """The data of `node`, found at `path`."""
        if id(node) in self._open:
            raise self.fail(node, path, "an alias refers to a node that contains it")
        self._budget[0] -= 1
        if self._budget[0] < 0:
            # an alias repeats the whole of what it refers to, every time it is used
            raise self.fail(
                node,
                path,
                f"the model expands to more than {MAX_VALUES:,} values (YAML aliases `*name` "
                "repeat what they refer to); a model needs far fewer",
            )
        if len(path) > MAX_DEPTH:
            raise self.fail(
                node,
                path[:MAX_DEPTH],
                f"nested more than {MAX_DEPTH} levels deep (through aliases)",
            )
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self._open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._open.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self._open.add(id(node))
            try:
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        if path == ("version",) and node.tag in _AS_WRITTEN_TAGS:
            # As written: `version: 1.10` is not the float 1.1, nor `2025-01-31` a date.
            return str(node.value)
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Loc) -> Any:
        """The value of a scalar node; unreadable ones (`2025-13-45`, `!!foo x`) are errors."""
        try:
            return self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(node, path, f"cannot read {node.value!r}: {problem}") from None

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "a key must be plain text, not a list or mapping")
            key = self.scalar(key_node, path)
            if key in out:
                raise self.fail(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first at line {self.lines[(*path, key)]})",
                )
            out[key] = self.build(value_node, (*path, key))
            self.lines[(*path, key)] = key_node.start_mark.line + 1
        # `<<: *defaults` fills in the keys not given here; earlier merges win over later ones.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self.fail(src, (*path, "<<"), "`<<` merges mappings only")
                inner = _Builder(self.source, self._budget)
                inner._open = self._open
                merged = inner.build(src, path)
                for key, value in merged.items():
                    if key not in out:
                        out[key] = value
                        n = len(path) + 1
                        self.lines.update(
                            (loc, line)
                            for loc, line in inner.lines.items()
                            if len(loc) >= n and loc[:n] == (*path, key)
                        )
        return out


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top)"


_ALIASES = {"in_": "in", "not_": "not"}
# The branch names pydantic gives the members of a union such as `str | list[str]`.
_UNION_MEMBER = re.compile(r"str|int|float|bool|(list|tuple|dict)\[.*\]")
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
        if isinstance(part, str) and (
            part.startswith(("function-", "tagged-union")) or _UNION_MEMBER.fullmatch(part)
        ):
            continue
        out.append(_ALIASES.get(part, part) if isinstance(part, str) else part)
    return tuple(out)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _expected(error: Any) -> tuple[str, str]:
    """The message of a pydantic error, and ` (got <value>)` when the bad value is worth showing."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    # "instance of Fit" names a Python class, which a YAML author never sees.
    msg = re.sub(r" or instance of \w+", "", msg).replace(
        "valid dictionary", "mapping (key: value)"
    )
    if error["type"] == "missing":
        if error["loc"] and isinstance(error["loc"][-1], int):
            return "a value is missing here", ""
        return "required key is missing", ""
    given = error.get("input")
    shown = ("value_error", "condition", "unknown_key")
    if error["type"] not in shown and not isinstance(given, dict | list):
        return msg, f" (got {given!r})"
    return msg, ""


def parse_model(text: str, source: str = "<model>") -> ScoringModel:
    """Parse and validate a model from YAML text; `source` names it in errors."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), source)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # reads the first characters, which may be invalid
        node = loader.get_single_node()
    except _TooDeep as exc:
        line = f":{exc.mark.line + 1}" if exc.mark is not None else ""
        raise ModelError(
            f"{source}{line}: nested more than {MAX_DEPTH} levels deep; a model needs far fewer"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)
        if mark is not None:
            where = f"{source}:{mark.line + 1}"
        elif isinstance(position, int):
            # A reader error (e.g. a control character) knows its offset only.
            where = f"{source}:{text.count(chr(10), 0, position) + 1}"
        else:
            where = source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelError(f"{where}: not valid YAML: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()
    builder = _Builder(source)
    data = builder.build(node, ()) if node is not None else None
    if data is None:
        raise ModelError(
            f"{source}: the file is empty; a model needs at least `name` and `version`"
        )
    if not isinstance(data, dict):
        raise ModelError(
            f"{source}:{builder.lines[()]}: a model is a mapping of keys (name, version, fit, ...)"
        )
    try:
        return ScoringModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(_report(exc, builder.lines, source)) from None


def _report(exc: ValidationError, lines: dict[Loc, int], source: str) -> str:
    """One `file:line: field: message` per problem; a union's alternatives as one line."""
    found: dict[tuple[str, Loc], tuple[list[str], str]] = {}
    problems = []
    for error in exc.errors():
        msg, got = _expected(error)
        # the checks across the model give all their problems in one message, a line each
        problems += [(_clean_loc(error["loc"]), line, got) for line in msg.split("\n")]
    for loc, msg, got in problems:
        unknown = re.match(r"unknown key (.+?); expected", msg)
        inside = re.match(r"((?:[A-Za-z_]\w*|\[\d+\])(?:\.[A-Za-z_]\w*|\[\d+\])*): (.*)", msg)
        if unknown:
            loc = (*loc, _literal(unknown.group(1)))
        elif not loc and inside:
            # Checks across sections name the place in their message; point there.
            loc = tuple(
                int(part[1:-1]) if part.startswith("[") else part
                for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", inside.group(1))
            )
            msg = inside.group(2)
        line = _line_of(loc, lines)
        where = f"{source}:{line}" if line is not None else source
        msgs, _ = found.setdefault((where, loc), ([], got))
        if msg not in msgs:
            msgs.append(msg)
    out = []
    for (where, loc), (msgs, got) in found.items():
        text = msgs[0]
        if len(msgs) > 1:
            rest = [m.removeprefix("Input should be ") for m in msgs[1:]]
            text = ", ".join([text, *rest[:-1]]) + f" or {rest[-1]}"
        out.append(f"{where}: {_dotted(loc)}: {text}{got}")
    return "\n".join(out)


def _literal(text: str) -> str | int:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str | int) else text


def _check_size(size: int, source: str) -> None:
    if size > MAX_MODEL_BYTES:
        raise ModelTooLarge(
            f"{source}: the model is {size:,} bytes, more than the {MAX_MODEL_BYTES:,} bytes a "
            "model may have"
        )


def load_model(path: str | Path) -> ScoringModel:
    """Load and validate a model file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_MODEL_BYTES + 1)  # not the whole of a huge (or endless) file
            if len(raw) > MAX_MODEL_BYTES:
                _check_size(max(os.fstat(f.fileno()).st_size, len(raw)), str(p))
    except FileNotFoundError:
        raise ModelError(f"{p}: no such model file") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the model file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ModelError(
            f"{p}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    model = parse_model(text, str(p))
    if model.prediction is not None:
        # the artefact travels with the model file, wherever the command is run from
        try:
            where = model.prediction.inside(p.parent)
        except ValueError as exc:
            raise ModelError(f"{p}: {exc}") from None
        prediction = model.prediction.model_copy(update={"artefact": str(where)})
        model = model.model_copy(update={"prediction": prediction})
    return model
