"""A cancel asked for from another process (`studio jobs cancel` beside a running `studio run`).

Revision ID: 0003_job_cancel_request
Revises: 0002_version_details
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_job_cancel_request"
down_revision: str | None = "0002_version_details"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keep AUTOINCREMENT through SQLite's table rebuild: job ids are never reused.
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("cancel_requested")
