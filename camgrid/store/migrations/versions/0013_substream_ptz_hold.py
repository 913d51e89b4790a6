"""Operations (issue 5): which stream the patrol diagnosed (vqd_results.stream), devices that
refused the sub-stream (vqd_devices), and work orders on hold (work_orders.on_hold_since,
hold_reason, held_s: the seconds their SLA clocks were paused).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vqd_results") as batch:
        batch.add_column(sa.Column("stream", sa.String(8), nullable=True))
    op.create_table(
        "vqd_devices",
        sa.Column("device_id", sa.String(20), primary_key=True),
        sa.Column("substream_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("substream_dialect", sa.String(16), nullable=True),
        sa.Column("substream_reason", sa.String(300), nullable=True),
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("on_hold_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(300), nullable=True))
        batch.add_column(sa.Column("held_s", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("held_s")
        batch.drop_column("hold_reason")
        batch.drop_column("on_hold_since")
    op.drop_table("vqd_devices")
    with op.batch_alter_table("vqd_results") as batch:
        batch.drop_column("stream")
