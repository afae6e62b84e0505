"""What a tracking key may change: it fills in what is not known yet, it never rewrites it.

A tracking key is a write key that browsers and apps hold, so anyone can read it and send any
`userId`. Admin keys (servers, the CRM) keep full power; with a tracking key alone:

- events may be added to any lead, and bare leads created for them (SDKs track first);
- custom attributes (traits) may be set and changed on any lead or account;
- a canonical field of a lead or an account (e-mail, name, job title, account, company, stage,
  priority, ...) may be filled in while it is empty, and sent again unchanged, but not changed
  once it holds a value;
- a merge (identify with an anonymousId, alias) may only take an anonymous lead's history: its
  source (the anonymous or previous id) must have no outcome and either none of those fields
  set, or the same e-mail as the lead it is merged into (a visitor who left their e-mail
  before signing in). Moving the history of any other lead takes an admin key. The target
  may be any lead: merging into it gives it nothing a tracking key could not send it as
  events directly.

A message that breaks a rule is rejected as a whole, naming the field, and the others of its
request are taken. Rejections never quote what is stored (a tracking key reads nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa

from leadscore.service.segment import Mapped
from leadscore.store import records
from leadscore.store import tables as t

LEAD_FIELDS: Final = tuple(f for f in records.LEAD_FIELDS if f != "lead_id")
ACCOUNT_FIELDS: Final = tuple(f for f in records.ACCOUNT_FIELDS if f != "account_id")


def _stored(
    conn: sa.Connection, table: sa.Table, key: str, ids: set[str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in records.chunks(sorted(ids)):
        rows = conn.execute(sa.select(table).where(records.among(conn, table.c[key], part)))
        for row in rows.mappings():
            out[str(row[key])] = dict(row)
    return out


class Screen:
    """The rules above over one request's messages, in order, against the store and what the
    request's earlier messages set (so a batch cannot change a field it filled itself)."""

    def __init__(self, conn: sa.Connection, messages: Sequence[tuple[int, Mapped]]) -> None:
        lead_ids = {str(r["lead_id"]) for _, m in messages for r in m.leads}
        sources = {source for _, m in messages for source, _target in m.merges}
        targets = {target for _, m in messages for _source, target in m.merges}
        account_ids = {str(r["account_id"]) for _, m in messages for r in m.accounts}
        self.leads = _stored(conn, t.leads, "lead_id", lead_ids | sources | targets)
        self.accounts = _stored(conn, t.accounts, "account_id", account_ids)
        self.won_or_lost: set[str] = set()
        for part in records.chunks(sorted(sources)):
            self.won_or_lost.update(
                conn.execute(
                    sa.select(t.outcomes.c.lead_id).where(
                        records.among(conn, t.outcomes.c.lead_id, part)
                    )
                ).scalars()
            )

    def refusal(self, mapped: Mapped) -> str | None:
        """Why a tracking key may not send this message, or None (then it counts as taken)."""
        for row in mapped.leads:
            problem = _change(self.leads.get(str(row["lead_id"])), row, LEAD_FIELDS, "lead")
            if problem is not None:
                return problem
        for row in mapped.accounts:
            stored = self.accounts.get(str(row["account_id"]))
            problem = _change(stored, row, ACCOUNT_FIELDS, "account")
            if problem is not None:
                return problem
        sent = {str(r["lead_id"]): r for r in mapped.leads}
        for source, target in mapped.merges:
            lead = self.leads.get(source) or {}
            known = any(lead.get(f) is not None for f in LEAD_FIELDS)
            email = sent.get(target, {}).get("email") or self.leads.get(target, {}).get("email")
            same_person = lead.get("email") is not None and lead.get("email") == email
            if (known and not same_person) or source in self.won_or_lost:
                return (
                    f"field 'previousId': a tracking key may not move the history of lead "
                    f"'{source}' to '{target}': only an anonymous lead's (no fields set, or "
                    "the same e-mail, and no outcome); an admin key may"
                )
        self._take(mapped)
        return None

    def _take(self, mapped: Mapped) -> None:
        # Later messages of the request see what this one set.
        for rows, known, key in (
            (mapped.leads, self.leads, "lead_id"),
            (mapped.accounts, self.accounts, "account_id"),
        ):
            for row in rows:
                current = known.setdefault(str(row[key]), {})
                current.update({k: v for k, v in row.items() if v is not None})


def _change(
    stored: dict[str, Any] | None, row: dict[str, Any], fields: Sequence[str], what: str
) -> str | None:
    if stored is None:
        return None  # a new lead or account: everything may be filled in
    for name in fields:
        if name not in row:
            continue
        before = stored.get(name)
        if before is not None and row[name] != before:
            return (
                f"field '{name}': a tracking key may fill in a {what}'s {name} but not change "
                "it once set; an admin key may"
            )
    return None


def screen(
    conn: sa.Connection, messages: Sequence[tuple[int, Mapped]]
) -> tuple[list[tuple[int, Mapped]], list[tuple[int, str]]]:
    """The messages a tracking key may send, and (index, reason) for each it may not."""
    check = Screen(conn, messages)
    kept: list[tuple[int, Mapped]] = []
    refused: list[tuple[int, str]] = []
    for index, mapped in messages:
        reason = check.refusal(mapped)
        if reason is None:
            kept.append((index, mapped))
        else:
            refused.append((index, reason))
    return kept, refused
