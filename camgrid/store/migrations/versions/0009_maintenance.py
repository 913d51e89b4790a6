"""Maintenance: teams, work orders with SLA deadlines, and each order's history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_teams",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("contact", sa.String(200), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_teams"),
        sa.UniqueConstraint("name", name="uq_maintenance_teams_name"),
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("active_alarm_id", sa.Integer(), nullable=True),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(20), nullable=True),
        sa.Column("channel_id", sa.String(20), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verifiable", sa.Boolean(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repaired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("respond_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolve_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_breached", sa.Boolean(), nullable=False),
        sa.Column("resolve_breached", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["maintenance_teams.id"], name="fk_work_orders_team_id_maintenance_teams",
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name="pk_work_orders"),
        sa.UniqueConstraint("active_alarm_id", name="uq_work_orders_active_alarm_id"),
    )
    op.create_index("ix_work_orders_state", "work_orders", ["state"])
    op.create_index("ix_work_orders_team_id_state", "work_orders", ["team_id", "state"])
    op.create_index("ix_work_orders_assignee_state", "work_orders", ["assignee", "state"])
    op.create_index("ix_work_orders_channel_id", "work_orders", ["channel_id"])
    op.create_table(
        "work_order_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], name="fk_work_order_history_order_id_work_orders",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_work_order_history"),
    )
    op.create_index("ix_work_order_history_order_id", "work_order_history", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_work_order_history_order_id", table_name="work_order_history")
    op.drop_table("work_order_history")
    for name in ("ix_work_orders_channel_id", "ix_work_orders_assignee_state", "ix_work_orders_team_id_state",
                 "ix_work_orders_state"):
        op.drop_index(name, table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_table("maintenance_teams")
