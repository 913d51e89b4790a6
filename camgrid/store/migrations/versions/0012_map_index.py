"""The map: an index on channels (longitude, latitude, status, device_id), so the clusters of a
box are an index range that reads no table rows (camgrid/api/routes/maps.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_channels_lon_lat", "channels", ["longitude", "latitude", "status", "device_id"])


def downgrade() -> None:
    op.drop_index("ix_channels_lon_lat", table_name="channels")
