"""API keys: random tokens stored as SHA-256 hashes, each with scopes (tracking, admin)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.store import tables as t

SCOPES: Final = ("tracking", "admin")


@dataclass(frozen=True)
class ApiKey:
    """A verified key: its id, name and scopes."""

    id: int
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether the key may act in `scope`; admin may do everything."""
        return scope in self.scopes or "admin" in self.scopes


def _hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(conn: Connection, name: str, scopes: list[str], now: datetime) -> str:
    """Store a new key and return its token (shown once; only the hash is kept)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {scopes!r}")
    prefix = "ls_" + secrets.token_hex(4)
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    conn.execute(
        t.api_keys.insert().values(
            name=name,
            prefix=prefix,
            key_hash=_hash(token),
            scopes=" ".join(sorted(set(scopes))),
            created_at=now,
        )
    )
    return token


def verify(conn: Connection, token: str) -> ApiKey | None:
    """The key a token belongs to, or None if unknown or revoked."""
    row = conn.execute(
        sa.select(t.api_keys.c.id, t.api_keys.c.name, t.api_keys.c.scopes).where(
            t.api_keys.c.key_hash == _hash(token), t.api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return ApiKey(row.id, row.name, frozenset(row.scopes.split()))


def list_keys(conn: Connection) -> list[dict[str, object]]:
    """Every key without its secret."""
    rows = conn.execute(sa.select(t.api_keys).order_by(t.api_keys.c.id)).mappings()
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "prefix": r["prefix"],
            "scopes": r["scopes"].split(),
            "created_at": r["created_at"],
            "revoked_at": r["revoked_at"],
        }
        for r in rows
    ]


def revoke(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke a key; False if there is no such key."""
    result = conn.execute(
        t.api_keys.update()
        .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0
