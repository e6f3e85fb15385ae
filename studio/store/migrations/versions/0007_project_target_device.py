"""Where the project's models will be deployed: the device every step's measurement runs on.

Revision ID: 0007_project_target_device
Revises: 0006_measurement_execution
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_project_target_device"
down_revision: str | None = "0006_measurement_execution"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Projects made before this revision measured on the CPU: that stays their target.
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("target_device", sa.String(), nullable=False, server_default="cpu"))


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_column("target_device")
