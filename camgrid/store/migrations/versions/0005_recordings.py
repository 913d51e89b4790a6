"""recordings (the segment index of recorded footage) and record_plans (what to record).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("device_id", sa.String(20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(400), nullable=False),
        sa.Column("codec", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_channel_id_start_at", "recordings", ["channel_id", "start_at"])
    op.create_index("ix_recordings_node_id_state", "recordings", ["node_id", "state"])
    op.create_index("ix_recordings_end_at", "recordings", ["end_at"])
    op.create_table(
        "record_plans",
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name="pk_record_plans"),
    )


def downgrade() -> None:
    op.drop_table("record_plans")
    op.drop_index("ix_recordings_end_at", "recordings")
    op.drop_index("ix_recordings_node_id_state", "recordings")
    op.drop_index("ix_recordings_channel_id_start_at", "recordings")
    op.drop_table("recordings")
