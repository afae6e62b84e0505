"""The `leadscore` command line: a thin layer over the public API."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from leadscore import api
from leadscore.errors import LeadscoreError
from leadscore.model import load_model
from leadscore.model.scoring import ScoringModel

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

app = typer.Typer(
    help="leadscore: lead scoring with readable models and explained points.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
# A ledger needs room; when output is not a terminal (a pipe, a log) do not squeeze it to 80.
wide = console if console.is_terminal else Console(width=max(console.width, 132))

ModelArg = Annotated[Path, typer.Argument(help="The model file (YAML).")]
DataOpt = Annotated[
    list[Path],
    typer.Option(
        "--data",
        "-d",
        help="A folder with leads/accounts/events/outcomes files, or such files (repeatable).",
    ),
]
# listed from the package folder: importing the mapping module would load DuckDB and Ibis
_SHIPPED_MAPPINGS = sorted(p.stem for p in (Path(__file__).parent / "mappings").glob("*.yaml"))
MappingOpt = Annotated[
    str | None,
    typer.Option(
        "--mapping",
        "-m",
        help="A column-mapping file (YAML), or the name of a shipped one "
        f"({', '.join(_SHIPPED_MAPPINGS)}), that turns a CRM/marketing-automation export given "
        "as --data (one file, or for a mapping of several files their folder) into the "
        "canonical tables.",
    ),
]
RejectionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--rejections",
        help="Write every input row that was not accepted (table, file, row, reason) to this "
        "file, .csv or .jsonl; notes on rows kept (a join without a match) too, as status kept.",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Score as of this instant (ISO 8601, UTC if no offset). Default: now.",
    ),
]
LangOpt = Annotated[str, typer.Option("--lang", help="Label language: en or de.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Run where the data is: duckdb (files, default), duckdb:///file.db, "
        "postgres://user@host/db, or Spark (local[N], spark://host:port; --data may name a "
        "folder of Parquet files); the leads/events/accounts/outcomes tables are read.",
    ),
]
ExcludeOpt = Annotated[
    list[str], typer.Option("--exclude", help="A lead field not to learn from (repeatable).")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Also write the results as JSON here.")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", help="Also write a self-contained HTML report with plots."),
]

_LABELS = {
    "en": ("Part", "Rule", "Event", "When", "Base", "Factor", "Points", "Note", "Total"),
    "de": (
        "Teil",
        "Regel",
        "Ereignis",
        "Zeitpunkt",
        "Basis",
        "Faktor",
        "Punkte",
        "Hinweis",
        "Summe",
    ),
}


def _fail(message: str) -> typer.Exit:
    # messages quote the user's text (`[low, high]`, a regex): never read it as rich markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=2)


def parse_as_of(text: str | None, option: str = "--as-of") -> datetime:
    """An instant option (--as-of, --cutoff) as naive UTC, by the one timestamp rule of files
    and the API (leadscore.timestamps); now when not given (the CLI reads the clock)."""
    from leadscore.timestamps import ACCEPTED, TimestampError, parse_timestamp

    if text is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        return parse_timestamp(text)
    except TimestampError as exc:
        raise _fail(f"{option}: {exc}; {ACCEPTED}") from None


def _load(model_path: Path) -> ScoringModel:
    try:
        return load_model(model_path)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None


def _task(label: str, work: Callable[[], T]) -> T:
    """Run `work` with a spinner; a LeadscoreError ends the command with its message."""
    try:
        with _progress() as progress:
            progress.add_task(label, total=None)
            return work()
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None


def _steps(steps: Sequence[str], work: Callable[[Callable[[str], None]], T]) -> T:
    """Run `work` with a progress bar over its named steps; `work` reports each as it starts."""
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(steps[0], total=len(steps))

            def step(name: str) -> None:
                done = steps.index(name) if name in steps else 0
                progress.update(task, description=name, completed=done)

            found = work(step)
            progress.update(task, completed=len(steps))
            return found
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _data_or_backend(
    paths: list[Path], mapping: str | None, backend: str | None, rejections: Path | None = None
) -> Any:
    """Files read into DuckDB, or the tables of the database --backend names."""
    if backend is None or backend == "duckdb":
        return _load_data(paths, mapping, rejections)
    from leadscore.io.backends import dataset_from, is_spark

    if mapping or (paths and not (is_spark(backend) and len(paths) == 1)):
        raise _fail(
            "give --data (files) or --backend (a database with the tables), not both; "
            "with Spark, --data may name one folder of Parquet files"
        )
    try:
        data = dataset_from(backend, paths[0] if paths else None)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None
    if rejections is not None:
        # a database's rows are not rejected one by one: the file says so by being empty
        _write_rejections(rejections, data)
    return data


def _load_data(
    paths: list[Path], mapping: str | None = None, rejections: Path | None = None
) -> Any:
    from leadscore.io import load_dataset, load_mapping
    from leadscore.io.mapping import packaged_mapping

    if not paths:
        raise _fail("--data is required: a folder or files with leads and events")
    try:
        rules = None
        if mapping is not None:
            is_file = Path(mapping).suffix in (".yaml", ".yml") or Path(mapping).exists()
            rules = load_mapping(mapping) if is_file else packaged_mapping(mapping)
        data = load_dataset(paths, mapping=rules)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None
    if data.rejections:
        _report_rejections(data.rejections, rejections)
    if data.notes:
        _report_rejections(data.notes, rejections, "input rows were kept with a note")
    if rejections is not None:
        _write_rejections(rejections, data)
    return data


def _write_rejections(path: Path, data: Any) -> None:
    from leadscore.io.rejections import write_rejections

    try:
        n = write_rejections(path, data.rejections, data.notes)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None
    err.print(escape(f"{path}: {n} rejected or noted rows written"), highlight=False)


def _report_rejections(
    rejections: Any, path: Path | None, what: str = "input rows were not accepted"
) -> None:
    err.print(f"[yellow]{len(rejections)} {what}:[/]", highlight=False)
    for r in rejections[:20]:
        where = f"{r.source}" + (f" row {r.row}" if r.row is not None else "")
        err.print(escape(f"  {r.table}: {where}: {r.reason}"), highlight=False)
    if len(rejections) > 20:
        more = f"  ... and {len(rejections) - 20} more"
        if path is None:
            more += " (write them all with --rejections FILE)"
        else:
            more += f" (all of them in {path})"
        err.print(escape(more), highlight=False)


@app.command()
def check(
    model: ModelArg,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", "-d", help="Also check the fields the model reads against this data."
        ),
    ] = None,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
) -> None:
    """Validate a model; with --data, also that every field it reads is in the data."""
    scoring = _load(model)
    if rejections is not None and not data:
        raise _fail("--rejections needs --data: the rows it lists are those of the data files")
    problems = api.check(scoring, _load_data(data, mapping, rejections) if data else None)
    if problems:
        for p in problems:
            err.print(f"[bold red]error:[/] {escape(f'{model}: {p}')}", highlight=False)
        raise typer.Exit(code=2)
    rules = len(scoring.fit.rules) + len(scoring.behaviour.rules) + len(scoring.behaviour.frequency)
    console.print(
        "[green]ok[/] "
        + escape(f"{model}: model {scoring.name!r} version {scoring.version}, {rules} rules"),
        highlight=False,
    )


@app.command()
def score(
    model: ModelArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write scores: .csv, .parquet or .jsonl."),
    ] = None,
    data: DataOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    as_of: AsOfOpt = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Also write the ledger (.csv/.parquet/.jsonl).")
    ] = None,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    backend: BackendOpt = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="Write the scores back into the --backend database as this table "
            "(schema.table allowed), replacing it.",
        ),
    ] = None,
    ledger_table: Annotated[
        str | None,
        typer.Option("--ledger-table", help="Also write the ledger back as this table."),
    ] = None,
) -> None:
    """Score every lead as of an instant and write the scores (and optionally the ledger)."""
    if out is None and table is None:
        raise _fail("say where the scores go: --out FILE, or --table NAME with --backend")
    if (table or ledger_table) and backend in (None, "duckdb"):
        raise _fail(
            "--table and --ledger-table write into the --backend database "
            "(duckdb:///file.db, postgres://..., Spark); with files, use --out and --ledger"
        )
    from leadscore.io.backends import check_table_name

    try:
        for name in (table, ledger_table):
            if name is not None:
                check_table_name(name)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None
    scoring = _load(model)
    when = parse_as_of(as_of)
    with _progress() as progress:
        task = progress.add_task("loading data", total=None)
        dataset = _data_or_backend(data, mapping, backend, rejections)
        progress.update(task, description="scoring")
        try:
            result = api.score(scoring, dataset, when)
            for note in result.notes:
                err.print(f"[yellow]note:[/] {note}", highlight=False)
            where = _write_scores(result.table, out, table)
            if ledger is not None or ledger_table is not None:
                progress.update(task, description="writing the ledger")
                _write_scores(result.ledger, ledger, ledger_table)
            # one score per lead: counting the leads does not run the scoring again
            count = dataset.leads.count().to_pyarrow().as_py()
        except LeadscoreError as exc:
            raise _fail(str(exc)) from None
    console.print(
        f"scored {count} leads with {scoring.name} {scoring.version} as of "
        f"{when.isoformat()} -> {where}",
        highlight=False,
    )


def _write_scores(rows: Any, path: Path | None, table: str | None) -> str:
    """Write to the file and/or the backend's table; say where they went."""
    from leadscore.io import write_table
    from leadscore.io.backends import write_back

    places = []
    if path is not None:
        write_table(rows, path)
        places.append(str(path))
    if table is not None:
        write_back(rows, table)
        places.append(f"table {table}")
    return " and ".join(places)


def _pts(value: float, sign: bool = False) -> str:
    """Points as people read them: 1,904.13, 30, -5.5 (never 1.9e+06)."""
    text = f"{value:+,.2f}" if sign else f"{value:,.2f}"
    return text.rstrip("0").rstrip(".")


_PARTS = {"de": {"fit": "Profil", "behaviour": "Verhalten", "account": "Konto"}}


def render_explanation(model: ScoringModel, result: Any, lang: str = "en") -> Table:
    """The ledger of one lead as a rich table."""
    head = _LABELS.get(lang, _LABELS["en"])
    labels = model.rule_labels(lang)
    parts = _PARTS.get(lang, {})
    title = f"{result.lead_id}: {_pts(result.total)} = " + ", ".join(
        f"{parts.get(p, p)} {_pts(getattr(result, p))}" for p in ("fit", "behaviour", "account")
    )
    table = Table(title=title, show_footer=True)
    widths: list[dict[str, Any]] = [
        {"no_wrap": True},
        {"min_width": 14},
        {"max_width": 26, "overflow": "ellipsis", "no_wrap": True},
        {"no_wrap": True},
        {"no_wrap": True},
        {"no_wrap": True},
        {"no_wrap": True},
        {},
    ]
    for i, name in enumerate(head[:8]):
        justify: Any = "right" if i in (4, 5, 6) else "left"
        footer = head[8] if i == 0 else (_pts(result.total) if i == 6 else "")
        table.add_column(name, justify=justify, footer=footer, **widths[i])
    for line in result.ledger:
        table.add_row(
            parts.get(line.part, line.part),
            labels.get(line.rule, line.rule),
            " ".join(x for x in (line.event_id, line.detail) if x) or "",
            line.ts.strftime("%Y-%m-%d") if line.ts is not None else "",
            _pts(line.base) if line.base is not None else "",
            f"{line.factor:.3f}" if line.factor is not None else "",
            _pts(line.points, sign=True),
            line.note or "",
        )
    return table


@app.command()
def explain(
    model: ModelArg,
    data: DataOpt,
    lead: Annotated[str, typer.Option("--lead", help="The lead_id to explain.")],
    as_of: AsOfOpt = None,
    lang: LangOpt = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
) -> None:
    """Show why a lead has its score: every rule and event, with decay and caps."""
    scoring = _load(model)
    when = parse_as_of(as_of)
    dataset = _load_data(data, mapping, rejections)
    try:
        result = api.explain(scoring, dataset, lead, when)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        row = result.as_row()
        row["ledger"] = [line.as_row() for line in result.ledger]
        console.print_json(json.dumps(row, default=str))
        return
    wide.print(render_explanation(scoring, result, lang))
    facts = [
        ("grade", result.grade),
        ("engagement", result.engagement),
        ("cell", result.cell),
        ("temperature", result.temperature),
        ("stage", result.stage),
        ("queue", result.queue),
        ("sla_hours", result.sla_hours),
        ("primary_interest", result.primary_interest),
    ]
    console.print(
        "  ".join(f"{k}: [bold]{v}[/]" for k, v in facts if v is not None), highlight=False
    )


@app.command()
def generate(
    leads: Annotated[int, typer.Option("--leads", help="How many leads.")] = 10_000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")] = Path("data"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    kind: Annotated[str, typer.Option("--kind", help="b2b, b2c or mixed.")] = "mixed",
    as_of: AsOfOpt = "2026-01-01",
) -> None:
    """Generate realistic B2B/B2C leads, accounts, events and outcomes for demos and benchmarks."""
    from leadscore.io import generate as make

    if kind not in ("b2b", "b2c", "mixed"):
        raise _fail(f"--kind {kind!r}: expected b2b, b2c or mixed")
    when = parse_as_of(as_of)
    with _progress() as progress:
        progress.add_task(f"generating {leads:,} leads", total=None)
        summary = make(leads, seed=seed, kind=kind, out=out, as_of=when)  # type: ignore[arg-type]
    console.print(f"wrote {out}: {summary}", highlight=False)


@app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of model files (for editor completion and validation)."""
    from leadscore.model import model_json_schema

    text = json.dumps(model_json_schema(), indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)


@app.command()
def demo(
    models: Annotated[Path, typer.Option("--models", help="Folder with the models to run.")] = Path(
        "models"
    ),
    leads: Annotated[int, typer.Option("--leads", help="How many leads to generate.")] = 20_000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for data and scores.")] = Path(
        "out/demo"
    ),
    top: Annotated[int, typer.Option("--top", help="How many hot leads to show per model.")] = 5,
    lang: LangOpt = "en",
) -> None:
    """Generate data, score it with every model in --models, and show the hottest leads and why."""
    from leadscore.io import generate as make
    from leadscore.io import load_dataset, write_table

    files = sorted(models.glob("*.yaml"))
    if not files:
        raise _fail(f"no models (*.yaml) in {models}")
    when = datetime(2026, 1, 1)
    data_dir = out / "data"
    with _progress() as progress:
        progress.add_task(f"generating {leads:,} leads", total=None)
        make(leads, seed=7, kind="mixed", out=data_dir, as_of=when)
    dataset = load_dataset(data_dir)
    for path in files:
        scoring = _load(path)
        console.rule(f"[bold]{scoring.name}[/] {scoring.version} — {path}")
        if scoring.description:
            console.print(scoring.description.strip(), highlight=False)
        try:
            result = api.score(scoring, dataset, when)
            write_table(result.table, out / f"scores-{path.stem}.parquet")
            best = result.top(top)
        except LeadscoreError as exc:
            raise _fail(str(exc)) from None
        shown = ("lead_id", "total", "grade", "cell", "temperature", "stage", "queue")
        table = Table(*shown)
        for row in best:
            table.add_row(*(str(row[c]) if row[c] is not None else "" for c in shown))
        console.print(table)
        if best:
            wide.print(
                render_explanation(
                    scoring, api.explain(scoring, dataset, best[0]["lead_id"], when), lang
                )
            )
    console.print(f"scores written to {out}", highlight=False)


def parse_duration(text: str, option: str) -> timedelta:
    """A duration like 90d, 12w or 36h."""
    units = {"d": 1.0, "w": 7.0, "h": 1 / 24}
    number, unit = text[:-1], text[-1:]
    try:
        if unit not in units:
            raise ValueError
        value = float(number)
    except ValueError:
        raise _fail(f"{option} {text!r} is not a duration; expected e.g. 90d, 12w or 36h") from None
    if value <= 0:
        raise _fail(f"{option} {text!r} must be more than zero")
    return timedelta(days=value * units[unit])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@app.command()
def backtest(
    model: ModelArg,
    cutoff: Annotated[
        str,
        typer.Option("--cutoff", help="Score as of this instant; outcomes after it are the truth."),
    ],
    data: DataOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    horizon: Annotated[
        str, typer.Option("--horizon", help="How long after the cut-off a win counts (90d, 12w).")
    ] = "90d",
    rolling: Annotated[
        int, typer.Option("--rolling", help="Also run this many earlier cut-offs, --every apart.")
    ] = 0,
    every: Annotated[str, typer.Option("--every", help="Spacing of rolling cut-offs.")] = "30d",
    weeks: Annotated[
        int,
        typer.Option(
            "--weeks", help="Leads handed to sales in each of this many weeks before the cut-off."
        ),
    ] = 0,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    html: ReportOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Score every lead as of a cut-off and judge it by who was won afterwards (AUC, lift)."""
    from leadscore.evaluate import handover
    from leadscore.evaluate.backtest import backtest as run_backtest
    from leadscore.evaluate.backtest import rolling as run_rolling

    scoring = _load(model)
    when = parse_as_of(cutoff, "--cutoff")
    window = parse_duration(horizon, "--horizon")
    dataset = _data_or_backend(data, mapping, backend, rejections)
    step = parse_duration(every, "--every")

    def work() -> tuple[Any, dict[str, Any]]:
        from leadscore.learn.hybrid import enrich

        # a hybrid model's prediction is made as of each cut-off, from what was known then
        known, notes = enrich(dataset, scoring, when)
        result = run_backtest(scoring, known, when, window)
        report = result.as_dict()
        report["notes"] = [*report["notes"], *notes]
        report["to_won"] = handover.to_won(scoring, known, when, window)
        if weeks > 0:
            report["per_week"] = handover.per_week(scoring, known, when, weeks)
        if rolling > 0:
            cutoffs = sorted(when - step * k for k in range(rolling + 1))
            report["rolling"] = [
                line
                for c in cutoffs
                for line in run_rolling(scoring, enrich(dataset, scoring, c)[0], [c], window)
            ]
        return result, report

    result, report = _task("backtesting", work)
    if html is not None:
        from leadscore.evaluate.report import render_backtest, write_report

        write_report(html, render_backtest(result, result.per_lead))
    if _emit(report, as_json, out):
        _print_backtest(report)


def _print_backtest(report: dict[str, Any]) -> None:
    truth = report["truth"]
    console.print(
        f"[bold]{report['model']} {report['model_version']}[/], cut-off {report['cutoff']}, "
        f"horizon {report['horizon_days']:g} days: {truth['leads']:,} leads, {truth['won']:,} won "
        f"({_pct(report['base_rate'])}), {truth['lost']:,} lost; left out: "
        f"{truth['not_yet_created']:,} created later, {truth['decided_before']:,} decided before",
        highlight=False,
    )
    auc = report["auc"]
    console.print(f"AUC {auc:.3f}" if auc is not None else "AUC: -", highlight=False)
    for note in report["notes"]:
        console.print(f"[yellow]{note}[/]", highlight=False)
    if report["deciles"]:
        table = Table(
            "decile", "leads", "won", "scores", "conversion", "lift", "gain", title="Deciles"
        )
        for d in report["deciles"]:
            table.add_row(
                str(d["decile"]),
                f"{d['leads']:,}",
                f"{d['won']:,}",
                f"{d['min_score']:g} - {d['max_score']:g}",
                _pct(d["conversion"]),
                f"{d['lift']:.2f}",
                _pct(d["cumulative_gain"]),
            )
        console.print(table)
    for group, rows in report["conversion"].items():
        table = Table(group, "leads", "won", "conversion", title=f"Conversion by {group}")
        for r in rows:
            table.add_row(
                str(r["value"]), f"{r['leads']:,}", f"{r['won']:,}", _pct(r["conversion"])
            )
        console.print(table)
    if report["thresholds"]:
        table = Table("hand-over", "leads", "won", "precision", "recall", title="Thresholds")
        for r in report["thresholds"]:
            table.add_row(
                r["threshold"],
                f"{r['leads']:,}",
                f"{r['won']:,}",
                _pct(r["precision"]),
                _pct(r["recall"]),
            )
        console.print(table)
    to_won = report.get("to_won") or {}
    if to_won.get("median_days") is not None:
        console.print(
            f"Median time from hand-over to won: {to_won['median_days']:.1f} days "
            f"({to_won['measured']} won leads rebuilt; {to_won['never_handed_over']} were won "
            "without being handed over)",
            highlight=False,
        )
    if report.get("per_week"):
        table = Table("week", "entered hand-over", "at week end", title="Hand-over per week")
        for r in report["per_week"]:
            table.add_row(
                f"{r['week_start'][:10]} - {r['week_end'][:10]}",
                f"{r['entered']:,}",
                f"{r['at_week_end']:,}",
            )
        console.print(table)
    if report.get("rolling"):
        table = Table("cut-off", "leads", "won", "AUC", "top-decile lift", title="Rolling (drift)")
        for r in report["rolling"]:
            table.add_row(
                r["cutoff"],
                f"{r['leads']:,}",
                f"{r['won']:,}",
                "-" if r["auc"] is None else f"{r['auc']:.3f}",
                "-" if r["top_decile_lift"] is None else f"{r['top_decile_lift']:.2f}",
            )
        console.print(table)


def _emit(report: dict[str, Any], as_json: bool, out: Path | None) -> bool:
    """Write --out and print --json; True when the readable summary is still wanted."""
    text = json.dumps(report, indent=2, default=str)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        console.print_json(text)
    return not as_json


@app.command()
def cases(
    model: ModelArg,
    data: DataOpt,
    won: Annotated[int, typer.Option("--won", help="Most recently won leads.")] = 10,
    lost: Annotated[int, typer.Option("--lost", help="Most recently lost leads.")] = 10,
    recent: Annotated[int, typer.Option("--recent", help="Most recently created open leads.")] = 10,
    as_of: AsOfOpt = None,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML report: every lead's score over time.",
        ),
    ] = None,
) -> None:
    """Won, lost and recent leads as timelines: score, temperature and stage after each event."""
    from leadscore.evaluate.cases import cases as build

    scoring = _load(model)
    when = parse_as_of(as_of)
    dataset = _load_data(data, mapping, rejections)
    found = _task(
        "rebuilding timelines",
        lambda: build(scoring, dataset, when, won=won, lost=lost, recent=recent),
    )
    if html is not None:
        from leadscore.evaluate.report import render_cases, write_report

        title = f"Cases: {scoring.name} {scoring.version}"
        write_report(html, render_cases(found, title=title, as_of=when))
    report = {"as_of": when.isoformat(), "cases": [c.as_dict() for c in found]}
    if not _emit(report, as_json, out):
        return
    for case in found:
        verdict = ""
        if case.before_outcome is not None:
            b = case.before_outcome
            verdict = (
                f"; before it was {case.kind}: {b.total:g} points, {b.temperature or '-'}, "
                f"{b.stage or '-'}"
            )
        title = f"{case.lead_id} ({case.kind}{verdict})"
        table = Table("when", "event", "points", "grade", "temperature", "stage", title=title)
        for step in case.steps:
            table.add_row(
                step.ts.isoformat(sep=" "),
                step.event_type or "-",
                f"{step.total:g}",
                step.grade or "-",
                step.temperature or "-",
                step.stage or "-",
            )
        wide.print(table)


@app.command()
def compare(
    model_a: Annotated[Path, typer.Argument(help="The current model (YAML).")],
    model_b: Annotated[Path, typer.Argument(help="The candidate model (YAML).")],
    data: DataOpt,
    as_of: AsOfOpt = None,
    cutoff: Annotated[
        str | None,
        typer.Option("--cutoff", help="Also backtest both as of this cut-off, side by side."),
    ] = None,
    horizon: Annotated[str, typer.Option("--horizon", help="Backtest horizon (90d).")] = "90d",
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    html: ReportOpt = None,
) -> None:
    """Two models on the same leads: who changes temperature or stage, and (with --cutoff)
    how both would have fared."""
    from leadscore.evaluate.compare import compare as run

    current, candidate = _load(model_a), _load(model_b)
    when = parse_as_of(as_of)
    window = parse_duration(horizon, "--horizon")
    dataset = _load_data(data, mapping, rejections)
    since = parse_as_of(cutoff, "--cutoff") if cutoff else None
    report = _task(
        "comparing",
        lambda: run(current, candidate, dataset, when, cutoff=since, horizon=window),
    )
    if html is not None:
        from leadscore.evaluate.report import render_compare, write_report

        write_report(html, render_compare(report))
    if not _emit(report, as_json, out):
        return
    a, b = report["models"]
    console.print(
        f"{a['name']} {a['version']} -> {b['name']} {b['version']} as of {report['as_of']}: "
        f"{report['changed']:,} of {report['leads']:,} leads change temperature or stage",
        highlight=False,
    )
    for title, key in (("Stage", "stage_moves"), ("Temperature", "temperature_moves")):
        if report[key]:
            table = Table("from", "to", "leads", title=f"{title} moves")
            for m in report[key]:
                table.add_row(str(m["from"]), str(m["to"]), f"{m['leads']:,}")
            console.print(table)
    band = report["changed_per"]
    if report["changed_per_band"]:
        table = Table(band, "leads changing", title=f"Changes per {band} (current model)")
        for r in report["changed_per_band"]:
            table.add_row(str(r[band]), f"{r['leads']:,}")
        console.print(table)
    if "backtest" in report:
        table = Table(
            "model", "AUC", "top-decile lift", title=f"Backtest at {report['backtest']['cutoff']}"
        )
        for m in report["backtest"]["metrics"]:
            table.add_row(
                f"{m['model']} {m['version']}",
                "-" if m["auc"] is None else f"{m['auc']:.3f}",
                "-" if m["top_decile_lift"] is None else f"{m['top_decile_lift']:.2f}",
            )
        console.print(table)


@app.command()
def channels(
    model: ModelArg,
    data: DataOpt,
    as_of: AsOfOpt = None,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    html: ReportOpt = None,
) -> None:
    """Which sources, campaigns and content stages bring buyers: conversion, hot share, value."""
    from leadscore.evaluate.channels import channels as run

    scoring = _load(model)
    when = parse_as_of(as_of)
    dataset = _load_data(data, mapping, rejections)
    found = _task("analysing channels", lambda: run(scoring, dataset, when))
    if html is not None:
        from leadscore.evaluate.report import render_channels, write_report

        write_report(html, render_channels(found))
    report = found.as_dict()
    if not _emit(report, as_json, out):
        return
    console.print(
        f"{report['model']} {report['model_version']} as of {report['as_of']}: "
        f"{report['leads']:,} leads, {report['won']:,} won ({_pct(report['conversion'])})",
        highlight=False,
    )
    for note in report["notes"]:
        console.print(f"[yellow]{note}[/]", highlight=False)
    money = report["has_values"]
    for title, key in (
        ("Source", "sources"),
        ("Campaign", "campaigns"),
        ("Content stage", "content_stages"),
    ):
        columns = ["leads", "won", "conversion", "hot", "mean score"]
        if money:
            columns += ["won value", "per lead", "repeat buyers", "lifetime value"]
        table = Table(title.lower(), *columns, title=f"By {title.lower()}")
        for r in report[key]:
            cells = [
                str(r["value"]),
                f"{r['leads']:,}",
                f"{r['won']:,}",
                _pct(r["conversion"]),
                _pct(r["hot_share"]),
                f"{r['mean_score']:.1f}" if r["mean_score"] is not None else "-",
            ]
            if money:
                cells += [
                    f"{r['won_value']:,.0f}" if r["won_value"] is not None else "-",
                    f"{r['value_per_lead']:,.2f}" if r["value_per_lead"] is not None else "-",
                    f"{r['repeat_purchases']:,}" if r["repeat_purchases"] is not None else "-",
                    f"{r['lifetime_value']:,.0f}" if r["lifetime_value"] is not None else "-",
                ]
            table.add_row(*cells)
        wide.print(table)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    from leadscore.io.formulas import safe_rows

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        # a spreadsheet opens it: no text cell may run as a formula
        writer.writerows(safe_rows(rows))


@app.command()
def sample(
    model: ModelArg,
    data: DataOpt,
    per_stage: Annotated[int, typer.Option("--per-stage", help="Leads from every stage.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same sample.")] = 0,
    as_of: AsOfOpt = None,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the sample: .json (everything) or .csv (one row per lead, and the "
            "ledger beside it as <name>-ledger.csv).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML report with every sampled lead's ledger.",
        ),
    ] = None,
) -> None:
    """A seeded random sample from every stage with each lead's score and ledger, for review."""
    from leadscore.evaluate.sample import sample as draw

    scoring = _load(model)
    when = parse_as_of(as_of)
    dataset = _load_data(data, mapping, rejections)
    found = _task("sampling", lambda: draw(scoring, dataset, when, per_stage=per_stage, seed=seed))
    if html is not None:
        from leadscore.evaluate.report import render_sample, write_report

        write_report(html, render_sample(found))
    if out is not None and out.suffix.lower() == ".csv":
        _write_csv(out, found.rows())
        _write_csv(out.with_name(f"{out.stem}-ledger.csv"), found.ledger_rows())
        out = None
    if not _emit(found.as_dict(), as_json, out):
        return
    for note in found.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    table = Table(
        "stage",
        "lead",
        "points",
        "grade",
        "temperature",
        "why (top rules)",
        title=(f"Sample of {per_stage} per stage (seed {seed}) as of {when.isoformat()}"),
    )
    labels = scoring.rule_labels()
    for lead in found.leads:
        lines = sorted(lead.ledger, key=lambda x: -abs(x["points"]))[:3]
        why = ", ".join(
            f"{labels.get(x['rule'], x['rule'])} {x['points']:+g}" for x in lines if x["points"]
        )
        table.add_row(
            lead.stage,
            lead.lead_id,
            f"{lead.score['total']:g}",
            str(lead.score.get("grade") or "-"),
            str(lead.score.get("temperature") or "-"),
            why or "-",
        )
    wide.print(table)


@app.command()
def capacity(
    model: ModelArg,
    data: DataOpt,
    per_week: Annotated[float, typer.Option("--per-week", help="Leads sales can take a week.")],
    cutoff: Annotated[
        str | None, typer.Option("--cutoff", help="Measure the weeks before this instant (now).")
    ] = None,
    weeks: Annotated[int, typer.Option("--weeks", help="Weeks of inflow to measure.")] = 12,
    horizon: Annotated[
        str, typer.Option("--horizon", help="How long a win may take (90d).")
    ] = "90d",
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    html: ReportOpt = None,
) -> None:
    """The score threshold that sends sales at most --per-week leads a week, and its conversion."""
    from leadscore.evaluate.capacity import capacity as measure

    scoring = _load(model)
    when = parse_as_of(cutoff, "--cutoff")
    window = parse_duration(horizon, "--horizon")
    dataset = _load_data(data, mapping, rejections)
    found = _task(
        "measuring capacity",
        lambda: measure(scoring, dataset, when, per_week, horizon=window, weeks=weeks),
    )
    if html is not None:
        from leadscore.evaluate.report import render_capacity, write_report

        write_report(html, render_capacity(found))
    report = found.as_dict()
    if not _emit(report, as_json, out):
        return
    threshold = report["threshold"]
    console.print(
        f"{report['leads']:,} leads created in the {weeks} weeks before {report['cutoff']}; "
        + (
            f"a threshold of {threshold:g} points sends {report['leads_per_week']:.1f} a week "
            f"(at most {per_week:g})"
            if threshold is not None
            else "no threshold sends so few"
        ),
        highlight=False,
    )
    above, below = report["above"], report["below"]
    console.print(
        f"conversion above the threshold: {_pct(above['conversion'])} of {above['leads']:,}; "
        f"below: {_pct(below['conversion'])} of {below['leads']:,}",
        highlight=False,
    )
    for h in report["handover"]:
        console.print(
            f"the model hands over {h['per_week']:.1f} a week at {h['stage']}", highlight=False
        )
    for note in report["notes"]:
        console.print(f"[yellow]{note}[/]", highlight=False)


CutoffLearnOpt = Annotated[
    str | None,
    typer.Option(
        "--cutoff",
        help="Judge on the leads open at this instant (wins within --horizon after it); "
        "training cut-offs end their horizon by then. Default: derived from the data, printed.",
    ),
]
HorizonLearnOpt = Annotated[
    str | None,
    typer.Option(
        "--horizon",
        help="How long after a cut-off a win counts (60d, 12w). Default: derived from the data.",
    ),
]
EveryOpt = Annotated[
    str | None,
    typer.Option(
        "--every", help="Spacing of training cut-offs (default: a quarter of the horizon)."
    ),
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split",
        help="time: judge on a later period (the default when outcomes are spread over time); "
        "stratified: a random share of leads within each class (optimistic on dated data).",
    ),
]
HoldoutOpt = Annotated[
    float,
    typer.Option(
        "--holdout",
        min=0.0,
        max=0.5,
        help="Share of outcomes held out (0: learn from every example once the figures are known).",
    ),
]
AllowOpt = Annotated[
    list[str],
    typer.Option("--allow", help="Keep a field or feature the leakage guard refuses (repeatable)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]


def _learning_frame(
    cutoff: str | None, horizon: str | None, every: str | None, split: str
) -> dict[str, Any]:
    if split not in ("auto", "time", "stratified"):
        raise _fail(f"--split {split!r}: expected auto, time or stratified")
    return {
        "cutoff": parse_as_of(cutoff, "--cutoff") if cutoff is not None else None,
        "horizon": parse_duration(horizon, "--horizon") if horizon is not None else None,
        "every": parse_duration(every, "--every") if every is not None else None,
    }


@app.command()
def suggest(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model (YAML).")],
    rules: Annotated[int, typer.Option("--rules", min=1, help="Most rules in the model.")] = 40,
    behaviours: Annotated[
        int, typer.Option("--behaviours", help="Most positive behaviours to keep.")
    ] = 7,
    negatives: Annotated[
        int, typer.Option("--negatives", help="Most negative actions to keep.")
    ] = 5,
    scale: Annotated[
        float, typer.Option("--scale", help="Points that double the odds of winning.")
    ] = 10.0,
    name: Annotated[str, typer.Option("--name", help="The model's name.")] = "suggested",
    cutoff: CutoffLearnOpt = None,
    horizon: HorizonLearnOpt = None,
    every: EveryOpt = None,
    split: SplitOpt = "auto",
    holdout: HoldoutOpt = 0.2,
    seed: SeedOpt = 42,
    exclude: ExcludeOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    allow: AllowOpt = [],  # noqa: B006
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    html: ReportOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn points from won/lost outcomes as of cut-offs and write them as an editable model."""
    from leadscore.learn.suggest import STEPS
    from leadscore.learn.suggest import suggest as learn

    when = _learning_frame(cutoff, horizon, every, split)
    dataset = _load_data(data, mapping, rejections)
    found = _steps(
        STEPS,
        lambda step: learn(
            dataset,
            name=name,
            rules=rules,
            behaviours=behaviours,
            negatives=negatives,
            points_to_double=scale,
            holdout=holdout,
            seed=seed,
            split=split,  # type: ignore[arg-type]  # checked above
            exclude=frozenset(exclude),
            allow=frozenset(allow),
            progress=step,
            **when,
        ),
    )
    out.write_text(found.yaml, encoding="utf-8")
    if html is not None:
        from leadscore.evaluate.report import write_report
        from leadscore.learn.report import render_suggestion

        write_report(html, render_suggestion(found))
    if as_json:
        console.print_json(json.dumps(found.as_dict(), default=str))
        return
    _print_frame(found.frame.describe(), found.frame.derived, [r.text() for r in found.refused])
    if found.holdout_auc_points is None:
        console.print(
            f"{len(found.rules)} rules written to {out}, learnt from all "
            f"{found.train_leads:,} examples (no holdout)",
            highlight=False,
        )
    else:
        console.print(
            f"{len(found.rules)} rules written to {out}; the engine's scores of it on the "
            f"{found.holdout_leads:,} held-out examples: AUC {found.holdout_auc_points:.3f}",
            highlight=False,
        )
        if found.backtest is not None:
            console.print(
                f"= leadscore backtest {out} --cutoff {found.backtest['cutoff']} --horizon "
                f"{found.backtest['horizon_days']:g}d: AUC {found.backtest['auc']:.3f}, "
                f"{found.backtest['leads']:,} leads, {found.backtest['won']:,} won",
                highlight=False,
            )
        compared = Table(
            "model", "holdout AUC", title=f"On {found.holdout_leads:,} held-out examples"
        )
        compared.add_row("suggested integer points", f"{found.holdout_auc_points:.3f}")
        compared.add_row("the regression they came from", f"{found.holdout_auc_float:.3f}")
        compared.add_row("plain logistic regression", f"{found.baselines['logistic_auc']:.3f}")
        compared.add_row("naive Bayes (0.1 smoothing)", f"{found.baselines['naive_bayes_auc']:.3f}")
        console.print(compared)
        rates = found.base_rates
        console.print(
            f"base rate {_pct(rates['training'])} in training, {_pct(rates.get('holdout'))} "
            "held out",
            highlight=False,
        )
    for note in found.notes:
        if note not in found.frame.derived:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    table = Table("rule", "points", "examples", "won with", "won without", title="Suggested rules")
    for r in sorted(found.rules, key=lambda r: -abs(r.points)):
        table.add_row(
            r.feature.name,
            f"{r.points:+d}",
            f"{r.support:,}",
            _pct(r.won_with),
            _pct(r.won_without),
        )
    wide.print(table)


def _print_frame(line: str, derived: Sequence[str], refused: Sequence[str]) -> None:
    console.print(line, highlight=False)
    for d in derived:
        console.print(f"  {d}", highlight=False)
    for r in refused:
        console.print(f"[yellow]{r}[/]", highlight=False)


@app.command()
def train(
    data: DataOpt,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the predictive model (artefact).")
    ],
    name: Annotated[
        str, typer.Option("--name", help="The predictive model's name.")
    ] = "predictive",
    cutoff: CutoffLearnOpt = None,
    horizon: HorizonLearnOpt = None,
    every: EveryOpt = None,
    split: SplitOpt = "auto",
    holdout: HoldoutOpt = 0.2,
    seed: SeedOpt = 42,
    exclude: ExcludeOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    allow: AllowOpt = [],  # noqa: B006
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a predictive model (calibrated gradient boosting) on won/lost outcomes."""
    from leadscore.learn.predictive import STEPS, save
    from leadscore.learn.predictive import train as fit

    when = _learning_frame(cutoff, horizon, every, split)
    dataset = _load_data(data, mapping, rejections)
    predictor = _steps(
        STEPS,
        lambda step: fit(
            dataset,
            name=name,
            holdout=holdout,
            seed=seed,
            how=split,  # type: ignore[arg-type]  # checked above
            exclude=frozenset(exclude),
            allow=frozenset(allow),
            progress=step,
            **when,
        ),
    )
    # only a fit that finished is written, and atomically
    save(predictor, out)
    summary = predictor.summary()
    if as_json:
        console.print_json(json.dumps(summary, default=str))
        return
    m, t = predictor.metrics, predictor.training
    refused = [f"refused {r['name']!r}: {r['reason']}" for r in t["refused"]]
    _print_frame(t["frame"], t["split"]["derived"], refused)
    console.print(
        f"{name} written to {out}: {len(predictor.columns)} inputs, {t['train_leads']:,} "
        f"training examples, {t['holdout_leads']:,} held out",
        highlight=False,
    )
    if "holdout_auc" in m:
        table = Table("model", "holdout AUC", title="On the holdout")
        kind = (m.get("learner") or {}).get("kind", "gradient boosting")
        table.add_row(f"predictive ({kind})", f"{m['holdout_auc']:.3f}")
        baselines = m.get("baselines") or {}
        if "skipped" in baselines:
            console.print(f"[yellow]{baselines['skipped']}[/]", highlight=False)
        elif baselines:
            table.add_row("logistic regression", f"{baselines['logistic_auc']:.3f}")
            table.add_row("naive Bayes (0.1 smoothing)", f"{baselines['naive_bayes_auc']:.3f}")
        console.print(table)
        console.print(
            f"Brier score {m['brier']:.4f}, log loss {m['log_loss']:.4f}, "
            f"top-decile lift {m['top_decile_lift']:.2f}",
            highlight=False,
        )
        title = "Calibration (holdout deciles" + (", the later period)" if "drift" in m else ")")
        calibration = Table("leads", "predicted", "observed", title=title)
        for row in m["calibration"]:
            calibration.add_row(f"{row['leads']:,}", _pct(row["predicted"]), _pct(row["observed"]))
        console.print(calibration)
        if "drift" in m:
            console.print(f"drift: {m['drift']}", highlight=False)
    for note in t["notes"]:
        if note not in t["split"]["derived"] and note not in refused:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    if t["constant_dropped"]:
        console.print(
            f"[yellow]left out, the same for every training example:[/] "
            f"{', '.join(t['constant_dropped'])}",
            highlight=False,
        )


@app.command()
def predict(
    artefact: Annotated[Path, typer.Argument(help="The file `leadscore train` wrote.")],
    data: DataOpt,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Where to write predictions: .csv, .parquet or .jsonl."),
    ],
    as_of: AsOfOpt = None,
    reasons: Annotated[
        int,
        typer.Option("--reasons", min=0, help="Reasons up and down per lead (0: none)."),
    ] = 3,
    mapping: MappingOpt = None,
    rejections: RejectionsOpt = None,
) -> None:
    """Predict each lead's probability of winning as of an instant, with its reasons."""
    import pyarrow as pa

    from leadscore.io import write_table
    from leadscore.io.readers import arrow_table
    from leadscore.learn.predictive import load
    from leadscore.learn.predictive import predict as run

    when = parse_as_of(as_of)
    dataset = _load_data(data, mapping, rejections)

    def work() -> Any:
        predictor = load(artefact)
        found = run(predictor, dataset, when)
        columns: dict[str, Any] = {
            "lead_id": pa.array(found.lead_ids, pa.string()),
            "probability": found.probability,
        }
        if reasons > 0:
            explained = predictor.reasons(found.X, reasons)
            columns["reasons_up"] = ["; ".join(r.text() for r in up) for up, _ in explained]
            columns["reasons_down"] = ["; ".join(r.text() for r in dn) for _, dn in explained]
        table = arrow_table(dataset.leads.get_backend(), "predictions", pa.table(columns))
        write_table(table, out)
        return found

    found = _task("predicting", work)
    for note in found.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(
        f"predicted {len(found.lead_ids):,} leads as of {when.isoformat()} -> {out}",
        highlight=False,
    )


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="LEADSCORE_DATABASE_URL",
        help="Database URL: sqlite:///path.db (default ./leadscore.db) or postgresql://...",
        show_envvar=True,
    ),
]


@app.command()
def serve(
    db: DbOpt = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="The first model: published at start when the store has none live (a model "
            "published later through the API or dashboard stays live; see --republish).",
        ),
    ] = None,
    republish: Annotated[
        bool,
        typer.Option(
            "--republish",
            help="Publish the --model file even when another model is live in the store.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rescore_every: Annotated[
        float,
        typer.Option(help="Seconds between rescoring every lead as of now (decay, SLA); 0 = off."),
    ] = 300.0,
    max_request_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted (413 above).")
    ] = 5 * 1024 * 1024,
    max_batch: Annotated[int, typer.Option(help="Most events or messages in one batch.")] = 10_000,
    bootstrap_key: Annotated[
        bool,
        typer.Option(
            "--bootstrap-key/--no-bootstrap-key",
            help="When the store has no API key yet, create an admin key and print it once.",
        ),
    ] = True,
    artefacts: Annotated[
        Path | None,
        typer.Option(
            "--artefacts",
            help="Folder that hybrid models' relative `prediction.artefact` paths start from "
            "(default: the --model file's folder, else the current one).",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="LEADSCORE_FORWARDED_ALLOW_IPS",
            help="Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed "
            "(comma-separated IPs or networks, * for any); none by default.",
        ),
    ] = "",
    webhook_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-allow",
            envvar="LEADSCORE_WEBHOOK_ALLOW",
            help="A private host the server may call, for self-hosted webhook receivers: "
            "HOST[:PORT], an IP address or a network (10.0.0.0/8); repeat it or separate "
            "entries by commas. Only public addresses otherwise.",
        ),
    ] = None,
) -> None:
    """Run the scoring service: REST API, Segment-compatible tracking, webhooks (docs at /docs)."""
    import uvicorn

    from leadscore.service.app import Service, Settings, create_app
    from leadscore.service.keys import create_key, list_keys
    from leadscore.store import serverlock
    from leadscore.store.database import database_url

    try:
        # First of all: a second server on this SQLite file must not even publish --model.
        # The lock lives as long as this function (the server) runs, and dies with the process.
        _lock = serverlock.acquire(database_url(db))
    except LeadscoreError as exc:
        raise _fail(str(exc)) from exc
    from leadscore.service.urls import Policy

    allow = tuple(e for v in webhook_allow or () for e in v.replace(",", " ").split())
    try:
        Policy(allow)
    except ValueError as exc:
        raise _fail(f"--webhook-allow: {exc}") from exc
    settings = Settings(
        database_url=db,
        rescore_interval=rescore_every,
        max_request_bytes=max_request_bytes,
        max_batch=max_batch,
        artefacts=artefacts or (model.resolve().parent if model is not None else None),
        webhook_allow=allow,
    )
    try:
        service = Service(settings)
        if bootstrap_key:
            with service.store.write() as conn:
                if not list_keys(conn):
                    token = create_key(conn, "bootstrap admin", ["admin"], service.clock())
                    err.print(
                        f"created admin API key (shown once): {token}",
                        highlight=False,
                        soft_wrap=True,
                    )
        if model is not None:
            started = service.publish_file(model, republish=republish)
            notice = started.notice()
            if notice is not None:
                err.print(f"notice: {notice}", markup=False, highlight=False, soft_wrap=True)
        elif republish:
            raise _fail("--republish publishes the --model file: give one")
        service.check_live_model()
        fastapi_app = create_app(settings, service=service)
    except LeadscoreError as exc:
        raise _fail(str(exc)) from exc
    err.print(f"leadscore serving on http://{host}:{port} (API docs at /docs)", highlight=False)
    # Forwarded headers only from proxies named: otherwise anyone (even on 127.0.0.1) could
    # pick the address the sign-in throttle counts, or claim HTTPS.
    trusted = forwarded_allow_ips.strip()
    uvicorn.run(
        fastapi_app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
    )


users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _password() -> str:
    if not sys.stdin.isatty():
        # scripts pipe the password in: `printf '%s' "$PW" | leadscore users add ...`
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise _fail("the two passwords differ")
    return str(first)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The name to sign in with.")],
    admin: Annotated[bool, typer.Option("--admin", help="May manage models, keys, users.")] = False,
    db: DbOpt = None,
) -> None:
    """Create a dashboard user; the password is asked for (or read from standard input)."""
    from leadscore.dashboard.auth import UserError, create_user
    from leadscore.service.clock import utc_now
    from leadscore.store.database import open_store

    password = _password()
    store = open_store(db)
    try:
        with store.write() as conn:
            create_user(conn, username, password, admin=admin, now=utc_now())
    except UserError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    console.print(f"created {'admin ' if admin else ''}user {username}", highlight=False)


@users_app.command("list")
def users_list(db: DbOpt = None) -> None:
    """List dashboard users (never their passwords)."""
    from leadscore.dashboard.auth import list_users
    from leadscore.store.database import open_store

    store = open_store(db)
    try:
        with store.read() as conn:
            rows = list_users(conn, limit=None)
    finally:
        store.close()
    table = Table("username", "admin", "created")
    for r in rows:
        table.add_row(str(r["username"]), "yes" if r["admin"] else "no", str(r["created_at"]))
    console.print(table)


UserArg = Annotated[str, typer.Argument(help="The user's username.")]


def _change_user(db: str | None, change: Callable[[Connection], None], done: str) -> None:
    """Run one change to dashboard users in a write transaction; a UserError exits with 2."""
    from leadscore.dashboard.auth import UserError
    from leadscore.store.database import open_store

    store = open_store(db)
    try:
        with store.write() as conn:
            change(conn)
    except UserError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    console.print(done, highlight=False)


@users_app.command("password")
def users_password(username: UserArg, db: DbOpt = None) -> None:
    """Set a user's password (asked for, or read from standard input); their sessions end."""
    from leadscore.dashboard.auth import set_password

    password = _password()
    done = f"new password for {username}; their sessions are ended"
    _change_user(db, lambda conn: set_password(conn, username, password), done)


@users_app.command("signout")
def users_signout(username: UserArg, db: DbOpt = None) -> None:
    """End every dashboard session of a user, on every device (the password stays)."""
    from leadscore.dashboard.auth import end_sessions

    done = f"every session of {username} is ended"
    _change_user(db, lambda conn: end_sessions(conn, username), done)


@users_app.command("remove")
def users_remove(username: UserArg, db: DbOpt = None) -> None:
    """Delete a dashboard user; their sessions end. The last administrator cannot be removed."""
    from leadscore.dashboard.auth import remove_user

    _change_user(db, lambda conn: remove_user(conn, username), f"removed user {username}")


keys_app = typer.Typer(help="API keys of the service: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="tracking (ingest only) or admin (everything); repeatable."),
    ],
    db: DbOpt = None,
) -> None:
    """Create an API key and print its token (stored hashed; shown only now)."""
    from leadscore.service.clock import utc_now
    from leadscore.service.keys import create_key
    from leadscore.store.database import open_store

    store = open_store(db)
    try:
        with store.write() as conn:
            token = create_key(conn, name, scope, utc_now())
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(token, highlight=False)


@keys_app.command("list")
def keys_list(db: DbOpt = None) -> None:
    """List API keys (without their secrets)."""
    from leadscore.service.keys import list_keys
    from leadscore.store.database import open_store

    store = open_store(db)
    try:
        with store.read() as conn:
            rows = list_keys(conn)
    finally:
        store.close()
    table = Table("id", "name", "prefix", "scopes", "created", "revoked")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["name"]),
            str(r["prefix"]),
            " ".join(r["scopes"]),  # type: ignore[arg-type]
            str(r["created_at"]),
            str(r["revoked_at"] or ""),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `leadscore keys list`).")],
    db: DbOpt = None,
) -> None:
    """Revoke an API key."""
    from leadscore.service.clock import utc_now
    from leadscore.service.keys import revoke
    from leadscore.store.database import open_store

    store = open_store(db)
    try:
        with store.write() as conn:
            found = revoke(conn, key_id, utc_now())
    finally:
        store.close()
    if not found:
        raise _fail(f"no active key {key_id}")
    console.print(f"key {key_id} revoked", highlight=False)


def main() -> None:
    """Entry point of the `leadscore` console script."""
    app()
