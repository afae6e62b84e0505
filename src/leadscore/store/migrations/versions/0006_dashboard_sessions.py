"""dashboard sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a session is a row now (one per sign-in, deleted at sign-out), no longer a generation
    # number signed into the cookie: every session signed before this revision ends
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_user_id_created_at"),
        "dashboard_sessions",
        ["user_id", "created_at"],
    )
    op.create_index(op.f("ix_dashboard_sessions_created_at"), "dashboard_sessions", ["created_at"])
    with op.batch_alter_table("dashboard_users") as table:
        table.drop_column("generation")


def downgrade() -> None:
    with op.batch_alter_table("dashboard_users") as table:
        table.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
    op.drop_index(op.f("ix_dashboard_sessions_created_at"), table_name="dashboard_sessions")
    op.drop_index(op.f("ix_dashboard_sessions_user_id_created_at"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
