"""How far a measurement's figures can be trusted: the median's confidence interval, how busy
the machine was, and, for a comparison, the paired speed-up with its interval.

Revision ID: 0005_measurement_timing
Revises: 0004_job_owner
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_measurement_timing"
down_revision: str | None = "0004_job_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keep AUTOINCREMENT through SQLite's table rebuild: measurement ids are never reused.
    # Measurements taken before this revision have no interval and no noise check: "{}".
    with op.batch_alter_table("measurements", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("timing", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("measurements", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("timing")
