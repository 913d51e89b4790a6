"""Video quality diagnosis: results (history), per-channel state (open findings, reference
picture, thresholds) and patrol rounds.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vqd_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("device_id", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("diagnosed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("codec", sa.String(16), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vqd_results"),
    )
    op.create_index("ix_vqd_results_channel_id_at", "vqd_results", ["channel_id", "at"])
    op.create_index("ix_vqd_results_round_id", "vqd_results", ["round_id"])
    op.create_table(
        "vqd_channels",
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result_id", sa.BigInteger(), nullable=True),
        sa.Column("open_faults", sa.JSON(), nullable=False),
        sa.Column("reference", sa.LargeBinary(), nullable=True),
        sa.Column("reference_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reference_by", sa.String(64), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name="pk_vqd_channels"),
    )
    op.create_table(
        "vqd_rounds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("diagnosed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("with_faults", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vqd_rounds"),
    )


def downgrade() -> None:
    op.drop_table("vqd_rounds")
    op.drop_table("vqd_channels")
    op.drop_index("ix_vqd_results_round_id", table_name="vqd_results")
    op.drop_index("ix_vqd_results_channel_id_at", table_name="vqd_results")
    op.drop_table("vqd_results")
