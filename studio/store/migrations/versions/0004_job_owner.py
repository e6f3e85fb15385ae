"""Who runs a job (host, PID, start time) and when it last said so, to tell a live job from one left behind.

Revision ID: 0004_job_owner
Revises: 0003_job_cancel_request
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_owner"
down_revision: str | None = "0003_job_cancel_request"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keep AUTOINCREMENT through SQLite's table rebuild: job ids are never reused.
    # Jobs recorded before this revision have no owner: whoever opens the project next sees them
    # as left behind, as the studio did before it recorded owners.
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("owner_host", sa.String(), nullable=True))
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("owner_started", sa.String(), nullable=True))
        batch.add_column(sa.Column("owner_heartbeat", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("owner_heartbeat")
        batch.drop_column("owner_started")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_host")
