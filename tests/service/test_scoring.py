"""The scorer's full passes: leads in bounded groups that never split an account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from leadscore.service.scoring import Scorer
from leadscore.store import records
from leadscore.store.database import Store, open_store

NOW = datetime(2026, 3, 2)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    yield store
    store.close()


def test_groups_are_bounded_and_keep_accounts_whole(store: Store) -> None:
    accounts = {"A": 5, "B": 1, "C": 4}
    leads = [
        {"lead_id": f"{account}{i}", "account_id": account}
        for account, n in accounts.items()
        for i in range(n)
    ] + [{"lead_id": f"solo{i}"} for i in range(7)]
    with store.write() as conn:
        records.upsert_leads(conn, leads, NOW)
    groups = Scorer(store, lambda: NOW).lead_groups(chunk=3)
    assert sorted(i for g in groups for i in g) == sorted(r["lead_id"] for r in leads)
    for account in accounts:
        holding = [g for g in groups if any(i.startswith(account) for i in g)]
        assert len(holding) == 1, (account, groups)
    # a group grows past the bound only to finish the account it was in at the bound
    for group in groups:
        assert all(i[0] == group[2][0] != "s" for i in group[3:]), groups
    assert max(len(g) for g in groups if all(i.startswith("solo") for i in g)) <= 3
