"""Mappings over several files: joins by key, tables from different files, the shipped
crm-pipeline mapping on a hand-made copy of that export, and olist-funnel on the real files."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadscore.errors import DataError
from leadscore.evaluate.backtest import backtest
from leadscore.io import MappingError, load_dataset, load_mapping
from leadscore.io.mapping import MAPPINGS_DIR, packaged_mapping
from leadscore.model import parse_model

CRM = Path(__file__).resolve().parent / "data" / "crm-pipeline"
OLIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "olist-funnel"
MQL = "olist_marketing_qualified_leads_dataset.csv"
DEALS = "olist_closed_deals_dataset.isots_10col.csv"

# The hand-made pipeline: 32 deals, of them 16 won, 8 lost, 4 engaging and 4 prospecting.
ZENTRIX_ROW = 19  # the deal whose account is not in accounts.csv


def rows(table: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return result


def crm_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "crm"
    shutil.copytree(CRM, folder)
    return folder


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def mapping_text(**changes: str) -> str:
    text = (MAPPINGS_DIR / "crm-pipeline.yaml").read_text(encoding="utf-8")
    for old, new in changes.items():
        assert old.replace("_", " ") in text or old in text
        text = text.replace(old, new)
    return text


def test_crm_pipeline_joins_four_files_into_the_tables() -> None:
    ds = load_dataset(CRM, mapping=packaged_mapping("crm-pipeline"))
    assert ds.rejections == ()
    leads = {r["lead_id"]: r for r in rows(ds.leads)}
    assert len(leads) == 32
    # "GTX Pro" in the pipeline is "GTXPro" in products.csv: the normalised join finds it.
    pro = leads["Z063OYW0"]
    assert (pro["product"], pro["series"], pro["list_price"]) == ("GTX Pro", "GTX", 4821.0)
    assert pro["account_id"] == "Isdom" and pro["industry"] == "medical"
    assert pro["employees"] == 4540 and pro["annual_revenue"] == 3178.24
    assert (pro["manager"], pro["regional_office"]) == ("Melvin Marxen", "Central")
    assert pro["created_at"].isoformat() == "2016-10-25T00:00:00"
    # A deal whose account accounts.csv does not know is kept, without the account, and noted.
    lost = leads["N0ZKJ1CR"]
    assert lost["company"] == "Zentrix Labs" and lost["account_id"] is None
    assert lost["industry"] is None and lost["series"] == "MG"
    assert [(n.table, n.source, n.row) for n in ds.notes] == [
        ("leads", "sales_pipeline.csv", ZENTRIX_ROW)
    ]
    assert "account 'Zentrix Labs': no match in accounts.csv" in ds.notes[0].reason
    # Prospecting deals have no account (no note: there is no key to match) and no dates.
    prospect = leads["0VR5ZTRA"]
    assert prospect["account_id"] is None and prospect["created_at"] is None
    # Accounts: every row of accounts.csv, with its own attributes.
    assert ds.accounts is not None
    accounts = {a["account_id"]: a for a in rows(ds.accounts)}
    assert len(accounts) == 12
    assert accounts["Codehow"]["subsidiary_of"] == "Acme Corporation"
    assert accounts["Codehow"]["year_established"] == 1998
    # One `engaged` event per deal that got past prospecting, about its product.
    events = rows(ds.events)
    assert len(events) == 28 and {e["type"] for e in events} == {"engaged"}
    by_lead = {e["lead_id"]: e for e in events}
    assert "0VR5ZTRA" not in by_lead
    assert (by_lead["Z063OYW0"]["topic"], by_lead["Z063OYW0"]["series"]) == ("GTX Pro", "GTX")
    # Outcomes: won/lost at the close date; open deals have none.
    assert ds.outcomes is not None
    outcomes = {o["lead_id"]: o for o in rows(ds.outcomes)}
    assert len(outcomes) == 24
    assert sum(o["outcome"] == "won" for o in outcomes.values()) == 16
    assert outcomes["S8DX3XOU"]["value"] == 25897.0
    assert outcomes["S8DX3XOU"]["ts"].isoformat() == "2017-03-03T00:00:00"
    assert "FB2DUB2M" not in outcomes and "0VR5ZTRA" not in outcomes
    # Outcome-side columns are not lead fields.
    assert not {"deal_stage", "close_date", "close_value"} & set(pro)


def test_files_may_be_given_one_by_one(tmp_path: Path) -> None:
    mapping = packaged_mapping("crm-pipeline")
    files = sorted(CRM.glob("*.csv"))
    ds = load_dataset(files, mapping=mapping)
    assert ds.leads.count().execute() == 32
    with pytest.raises(DataError, match=r"files.teams: no file 'sales_teams.csv'"):
        load_dataset([f for f in files if f.name != "sales_teams.csv"], mapping=mapping)
    extra = tmp_path / "notes.csv"
    extra.write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes\.csv: not one of the mapping's files"):
        load_dataset([*files, extra], mapping=mapping)


def test_a_glob_must_find_one_file(tmp_path: Path) -> None:
    folder = crm_copy(tmp_path)
    text = mapping_text(**{"pipeline: sales_pipeline.csv": "pipeline: 'sales_*.csv'"})
    mapping = load_mapping(_write(tmp_path / "m.yaml", text))
    with pytest.raises(DataError, match=r"matches several files \(sales_pipeline.csv, sales_teams"):
        load_dataset(folder, mapping=mapping)
    (folder / "sales_teams.csv").rename(folder / "teams.csv")
    text = mapping_text(
        **{
            "pipeline: sales_pipeline.csv": "pipeline: 'sales_*.csv'",
            "teams: sales_teams.csv": "teams: teams.csv",
        }
    )
    ds = load_dataset(folder, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))
    assert ds.leads.count().execute() == 32


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_matching_several_rows_is_an_error(tmp_path: Path) -> None:
    folder = crm_copy(tmp_path)
    with (folder / "products.csv").open("a", encoding="utf-8") as fh:
        fh.write("GTX Pro,GTX,4900\n")
    with pytest.raises(DataError) as info:
        load_dataset(folder, mapping=packaged_mapping("crm-pipeline"))
    message = str(info.value)
    assert message.startswith("products.csv: key 'gtxpro' (written 'GTX Pro', 'GTXPro')")
    assert "is on rows 2, 8" in message
    assert "crm-pipeline.yaml, line" in message and "joins[1]" in message
    assert "at most one row of products.csv per key of sales_pipeline.csv" in message


def test_an_inner_join_rejects_rows_without_a_match(tmp_path: Path) -> None:
    text = mapping_text(
        **{"{file: accounts, on: account}": "{file: accounts, on: account, kind: inner}"}
    )
    ds = load_dataset(CRM, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))
    leads = {r["lead_id"] for r in rows(ds.leads)}
    # The Zentrix deal and the three prospects without an account are not loaded, and each is named
    # once: their events and outcomes are not reported again as of unknown leads.
    assert len(leads) == 28 and "N0ZKJ1CR" not in leads
    assert [(r.table, r.source, r.row) for r in ds.rejections] == [
        ("leads", "sales_pipeline.csv", ZENTRIX_ROW),
        ("leads", "sales_pipeline.csv", 27),
        ("leads", "sales_pipeline.csv", 28),
        ("leads", "sales_pipeline.csv", 30),
    ]
    assert ds.rejections[0].reason == (
        "account 'Zentrix Labs': no match in accounts.csv (inner join): not loaded"
    )
    assert ds.rejections[1].reason.startswith("account (empty): no match")
    assert ds.notes == ()


def test_an_explicit_key_map_instead_of_normalising(tmp_path: Path) -> None:
    text = mapping_text(
        **{"normalise: [spaces, case]": "values: {GTX Pro: GTXPro}"},
    )
    ds = load_dataset(CRM, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))
    pro = next(r for r in rows(ds.leads) if r["lead_id"] == "Z063OYW0")
    assert pro["list_price"] == 4821.0
    text = mapping_text(**{"normalise: [spaces, case]": "kind: left"})
    ds = load_dataset(CRM, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))
    noted = [n for n in ds.notes if "products.csv" in n.reason]
    assert len(noted) == 6 and noted[0].reason.startswith("product 'GTX Pro': no match")


def test_rejections_name_the_file_and_row_of_each_table(tmp_path: Path) -> None:
    folder = crm_copy(tmp_path)
    replace_in(folder / "sales_pipeline.csv", "2017-03-11,4514", "2017-03-11,tbd")
    replace_in(folder / "sales_pipeline.csv", "S8DX3XOU,", "Z063OYW0,")
    replace_in(
        folder / "accounts.csv",
        "Cancity,retail,2001,718.62,2448",
        "Cancity,retail,2001,718.62,many",
    )
    ds = load_dataset(folder, mapping=packaged_mapping("crm-pipeline"))
    found = {(r.table, r.source, r.row): r.reason for r in ds.rejections}
    # Deal row 2 has a bad value; row 12 repeats row 2's id; account row 3 a bad size,
    # which also makes the leads of that account (rows 1, 3 and 22) unreadable.
    assert found[("outcomes", "sales_pipeline.csv", 2)] == (
        "column value: cannot parse 'tbd' as a number"
    )
    assert (
        found[("leads", "sales_pipeline.csv", 12)]
        == "duplicate lead_id Z063OYW0, first seen at row 2"
    )
    assert (
        found[("accounts", "accounts.csv", 3)]
        == "column employees: cannot parse 'many' as an integer"
    )
    # The lead's value was read from accounts.csv: the reason says where.
    for row in (1, 3, 22):
        assert found[("leads", "sales_pipeline.csv", row)] == (
            "column employees (accounts.csv row 3): cannot parse 'many' as an integer"
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "joins:\n  - {file: b, on: k}\nleads:\n  lead_id: Id\n",
            "m.yaml, line 1, joins: `joins` needs `files`",
        ),
        (
            "files: {a: a.csv}\njoins:\n  - {file: b, on: k}\nleads:\n  lead_id: Id\n",
            "line 2, joins: join 1 (file b): 'b' is not one of the files: a",
        ),
        (
            "files: {a: a.csv, b: b.csv, c: c.csv}\njoins:\n  - {file: c, to: b, on: k}\n"
            "  - {file: b, on: k}\nleads:\n  lead_id: Id\n",
            "join 1 (file c): `to` 'b' must be the first file (a) or a file joined by an earlier",
        ),
        (
            "files: {a: a.csv, b: b.csv}\njoins:\n  - {file: b, on: k}\n  - {file: b, on: j}\n"
            "leads:\n  lead_id: Id\n",
            "join 2 (file b): 'b' is already read",
        ),
        (
            "files: {a: a.csv}\ntables: {outcomes: z}\nleads:\n  lead_id: Id\n",
            "line 2, tables: outcomes: 'z' is not one of the files: a",
        ),
        (
            "files: {a.b: a.csv}\nleads:\n  lead_id: Id\n",
            "file name 'a.b': use letters, digits, _ and - (no dots",
        ),
        (
            "files: {a: a.csv, b: b.csv}\ntables: {outcomes: b}\nleads:\n  lead_id: Id\n"
            "outcomes:\n  outcome: {const: won}\n  ts: T\n",
            "outcomes are read from file 'b', leads from 'a': give outcomes its own `lead_id`",
        ),
        (
            "files: {a: a.csv, b: b.csv}\njoins:\n  - {file: b, on: [x, y], values: {p: q}}\n"
            "leads:\n  lead_id: Id\n",
            "`values` applies to a join on one key column",
        ),
        (
            "files: {a: a.csv, b: b.csv}\njoins:\n  - {file: b, on: k, normalise: [accents]}\n"
            "leads:\n  lead_id: Id\n",
            "joins[0].normalise[0]: Input should be 'spaces', 'case' or 'punctuation'",
        ),
    ],
)
def test_multi_file_mapping_errors_name_the_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(MappingError) as info:
        load_mapping(_write(tmp_path / "m.yaml", text))
    assert expected in str(info.value)


def test_columns_of_joined_files_are_written_file_dot_column(tmp_path: Path) -> None:
    text = mapping_text(**{"industry: accounts.sector": "industry: sector"})
    mapping = load_mapping(_write(tmp_path / "m.yaml", text))
    with pytest.raises(MappingError) as info:
        load_dataset(CRM, mapping=mapping)
    message = str(info.value)
    assert "leads.industry: source column 'sector' not found in sales_pipeline.csv" in message
    assert "did you mean 'accounts.sector'?" in message
    text = mapping_text(**{"{file: teams, on: sales_agent}": "{file: teams, on: agent}"})
    with pytest.raises(
        MappingError, match=r"joins\[2\].on: key column 'agent' not found in sales_pipeline.csv"
    ):
        load_dataset(CRM, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))
    # A joined file's columns are not reachable from a table whose rows come from elsewhere.
    text = mapping_text(**{"  industry: sector\n": "  industry: pipeline.product\n"})
    with pytest.raises(
        MappingError, match=r"accounts\.industry: source column 'pipeline\.product'"
    ):
        load_dataset(CRM, mapping=load_mapping(_write(tmp_path / "m.yaml", text)))


def test_one_file_mappings_still_refuse_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="a mapping applies to one export file, not a directory"):
        load_dataset(tmp_path, mapping=packaged_mapping("x-education"))


def test_shipped_multi_file_mappings_are_listed() -> None:
    with pytest.raises(MappingError) as info:
        packaged_mapping("nope")
    assert "crm-pipeline" in str(info.value) and "olist-funnel" in str(info.value)


def test_olist_funnel_real_files() -> None:
    ds = load_dataset(OLIST, mapping=packaged_mapping("olist-funnel"))
    assert ds.rejections == () and ds.notes == ()
    leads = ds.leads.to_pyarrow()
    assert leads.num_rows == 8000
    by_id = {r["lead_id"]: r for r in leads.to_pylist()}
    first = by_id["dac32acd4db4c29c230538b72f8dd87d"]
    assert first["created_at"].isoformat() == "2018-02-01T00:00:00"  # 01-02-2018 is dd-mm-yyyy
    assert (first["origin"], first["source"]) == ("social", "social")
    assert first["landing_page_id"] == "88740e65d5d6b056e0cda098e1ea6313"
    assert by_id["8c18d1de7f67e60dbd64e3c07d7e9d5d"]["source"] == "paid"
    # Closed-deal attributes exist only for won leads: never lead fields.
    outcome_side = {"business_segment", "lead_type", "lead_behaviour_profile", "has_company"}
    assert not (outcome_side | {"seller_id", "sdr_id", "sr_id", "won_date"}) & set(
        leads.column_names
    )
    header = (MAPPINGS_DIR / "olist-funnel.yaml").read_text(encoding="utf-8").split("\nversion:")[0]
    assert all(column in header for column in outcome_side)
    # One first_contact event per lead, at its first contact.
    events = ds.events.to_pyarrow().to_pylist()
    assert len(events) == 8000 and {e["type"] for e in events} == {"first_contact"}
    assert all(e["ts"] == by_id[e["lead_id"]]["created_at"] for e in events)
    # Won outcomes from the closed deals; no outcome for the others (10.52 % won).
    assert ds.outcomes is not None
    outcomes = ds.outcomes.to_pyarrow().to_pylist()
    assert len(outcomes) == 842 and {o["outcome"] for o in outcomes} == {"won"}
    assert 100 * len(outcomes) / leads.num_rows == 10.525
    # The one deal won before its first contact is loaded as the data has it.
    early = [o for o in outcomes if o["ts"] < by_id[o["lead_id"]]["created_at"]]
    assert [(o["lead_id"], o["ts"].isoformat()) for o in early] == [
        ("b91cf8812365f50ff4bda4bcd6206b05", "2018-03-06T19:38:55")
    ]
    assert "b91cf8812365f50ff4bda4bcd6206b05" in header
    assert MQL in header and DEALS in header


def test_olist_funnel_backtest_counts_leads_never_won_as_not_won() -> None:
    ds = load_dataset(OLIST, mapping=packaged_mapping("olist-funnel"))
    model = parse_model(
        'name: olist\nversion: "1"\nfit:\n  rules:\n'
        "    - {name: organic, when: {field: source, equals: organic}, points: 10}\n"
    )
    result = backtest(model, ds, datetime(2018, 3, 1), timedelta(days=90))
    truth = result.truth
    # No losses are recorded: every lead open at the cut-off and not won within 90 days
    # counts as not won, none is left out.
    assert truth.lost == 0
    assert truth.leads + truth.not_yet_created + truth.decided_before == 8000
    assert 0 < truth.won < truth.leads
