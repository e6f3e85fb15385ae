"""What a technique reported about the version it made: per-layer tables, sparsity, remarks.

Revision ID: 0002_version_details
Revises: 0001_initial
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_version_details"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keep AUTOINCREMENT through SQLite's table rebuild: version ids are never reused.
    with op.batch_alter_table("model_versions", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    # Keep AUTOINCREMENT through SQLite's table rebuild: version ids are never reused.
    with op.batch_alter_table("model_versions", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("details")
