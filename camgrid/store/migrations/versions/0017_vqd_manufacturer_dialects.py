"""Operations (issue 5): the sub-stream selector an operator set per manufacturer at runtime
(console / API), over the configuration's vqd.substream.manufacturers. The key is kept lower-case
so that "Hikvision" and "HIKVISION" are one entry (matching is case-insensitive anyway).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vqd_manufacturer_dialects",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("dialect", sa.String(16), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vqd_manufacturer_dialects")
