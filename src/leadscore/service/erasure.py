"""GDPR access and erasure of one lead, everywhere the service keeps something about it.

The store's part is `records.lead_data` and `records.erase_lead`: every table that refers to
a lead (derived from the schema), the leads merged into it and the stored reports that name
it. Here the rest follows an erasure: previews and caches in memory, the account roll-ups the
lead counted in, and SQLite's write-ahead log, which still holds the deleted rows' pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from leadscore.service import scoring
from leadscore.store import records
from leadscore.store import tables as t

if TYPE_CHECKING:
    from leadscore.service.app import Service

log = logging.getLogger("leadscore.service")

#: What higher layers keep in memory per lead (the dashboard's plots): each is called with
#: the ids of erased leads. The service cannot import them; they register here.
FORGET: list[Callable[[Collection[str]], None]] = []


def export_lead(service: Service, lead_id: str) -> dict[str, list[dict[str, Any]]] | None:
    """Everything stored about a lead, table by table; None if it is unknown."""
    with service.store.read() as conn:
        if records.get_lead(conn, lead_id) is None:
            return None
        return records.lead_data(conn, lead_id)


def erase_lead(service: Service, lead_id: str) -> dict[str, int] | None:
    """Delete a lead and all its data; its accounts' other leads are rescored. None if unknown.

    Counts per table what was deleted: the same tables and rows `export_lead` lists.
    """
    with service.store.write() as conn:
        if records.get_lead(conn, lead_id) is None:
            return None
        ids = records.merged_family(conn, lead_id)
        leads = t.leads
        query = sa.select(leads.c.account_id).where(records.among(conn, leads.c.lead_id, ids))
        account_ids = sorted({str(a) for a in conn.execute(query).scalars() if a is not None})
        counts = records.erase_lead(conn, lead_id)
        peers: list[str] = []
        rolled = t.account_scores
        for account_id in account_ids:
            left = records.account_lead_ids(conn, [account_id])
            records.mark_dirty(conn, left, scoring.ACCOUNT, account_id)
            if not left:  # no lead left to roll up: the account's roll-up goes too
                conn.execute(rolled.delete().where(rolled.c.account_id == account_id))
            peers.extend(left)
    erased = set(ids)
    service.previews.forget(erased)
    service.scorer.forget(erased)
    for forget in FORGET:
        forget(erased)
    if not service.store.scrub():
        log.warning(
            "erased lead %r, but readers kept SQLite's write-ahead log busy: its old pages are "
            "overwritten at the next checkpoint",
            lead_id,
        )
    if peers:
        service.scorer.process_dirty(lead_ids=peers)
    return counts
