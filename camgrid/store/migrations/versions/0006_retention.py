"""Retention: profiles (max/min age), channel assignments, legal holds, last sweep per node.

Seeds the built-in profile "default": recordings kept 90 days (the retention these networks
are held to), and never deleted before 7 days even when the disk runs full.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    profiles = op.create_table(
        "retention_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("max_age_days", sa.Integer(), nullable=True),
        sa.Column("min_age_days", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_profiles"),
        sa.UniqueConstraint("name", name="uq_retention_profiles_name"),
    )
    op.create_table(
        "channel_retention",
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["retention_profiles.id"],
                                name="fk_channel_retention_profile_id_retention_profiles", ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("channel_id", name="pk_channel_retention"),
    )
    op.create_index("ix_channel_retention_profile_id", "channel_retention", ["profile_id"])
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_ref", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(64), nullable=True),
        sa.Column("release_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
    )
    op.create_index("ix_legal_holds_channel_id_start_at", "legal_holds", ["channel_id", "start_at"])
    op.create_index("ix_legal_holds_released_at", "legal_holds", ["released_at"])
    op.create_table(
        "retention_sweeps",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_retention_sweeps"),
    )
    op.bulk_insert(profiles, [{
        "name": "default", "max_age_days": 90, "min_age_days": 7,
        "description": "Built in: used by every channel without a profile of its own.",
        "updated_at": datetime.now(timezone.utc), "updated_by": "migration",
    }])


def downgrade() -> None:
    op.drop_table("retention_sweeps")
    op.drop_index("ix_legal_holds_released_at", "legal_holds")
    op.drop_index("ix_legal_holds_channel_id_start_at", "legal_holds")
    op.drop_table("legal_holds")
    op.drop_index("ix_channel_retention_profile_id", "channel_retention")
    op.drop_table("channel_retention")
    op.drop_table("retention_profiles")
