"""Column-mapping files: loading with line-numbered errors, applying to exports, X Education."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from leadscore.io import MappingError, apply_mapping, load_dataset, load_mapping
from leadscore.io.mapping import MAPPINGS_DIR, Mapping, packaged_mapping

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
LEADS_CSV = DATA / "x-education" / "Leads.csv"

LEAKY = (
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "Last Notable Activity",
)

EXPORT = """Id,Email,Company,Domain,Size,Signed Up,Visits,Webinars,Newsletter,Status,Deal,Closed
1,a@acme.com,Acme,acme.com,120,03/01/2026,5,0,Yes,Won,1000,2026-02-01
2,b@acme.com,Acme Inc,acme.com,130,04/01/2026,0,1,No,Lost,,2026-02-02
3,c@beta.io,Beta,beta.io,n/a,05/01/2026,,2,Select,,,
4,d@gamma.de,Gamma,,7,32/01/2026,2,0,No,Open,,2026-02-03
"""

MAPPING = """version: 1
name: crm-export
source:
  null_values: [Select, n/a]
leads:
  lead_id: Id
  email: Email
  company: Company
  account_id: Domain
  employees: Size
  created_at: {from: Signed Up, format: "%d/%m/%Y"}
  newsletter: {from: Newsletter, type: boolean, values: {"Yes": true, "No": false}}
  plan: {const: free}
accounts:
  account_id: Domain
  name: Company
  employees: Size
events:
  defaults:
    ts: {const: "2026-01-15T00:00:00"}
  rules:
    - name: visits
      type: {const: website_visits}
      value: Visits
    - name: webinars
      type: {const: webinar_attended}
      value: Webinars
      channel: {const: webinar}
outcomes:
  outcome: {from: Status, values: {Won: won, Lost: lost, Open: null}}
  ts: Closed
  value: Deal
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(table: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return result


def test_a_wide_export_becomes_four_tables(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "crm.yaml", MAPPING))
    ds = apply_mapping(mapping, write(tmp_path / "export.csv", EXPORT))
    leads = {r["lead_id"]: r for r in rows(ds.leads)}
    # Lead 3 has a size of n/a (null); lead 4's date does not fit the format: rejected.
    assert sorted(leads) == ["1", "2", "3"]
    assert leads["1"]["created_at"].isoformat() == "2026-01-03T00:00:00"
    assert leads["1"]["newsletter"] is True and leads["2"]["newsletter"] is False
    assert leads["3"]["newsletter"] is None and leads["3"]["employees"] is None
    assert leads["1"]["plan"] == "free"
    assert [(r.table, r.source, r.row) for r in ds.rejections] == [
        ("leads", "export.csv", 4),
        ("events", "export.csv", 4),
    ]
    assert "cannot parse '32/01/2026' as a timestamp" in ds.rejections[0].reason
    assert ds.rejections[1].reason == "unknown lead_id 4"
    # One account per distinct id, attributes from its first row.
    assert ds.accounts is not None
    accounts = rows(ds.accounts)
    assert [(a["account_id"], a["name"], a["employees"]) for a in accounts] == [
        ("acme.com", "Acme", 120),
        ("beta.io", "Beta", None),
    ]
    # Events: one per row and rule, none for 0 or empty counters.
    events = sorted((e["lead_id"], e["type"], e["value"], e["event_id"]) for e in rows(ds.events))
    assert events == [
        ("1", "website_visits", 5.0, "1:visits"),
        ("2", "webinar_attended", 1.0, "2:webinars"),
        ("3", "webinar_attended", 2.0, "3:webinars"),
    ]
    # Outcomes: an empty or open status is an open lead, not a rejection.
    assert ds.outcomes is not None
    outcomes = {o["lead_id"]: (o["outcome"], o["value"]) for o in rows(ds.outcomes)}
    assert outcomes == {"1": ("won", 1000.0), "2": ("lost", None)}


def test_load_dataset_with_a_mapping(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "crm.yaml", MAPPING))
    ds = load_dataset(write(tmp_path / "export.csv", EXPORT), mapping=mapping)
    assert len(rows(ds.leads)) == 3


def test_yes_no_and_numbers_stay_text_keys() -> None:
    data = yaml.safe_load("values: {Yes: true, No: false, 1: won}")
    assert True in data["values"]  # what plain PyYAML does, and why the loader differs
    mapping = Mapping.model_validate(
        {"leads": {"lead_id": "Id", "x": {"from": "X", "values": {1: "won", False: "f"}}}}
    )
    assert mapping.leads["x"].values == {"1": "won", "false": "f"}


def test_loader_keeps_yes_and_dates_as_text(tmp_path: Path) -> None:
    text = (
        "leads:\n  lead_id: Id\n  x: {from: X, values: {Yes: 1, No: 0}}\n  d: {const: 2020-01-01}\n"
    )
    mapping = load_mapping(write(tmp_path / "m.yaml", text))
    assert mapping.leads["x"].values == {"Yes": 1, "No": 0}
    assert mapping.leads["d"].const == "2020-01-01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\nleads:\n  lead_id: Id\n  country: {from: Country, frm: x}\n",
            "m.yaml, line 4, leads.country.frm: Extra inputs are not permitted",
        ),
        ("version: 1\nleads:\n  email: Email\n", "m.yaml, line 2, leads: leads needs `lead_id`"),
        ("leads:\n  lead_id: Id\n  country: [a\n", "m.yaml, line 4: invalid YAML"),
        (
            "leads:\n  lead_id: Id\nevents:\n  rules:\n    - name: a\n      type: {const: x}\n"
            "      ts: {const: '2020-01-01'}\n      value: {from: X, const: 3}\n",
            "m.yaml, line 8, events.rules[0].value: give exactly one of `from`",
        ),
        (
            "leads:\n  lead_id: Id\n  employees: {from: E, type: string}\n",
            "employees is a canonical column of type int64, not string",
        ),
        (
            "leads:\n  lead_id: Id\n  lead_id: Other\n",
            "m.yaml, line 3, leads.lead_id: duplicate key",
        ),
        ("version: 2\nleads:\n  lead_id: Id\n", "m.yaml, line 1, version"),
        ("", "the mapping file is empty"),
    ],
)
def test_mapping_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(MappingError) as info:
        load_mapping(write(tmp_path / "m.yaml", text))
    assert expected in str(info.value)


def test_unknown_source_column_names_mapping_line_and_columns(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "m.yaml", "leads:\n  lead_id: Id\n  email: e-mail\n"))
    with pytest.raises(MappingError) as info:
        apply_mapping(mapping, write(tmp_path / "export.csv", "Id,E-Mail\n1,a@b.c\n"))
    message = str(info.value)
    assert message.startswith("m.yaml, line 3, leads.email: source column 'e-mail' not found")
    assert "did you mean 'E-Mail'?" in message


def test_packaged_mappings_are_listed() -> None:
    assert (MAPPINGS_DIR / "x-education.yaml").is_file()
    with pytest.raises(MappingError, match="x-education"):
        packaged_mapping("nope")


def test_x_education_mapping_does_not_use_leaky_columns() -> None:
    text = (MAPPINGS_DIR / "x-education.yaml").read_text(encoding="utf-8")
    mapping = packaged_mapping("x-education")
    sources: set[str] = set()
    specs = list(mapping.leads.values()) + list((mapping.outcomes or {}).values())
    if mapping.events is not None:
        specs += list(mapping.events.defaults.values())
        specs += [s for rule in mapping.events.rules for s in rule.columns.values()]
    sources = {s.from_ for s in specs if s.from_ is not None}
    for column in LEAKY:
        assert column not in sources
        assert column in text  # named in the comments, with the reason
    assert "Converted" in sources


@pytest.mark.skipif(not LEADS_CSV.is_file(), reason="shared data set not present")
def test_x_education_real_file() -> None:
    ds = load_dataset(LEADS_CSV, mapping=packaged_mapping("x-education"))
    leads = ds.leads.to_pyarrow()
    # Every row is a lead or a reported rejection; the file has none to reject.
    assert leads.num_rows + sum(r.table == "leads" for r in ds.rejections) == 9240
    assert leads.num_rows == 9240
    assert ds.rejections == ()
    assert ds.outcomes is not None
    outcomes = ds.outcomes.to_pyarrow().to_pylist()
    won = sum(o["outcome"] == "won" for o in outcomes)
    assert len(outcomes) == 9240 and won == 3561
    assert round(100 * won / len(outcomes), 2) == 38.54
    names = set(leads.column_names)
    assert {"occupation", "lead_origin", "do_not_email", "page_views_per_visit"} <= names
    assert not {"tags", "lead_quality", "lead_profile", "last_notable_activity"} & names
    by_id = {r["lead_id"]: r for r in leads.to_pylist()}
    first = by_id["7927b2df-8bba-4d29-b9a2-b6e0beafe620"]
    assert first["specialization"] is None  # "Select" means not answered
    assert first["source"] == "Olark Chat" and first["lead_number"] == 660737
    assert first["created_at"] is None
    assert all(r["country"] != "unknown" for r in by_id.values())
    events = ds.events.to_pyarrow().to_pylist()
    visits = [e for e in events if e["type"] == "website_visits"]
    assert len(visits) == 6914  # leads with TotalVisits above 0
    assert {e["ts"].isoformat() for e in events} == {"2020-01-01T00:00:00"}
    assert {o["ts"].isoformat() for o in outcomes} == {"2020-01-02T00:00:00"}
    types = {e["type"] for e in events}
    assert "email_open" in types and "chat" in types
    assert not {e["lead_id"] for e in events} - set(by_id)


def test_row_numbers_give_ids_to_exports_without_one(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path / "rows.yaml",
            "leads:\n  lead_id: {row: R}\n  country: Country\n"
            "outcomes:\n  outcome: {from: Bought, values: {'yes': won, 'no': lost}}\n"
            "  ts: {const: '2020-01-02T00:00:00'}\n",
        )
    )
    export = write(tmp_path / "people.csv", "Country,Bought\nDE,yes\nDE,yes\nFR,no\n")
    ds = apply_mapping(mapping, export)
    assert [(r["lead_id"], r["country"]) for r in rows(ds.leads)] == [
        ("R1", "DE"),
        ("R2", "DE"),
        ("R3", "FR"),
    ]
    assert ds.outcomes is not None
    assert sorted((o["lead_id"], o["outcome"]) for o in rows(ds.outcomes)) == [
        ("R1", "won"),
        ("R2", "won"),
        ("R3", "lost"),
    ]
    with pytest.raises(MappingError, match="give exactly one of `from`"):
        load_mapping(write(tmp_path / "bad.yaml", "leads:\n  lead_id: {row: R, const: x}\n"))
