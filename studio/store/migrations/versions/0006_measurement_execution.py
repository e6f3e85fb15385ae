"""Where and how a measurement ran, beyond its latency: energy per inference, peak GPU memory, and
the details behind them (the energy counter and window, the memory's source, the nodes each ONNX
Runtime provider ran, the torch mode, the batch sweep it belongs to, or why a figure is missing).

Revision ID: 0006_measurement_execution
Revises: 0005_measurement_timing
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_measurement_execution"
down_revision: str | None = "0005_measurement_timing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Measurements taken before this revision measured no energy and no memory: NULL (never 0),
    # and "{}" for their details, which every view reads as "not measured".
    with op.batch_alter_table("measurements", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("energy_per_inference_j", sa.Float(), nullable=True))
        batch.add_column(sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("execution", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("measurements", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("execution")
        batch.drop_column("peak_memory_bytes")
        batch.drop_column("energy_per_inference_j")
