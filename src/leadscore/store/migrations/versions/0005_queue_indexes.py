"""indexes for the sales queue

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the queue takes the best priority and the best hot leads without sorting every score
    op.create_index(op.f("ix_scores_priority_total"), "scores", ["priority", "total"])
    op.create_index(op.f("ix_scores_temperature_total"), "scores", ["temperature", "total"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scores_temperature_total"), table_name="scores")
    op.drop_index(op.f("ix_scores_priority_total"), table_name="scores")
