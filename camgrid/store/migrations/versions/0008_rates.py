"""Rates: each channel's observed / online / intact seconds per local day, and their sums per
group (organisation, manufacturer, device type) and point class.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rates_channel_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("device_id", sa.String(20), nullable=False),
        sa.Column("point_class", sa.SmallInteger(), nullable=False),
        sa.Column("organisation_id", sa.String(20), nullable=False),
        sa.Column("manufacturer", sa.String(100), nullable=False),
        sa.Column("type_code", sa.String(3), nullable=False),
        sa.Column("observed_s", sa.Float(), nullable=False),
        sa.Column("online_s", sa.Float(), nullable=False),
        sa.Column("intact_s", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("end_device_up", sa.Boolean(), nullable=False),
        sa.Column("end_channel_up", sa.Boolean(), nullable=False),
        sa.Column("end_faults", sa.String(400), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel_id", name="pk_rates_channel_daily"),
    )
    op.create_table(
        "rates_group_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(16), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("point_class", sa.SmallInteger(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("observed_s", sa.Float(), nullable=False),
        sa.Column("online_s", sa.Float(), nullable=False),
        sa.Column("intact_s", sa.Float(), nullable=False),
        sa.Column("hd", sa.Integer(), nullable=False),
        sa.Column("measured", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "dimension", "key", "point_class", name="pk_rates_group_daily"),
    )
    op.create_index("ix_rates_group_daily_dimension_day", "rates_group_daily", ["dimension", "day"])


def downgrade() -> None:
    op.drop_index("ix_rates_group_daily_dimension_day", table_name="rates_group_daily")
    op.drop_table("rates_group_daily")
    op.drop_table("rates_channel_daily")
