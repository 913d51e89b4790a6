"""Operator-owned inventory attributes on devices (location, point class, organisation).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("civil_code", sa.String(length=20), nullable=False, server_default=""))
        batch.add_column(sa.Column("address", sa.String(length=300), nullable=False, server_default=""))
        batch.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("point_class", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("organisation_id", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in ("organisation_id", "point_class", "latitude", "longitude", "address", "civil_code"):
            batch.drop_column(name)
