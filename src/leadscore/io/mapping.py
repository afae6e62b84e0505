"""Column-mapping files: turn a CRM / marketing-automation export into the canonical tables.

A mapping is a YAML file (see docs/data.md) read into the pydantic model `Mapping`. It names,
for each canonical table, where every column comes from: a source column (optionally with a
value map and a timestamp format) or a constant. One wide export (one row per lead) can yield
leads, accounts, events (one event per row and rule, e.g. from an aggregate counter) and outcomes.
An export of several files (`files:`) is joined by key (`joins:`, many-to-one only), and each
table may take its rows from a different file (`tables:`).
The rows then go through the same validation as `load_dataset`, so bad rows are rejections
that name the export file and its data row.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import ibis
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from leadscore.io.errors import DataError, MappingError
from leadscore.io.readers import (
    Relation,
    duckdb_connection,
    load_relations,
    quote_ident,
    quote_literal,
    source_sql,
    split_suffix,
)
from leadscore.schema import TABLES, ColumnType, Dataset

__all__ = [
    "ColumnSpec",
    "EventRule",
    "EventsSpec",
    "FileSpec",
    "JoinSpec",
    "Mapping",
    "SourceSpec",
    "apply_mapping",
    "load_mapping",
    "packaged_mapping",
]

Scalar = str | int | float | bool | None

MAPPINGS_DIR: Final = Path(__file__).resolve().parent.parent / "mappings"

_RESERVED_PREFIX: Final = "__ls_"


def _key_text(key: object) -> str:
    """The text a YAML key stands for: value maps compare text, and YAML reads `1:` as a number."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class ColumnSpec(BaseModel):
    """Where one output column comes from: a source column (`from`), a constant (`const`) or
    the data row number after a prefix (`row`, e.g. `{row: "S"}` gives S1, S2, ...: an id for
    exports without one; rows are numbered as rejections number them).

    In YAML a plain string is short for `{from: <string>}` and a number, boolean or null for
    `{const: <value>}`. `values` maps source text to output values (unmapped values are kept, or
    made null with `other: null`); `format` is a strptime format for timestamps that are not
    ISO 8601; `type` declares the type of a custom column (canonical columns have theirs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(default=None, alias="from")
    const: Scalar = None
    row: str | None = None
    type: ColumnType | None = None
    values: dict[str, Scalar] = Field(default_factory=dict)
    other: Literal["keep", "null"] = "keep"
    format: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"from": data}
        if data is None or isinstance(data, int | float | bool):
            return {"const": data}
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _value_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {_key_text(k): v for k, v in data.items()}
        return data

    @field_validator("other", mode="before")
    @classmethod
    def _other(cls, data: Any) -> Any:
        # In YAML `other: null` reads as None; it means the same as "null".
        return "null" if data is None else data

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        origins = [n for n in ("from_", "const", "row") if n in self.model_fields_set]
        if len(origins) != 1:
            raise ValueError(
                "give exactly one of `from` (a source column), `const` or `row` (the row number)"
            )
        if origins[0] != "from_" and (self.values or self.format):
            raise ValueError("`values` and `format` apply to a source column only")
        return self


class SourceSpec(BaseModel):
    """How to read the export file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "parquet", "jsonl"] | None = None
    delimiter: str | None = None
    encoding: str | None = None
    null_values: list[str] = Field(default_factory=list)


class FileSpec(BaseModel):
    """One file of a multi-file export: its name or glob (relative to the data folder) and how
    to read it; options not given are the `source` section's. A plain string is short for
    `{path: <string>}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    format: Literal["csv", "parquet", "jsonl"] | None = None
    delimiter: str | None = None
    encoding: str | None = None
    null_values: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


Normalise = Literal["spaces", "case", "punctuation"]


class JoinSpec(BaseModel):
    """Join `file` onto `to` (the first file by default) by key: each row of `to` finds at most
    one row of `file`. `on` pairs a column of `to` with one of `file` (a plain name: the same on
    both sides; a list: several such columns). `normalise` compares keys without whitespace
    (`spaces`), case (`case`) or punctuation (`punctuation`); `values` maps key text of `to` to
    key text of `file` first ("GTX Pro": "GTXPro"). A `left` join keeps a row without a match
    (and notes it), an `inner` join rejects it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    to: str | None = None
    on: dict[str, str]
    kind: Literal["left", "inner"] = "left"
    normalise: list[Normalise] = Field(default_factory=list)
    values: dict[str, str] = Field(default_factory=dict)

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {data: data}
        if isinstance(data, list) and all(isinstance(c, str) for c in data):
            return {c: c for c in data}
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _value_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {_key_text(k): _key_text(v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _check(self) -> JoinSpec:
        if not self.on:
            raise ValueError("`on` names no key column")
        if self.values and len(self.on) != 1:
            raise ValueError("`values` applies to a join on one key column")
        return self


_FILE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

TableName = Literal["leads", "accounts", "events", "outcomes"]


class EventRule(BaseModel):
    """One event per source row: `name` plus event columns (type and ts are required).

    No event is made for a row where `type` is empty or `value` is empty or, unless
    `skip_zero` is false, zero: an aggregate counter of 0 means nothing happened.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    skip_zero: bool = True
    columns: dict[str, ColumnSpec]

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict) and "columns" not in data:
            fixed = {k: data[k] for k in ("name", "skip_zero") if k in data}
            return {**fixed, "columns": {k: v for k, v in data.items() if k not in fixed}}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("use letters, digits, _ . - in a rule name")
        return value


class EventsSpec(BaseModel):
    """Event rules, and column specs every rule gets unless it sets the column itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, ColumnSpec] = Field(default_factory=dict)
    rules: list[EventRule]

    @model_validator(mode="after")
    def _check(self) -> EventsSpec:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two event rules are named {rule.name!r}")
            seen.add(rule.name)
            for needed in ("type", "ts"):
                if needed not in rule.columns and needed not in self.defaults:
                    raise ValueError(f"event rule {rule.name!r} needs `{needed}`")
            _check_columns("events", {**self.defaults, **rule.columns})
        return self


def _check_columns(table: str, columns: dict[str, ColumnSpec]) -> None:
    canonical = {c.name: c for c in TABLES[table]}
    for name, spec in columns.items():
        if name.startswith(_RESERVED_PREFIX):
            raise ValueError(f"column names starting with {_RESERVED_PREFIX!r} are reserved")
        column = canonical.get(name)
        if column is not None and spec.type is not None and spec.type != column.type:
            raise ValueError(f"{name} is a canonical column of type {column.type}, not {spec.type}")


class Mapping(BaseModel):
    """A column-mapping file: how an export (one file, or several joined) becomes leads,
    accounts, events, outcomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    name: str | None = None
    description: str | None = None
    source: SourceSpec = Field(default_factory=SourceSpec)
    files: dict[str, FileSpec] | None = None
    joins: list[JoinSpec] = Field(default_factory=list)
    tables: dict[TableName, str] = Field(default_factory=dict)
    leads: dict[str, ColumnSpec]
    accounts: dict[str, ColumnSpec] | None = None
    events: EventsSpec | None = None
    outcomes: dict[str, ColumnSpec] | None = None

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _files(cls, value: dict[str, FileSpec] | None) -> dict[str, FileSpec] | None:
        if value is not None:
            if not value:
                raise ValueError("`files` names no file")
            for name in value:
                if not _FILE_NAME.fullmatch(name):
                    raise ValueError(
                        f"file name {name!r}: use letters, digits, _ and - (no dots: "
                        "columns of a file are written <file>.<column>)"
                    )
        return value

    @field_validator("joins")
    @classmethod
    def _joins(cls, value: list[JoinSpec], info: ValidationInfo) -> list[JoinSpec]:
        files = info.data.get("files")
        if value and files is None:
            raise ValueError("`joins` needs `files`, the files to join")
        if not value or files is None:
            return value
        first = next(iter(files))
        joined: set[str] = set()
        for i, join in enumerate(value):
            at = f"join {i + 1} (file {join.file})"
            if join.file not in files:
                raise ValueError(f"{at}: {join.file!r} is not one of the files: {', '.join(files)}")
            to = join.to or first
            if to not in files:
                raise ValueError(f"{at}: `to` {to!r} is not one of the files: {', '.join(files)}")
            if join.file == first or join.file in joined:
                raise ValueError(
                    f"{at}: {join.file!r} is already read (the first file, or joined before); "
                    "to join a file twice, list it twice in `files` under two names"
                )
            if to != first and to not in joined:
                raise ValueError(
                    f"{at}: `to` {to!r} must be the first file ({first}) or a file joined "
                    "by an earlier join"
                )
            joined.add(join.file)
        return value

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        files = info.data.get("files")
        if value and files is None:
            raise ValueError("`tables` needs `files`, the files tables are read from")
        for table, name in value.items():
            if files is not None and name not in files:
                raise ValueError(f"{table}: {name!r} is not one of the files: {', '.join(files)}")
        return value

    @field_validator("leads")
    @classmethod
    def _leads(cls, value: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if "lead_id" not in value:
            raise ValueError("leads needs `lead_id`")
        _check_columns("leads", value)
        return value

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: dict[str, ColumnSpec] | None) -> dict[str, ColumnSpec] | None:
        if value is not None:
            if "account_id" not in value:
                raise ValueError("accounts needs `account_id`")
            _check_columns("accounts", value)
        return value

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, value: dict[str, ColumnSpec] | None) -> dict[str, ColumnSpec] | None:
        if value is not None:
            for needed in ("outcome", "ts"):
                if needed not in value:
                    raise ValueError(f"outcomes needs `{needed}`")
            _check_columns("outcomes", value)
        return value

    @model_validator(mode="after")
    def _own_lead_ids(self) -> Mapping:
        leads_file = self.file_of("leads")
        for table in ("events", "outcomes"):
            section = getattr(self, table)
            if section is None or self.file_of(table) == leads_file:
                continue
            if table == "outcomes":
                missing = "lead_id" not in section
            else:
                missing = "lead_id" not in section.defaults and any(
                    "lead_id" not in r.columns for r in section.rules
                )
            if missing:
                raise ValueError(
                    f"{table} are read from file {self.file_of(table)!r}, leads from "
                    f"{leads_file!r}: give {table} its own `lead_id`"
                )
        return self

    def file_of(self, table: str) -> str | None:
        """The file a table's rows come from: `tables`, else the first file (None: one file)."""
        if self.files is None:
            return None
        for name, file in self.tables.items():
            if name == table:
                return file
        return next(iter(self.files))

    def joins_into(self, base: str) -> list[tuple[int, JoinSpec]]:
        """The joins (index, spec) that apply to rows of file `base`: its subtree, in order."""
        reached = {base}
        first = next(iter(self.files)) if self.files else base
        found: list[tuple[int, JoinSpec]] = []
        for i, join in enumerate(self.joins):
            if (join.to or first) in reached:
                reached.add(join.file)
                found.append((i, join))
        return found

    def where(self, *loc: str | int) -> str:
        """Name the file and line of a field, e.g. 'x.yaml, line 12, leads.country'."""
        field = _dotted(loc)
        line = _line_for(self._lines, loc)
        place = str(self._path.name) if self._path else "mapping"
        return f"{place}, line {line}, {field}" if line else f"{place}, {field}"


# ---------------------------------------------------------------------------------------------
# Loading YAML with line numbers


class _Loader(yaml.SafeLoader):
    """YAML with only true/false as booleans (so `Yes: true` keeps the key 'Yes') and no dates."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith((":bool", ":timestamp"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _to_python(
    loader: _Loader,
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    file: str,
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise MappingError(f"{file}, line {key_node.start_mark.line + 1}: invalid key")
            if key in out:
                raise MappingError(
                    f"{file}, line {key_node.start_mark.line + 1}, "
                    f"{_dotted((*path, _key_text(key)))}: duplicate key"
                )
            child = (*path, _key_text(key))
            out[key] = _to_python(loader, value_node, child, lines, file)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*path, i), lines, file) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if part == "columns":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _line_for(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    # Models nest some fields (an event rule's columns) where the YAML does not.
    path = tuple(p for p in loc if p != "columns")
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file; errors name the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping file: {exc}") from exc
    return _parse_mapping(text, path)


def packaged_mapping(name: str) -> Mapping:
    """Load a mapping shipped with leadscore by name, e.g. 'x-education'."""
    path = MAPPINGS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml")))
        raise MappingError(f"no packaged mapping {name!r}; available: {known}")
    return load_mapping(path)


def _parse_mapping(text: str, path: Path) -> Mapping:
    lines: dict[tuple[str | int, ...], int] = {}
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise MappingError(f"{path.name}: the mapping file is empty")
        data = _to_python(loader, node, (), lines, path.name)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise MappingError(f"{path.name}{line}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}, line 1: a mapping file is a YAML mapping of sections")
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            # Shorthand parsing and unions add type names to loc; they mean nothing to users.
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
            )
            line_no = _line_for(lines, loc)
            where = f"line {line_no}, " if line_no else ""
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{path.name}, {where}{_dotted(loc)}: {message}")
        raise MappingError("\n".join(problems)) from exc
    mapping._path = path
    mapping._lines = lines
    return mapping


# ---------------------------------------------------------------------------------------------
# Applying a mapping


def _literal(value: Scalar) -> str:
    if value is None:
        return "CAST(NULL AS VARCHAR)"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    return quote_literal(str(value))


@dataclass(frozen=True)
class _Source:
    """A column a mapping may name: the column of the table the SQL reads, and its nulls."""

    ident: str
    nulls: tuple[str, ...]
    origin: str | None = None  # SQL naming file and row of a joined file's value, for reasons


class _Builder:
    """Turns column specs into SQL text expressions over the materialized source table."""

    def __init__(
        self,
        mapping: Mapping,
        columns: dict[str, _Source],
        label: str,
        ambiguous: frozenset[str] = frozenset(),
    ) -> None:
        self.mapping = mapping
        self.columns = columns
        self.label = label
        self.ambiguous = ambiguous

    def expr(self, spec: ColumnSpec, loc: tuple[str | int, ...]) -> str:
        if "const" in spec.model_fields_set:
            return _literal(spec.const)
        if spec.row is not None:
            return f"({quote_literal(spec.row)} || CAST(__ls_row AS VARCHAR))"
        assert spec.from_ is not None
        name = spec.from_
        if name in self.ambiguous:
            raise MappingError(
                f"{self.mapping.where(*loc)}: {name!r} is both a column of {self.label} and "
                "<file>.<column> of a joined file; write the base file's name before it"
            )
        source = self.columns.get(name)
        if source is None:
            near = [c for c in self.columns if c.strip().lower() == name.strip().lower()]
            near += [c for c in self.columns if c.split(".", 1)[-1] == name and c not in near]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            shown = ", ".join(repr(c) for c in self.columns)
            raise MappingError(
                f"{self.mapping.where(*loc)}: source column {name!r} not found in "
                f"{self.label}{hint}; its columns are: {shown}"
            )
        text = f"NULLIF(TRIM(CAST({quote_ident(source.ident)} AS VARCHAR)), '')"
        text = _nulls(text, source.nulls)
        if spec.values:
            cases = " ".join(
                f"WHEN {quote_literal(k)} THEN {_literal(v)}" for k, v in spec.values.items()
            )
            other = text if spec.other == "keep" else "CAST(NULL AS VARCHAR)"
            text = f"(CASE {text} {cases} ELSE {other} END)"
        elif spec.other == "null":
            text = "CAST(NULL AS VARCHAR)"
        if spec.format:
            # A value the format does not fit stays as it was, so validation reports it.
            fmt = quote_literal(spec.format)
            parsed = f"try_strptime({text}, {fmt})"
            if "%z" in spec.format or "%Z" in spec.format:
                # with a zone, DuckDB yields TIMESTAMPTZ, which strftime shows in the session's
                # time zone: the offset must be applied here, not lost there
                parsed = f"timezone('UTC', {parsed})"
            parsed = f"strftime({parsed}, '%Y-%m-%dT%H:%M:%S.%f')"
            text = f"coalesce({parsed}, {text})"
        return text

    def origin(self, spec: ColumnSpec) -> str | None:
        """SQL naming the file and row a joined column's value is read from (None: the row's)."""
        source = self.columns.get(spec.from_) if spec.from_ is not None else None
        return source.origin if source is not None else None

    def select(
        self, table: str, specs: dict[str, ColumnSpec], loc: tuple[str | int, ...]
    ) -> tuple[list[str], list[str], dict[str, ColumnType]]:
        names: list[str] = []
        exprs: list[str] = []
        declared: dict[str, ColumnType] = {}
        canonical = {c.name for c in TABLES[table]}
        for name, spec in specs.items():
            names.append(name)
            exprs.append(self.expr(spec, (*loc, name)))
            if name not in canonical and spec.type is not None:
                declared[name] = spec.type
        return names, exprs, declared


def _nulls(text: str, nulls: Sequence[str]) -> str:
    if not nulls:
        return text
    listed = ", ".join(quote_literal(v) for v in nulls)
    return f"(CASE WHEN {text} IN ({listed}) THEN NULL ELSE {text} END)"


@dataclass(frozen=True)
class _Ctx:
    """Where one table's rows come from: the SQL table, its row number and order, its name."""

    builder: _Builder
    src: str
    row: str
    order: str
    label: str


def _relation(
    table: str,
    label: str,
    sql: str,
    names: list[str],
    declared: dict[str, ColumnType],
    origins: dict[str, str] | None = None,
) -> Relation:
    columns = (("__ls_row", "BIGINT"), *((n, "VARCHAR") for n in names))
    return Relation(
        table=table,
        label=label,
        sql=f"({sql})",
        columns=columns,
        row_column="__ls_row",
        declared=declared,
        origins=origins or {},
    )


def _with_origins(
    b: _Builder, specs: dict[str, ColumnSpec], names: list[str], exprs: list[str]
) -> dict[str, str]:
    """Add a column naming file and row for each value read from a joined file."""
    origins: dict[str, str] = {}
    for name, spec in specs.items():
        origin = b.origin(spec)
        if origin is not None and name in names:
            origins[name] = f"{_RESERVED_PREFIX}o_{name}"
            names.append(origins[name])
            exprs.append(origin)
    return origins


def _aliased(names: list[str], exprs: list[str]) -> str:
    return ", ".join(
        f"CAST({e} AS VARCHAR) AS {quote_ident(n)}" for n, e in zip(names, exprs, strict=True)
    )


def _build_relations(mapping: Mapping, ctxs: dict[str, _Ctx]) -> dict[str, Relation]:
    relations: dict[str, Relation] = {}

    c = ctxs["leads"]
    row = f"{c.row} AS __ls_row"
    names, exprs, declared = c.builder.select("leads", mapping.leads, ("leads",))
    origins = _with_origins(c.builder, mapping.leads, names, exprs)
    relations["leads"] = _relation(
        "leads",
        c.label,
        f"SELECT {row}, {_aliased(names, exprs)} FROM {c.src}",
        names,
        declared,
        origins,
    )

    if mapping.accounts is not None:
        c = ctxs["accounts"]
        row = f"{c.row} AS __ls_row"
        names, exprs, declared = c.builder.select("accounts", mapping.accounts, ("accounts",))
        key = exprs[names.index("account_id")]
        origins = _with_origins(c.builder, mapping.accounts, names, exprs)
        outer = ", ".join(["__ls_row", *(quote_ident(n) for n in names)])
        # One account per distinct id, with the attributes of its first row.
        sql = (
            f"SELECT {outer} FROM (SELECT {row}, {_aliased(names, exprs)}, "
            f"row_number() OVER (PARTITION BY {key} ORDER BY {c.order}) AS __ls_k "
            f"FROM {c.src} WHERE {key} IS NOT NULL) WHERE __ls_k = 1 ORDER BY __ls_row"
        )
        relations["accounts"] = _relation("accounts", c.label, sql, names, declared, origins)

    if mapping.events is not None and mapping.events.rules:
        c = ctxs["events"]
        b = c.builder
        row = f"{c.row} AS __ls_row"
        all_names: list[str] = []
        per_rule: list[tuple[EventRule, dict[str, str]]] = []
        declared_all: dict[str, ColumnType] = {}
        event_origins: dict[str, str] = {}
        for i, rule in enumerate(mapping.events.rules):
            loc: tuple[str | int, ...] = ("events", "rules", i)
            specs = {**mapping.events.defaults, **rule.columns}
            exprs_by_name: dict[str, str] = {}
            for name, spec in specs.items():
                where = loc if name in rule.columns else ("events", "defaults")
                exprs_by_name[name] = b.expr(spec, (*where, name))
                if spec.type is not None and name not in {c.name for c in TABLES["events"]}:
                    declared_all[name] = spec.type
            if "lead_id" not in exprs_by_name:
                exprs_by_name["lead_id"] = b.expr(mapping.leads["lead_id"], ("leads", "lead_id"))
            exprs_by_name.setdefault(
                "event_id", f"({exprs_by_name['lead_id']}) || {quote_literal(':' + rule.name)}"
            )
            for name, spec in specs.items():
                origin = b.origin(spec)
                if origin is not None:
                    event_origins[name] = f"{_RESERVED_PREFIX}o_{name}"
                    exprs_by_name[event_origins[name]] = origin
            for name in exprs_by_name:
                if name not in all_names:
                    all_names.append(name)
            per_rule.append((rule, exprs_by_name))
        selects = []
        for rule, exprs_by_name in per_rule:
            cols = [exprs_by_name.get(n, "CAST(NULL AS VARCHAR)") for n in all_names]
            conditions = [f"({exprs_by_name['type']}) IS NOT NULL"]
            if "value" in exprs_by_name:
                value = exprs_by_name["value"]
                conditions.append(f"({value}) IS NOT NULL")
                if rule.skip_zero:
                    conditions.append(f"NOT coalesce(TRY_CAST({value} AS DOUBLE) = 0, false)")
            selects.append(
                f"SELECT {row}, {_aliased(all_names, cols)} FROM {c.src} "
                f"WHERE {' AND '.join(conditions)}"
            )
        relations["events"] = _relation(
            "events", c.label, " UNION ALL ".join(selects), all_names, declared_all, event_origins
        )

    if mapping.outcomes is not None:
        c = ctxs["outcomes"]
        row = f"{c.row} AS __ls_row"
        specs = dict(mapping.outcomes)
        names, exprs, declared = c.builder.select("outcomes", specs, ("outcomes",))
        if "lead_id" not in names:
            names.insert(0, "lead_id")
            exprs.insert(0, c.builder.expr(mapping.leads["lead_id"], ("leads", "lead_id")))
        outcome = exprs[names.index("outcome")]
        origins = _with_origins(c.builder, specs, names, exprs)
        # An empty outcome means the lead is still open: no outcome row, not a rejection.
        sql = f"SELECT {row}, {_aliased(names, exprs)} FROM {c.src} WHERE ({outcome}) IS NOT NULL"
        relations["outcomes"] = _relation("outcomes", c.label, sql, names, declared, origins)
    return relations


@contextmanager
def _temp_table(con: Any, name: str) -> Iterator[None]:
    try:
        yield
    finally:
        con.raw_sql(f"DROP TABLE IF EXISTS {quote_ident(name)}")


def _read_source(
    con: Any,
    path: Path,
    name: str,
    fmt: Literal["csv", "parquet", "jsonl"] | None,
    delimiter: str | None,
    encoding: str | None,
) -> dict[str, str]:
    """Copy one export file into the temporary table `name`; return its (column, type)s."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if fmt is None:
        _, fmt = split_suffix(path)
    sql, described = source_sql(con, path, fmt, delimiter=delimiter, encoding=encoding)
    keep = _insertion_order(con)
    try:
        con.raw_sql(f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT * FROM {sql}")
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise DataError(f"{path.name}: cannot read: {message}") from exc
    finally:
        keep()
    return {column: typ for column, typ in described}


def apply_mapping(
    mapping: Mapping,
    source_path: str | Path | Sequence[str | Path],
    con: ibis.BaseBackend | None = None,
) -> Dataset:
    """Read an export with `mapping` into a validated Dataset (rejections name file and row).

    `source_path` is the one export file; for a mapping with `files`, the data folder that
    holds them, or the files themselves.
    """
    items = (
        [Path(source_path)]
        if isinstance(source_path, str | Path)
        else [Path(p) for p in source_path]
    )
    if con is None:
        con = ibis.duckdb.connect()
    duckdb_connection(con)
    if mapping.files is not None:
        from leadscore.io.joins import apply_files

        return apply_files(mapping, items, con)
    if len(items) != 1:
        raise DataError("a mapping without `files` applies to one export file; got several paths")
    path = items[0]
    if path.is_dir():
        raise DataError(
            f"{path}: a mapping applies to one export file, not a directory "
            "(a mapping of several files names them under `files`)"
        )
    src = f"source_{uuid.uuid4().hex[:8]}"
    source = mapping.source
    with _temp_table(con, src):
        described = _read_source(con, path, src, source.format, source.delimiter, source.encoding)
        nulls = tuple(source.null_values)
        columns = {name: _Source(name, nulls) for name in described}
        ctx = _Ctx(
            _Builder(mapping, columns, path.name), quote_ident(src), "rowid + 1", "rowid", path.name
        )
        relations = _build_relations(mapping, dict.fromkeys(TABLES, ctx))
        return load_relations(con, relations)


def _insertion_order(con: Any) -> Any:
    """Make DuckDB keep file order (row numbers depend on it); return a function undoing it."""
    (value,) = con.raw_sql("SELECT current_setting('preserve_insertion_order')").fetchone()
    if value:
        return lambda: None
    con.raw_sql("SET preserve_insertion_order = true")
    return lambda: con.raw_sql("SET preserve_insertion_order = false")
