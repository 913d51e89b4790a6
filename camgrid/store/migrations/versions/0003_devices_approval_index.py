"""Index devices.approval: the health summary counts pending devices every time it is asked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_approval", "devices", ["approval"])


def downgrade() -> None:
    op.drop_index("ix_devices_approval", table_name="devices")
