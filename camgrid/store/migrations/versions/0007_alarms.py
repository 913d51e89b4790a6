"""Alarm centre: alarms, their history (workflow steps and notes), bookmarks, notification outbox,
and the read position of each source the centre tails (the events that media nodes write to the
events table themselves).

An alarm's id is stable for its whole life (work orders will refer to it). ``open_key`` holds the
de-duplication key while the alarm is not resolved and NULL afterwards, so the unique constraint
on it allows one unresolved alarm per key on both SQLite and PostgreSQL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("open_key", sa.String(255), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(20), nullable=True),
        sa.Column("channel_id", sa.String(20), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", sa.String(64), nullable=True),
        sa.Column("dispatched_to", sa.String(100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alarms"),
        sa.UniqueConstraint("open_key", name="uq_alarms_open_key"),
    )
    op.create_index("ix_alarms_state_priority", "alarms", ["state", "priority"])
    op.create_index("ix_alarms_last_at", "alarms", ["last_at"])
    op.create_index("ix_alarms_device_id", "alarms", ["device_id"])
    op.create_index("ix_alarms_channel_id", "alarms", ["channel_id"])
    op.create_index("ix_alarms_dedup_key", "alarms", ["dedup_key"])
    op.create_table(
        "alarm_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"],
                                name="fk_alarm_history_alarm_id_alarms", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_history"),
    )
    op.create_index("ix_alarm_history_alarm_id", "alarm_history", ["alarm_id"])
    op.create_table(
        "alarm_bookmarks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"],
                                name="fk_alarm_bookmarks_alarm_id_alarms", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_bookmarks"),
    )
    op.create_index("ix_alarm_bookmarks_channel_id_at", "alarm_bookmarks", ["channel_id", "at"])
    op.create_table(
        "alarm_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_outbox"),
    )
    op.create_index("ix_alarm_outbox_state_next_attempt_at", "alarm_outbox", ["state", "next_attempt_at"])
    op.create_table(
        "alarm_sources",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alarm_sources"),
    )


def downgrade() -> None:
    op.drop_table("alarm_sources")
    op.drop_index("ix_alarm_outbox_state_next_attempt_at", "alarm_outbox")
    op.drop_table("alarm_outbox")
    op.drop_index("ix_alarm_bookmarks_channel_id_at", "alarm_bookmarks")
    op.drop_table("alarm_bookmarks")
    op.drop_index("ix_alarm_history_alarm_id", "alarm_history")
    op.drop_table("alarm_history")
    for name in ("dedup_key", "channel_id", "device_id", "last_at", "state_priority"):
        op.drop_index(f"ix_alarms_{name}", "alarms")
    op.drop_table("alarms")
