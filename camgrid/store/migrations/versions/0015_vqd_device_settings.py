"""Operations (issue 5): what the patrol learned about a device beyond a refusal (the sub-stream
selector it served, the last PTZ check) and what an operator set for it at runtime (the selector,
PTZ check on / off), in vqd_devices.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("substream_ok_dialect", sa.String(16)),
    ("substream_ok_at", sa.DateTime(timezone=True)),
    ("ptz_checked_at", sa.DateTime(timezone=True)),
    ("ptz_result", sa.JSON()),
    ("override_dialect", sa.String(16)),
    ("override_ptz_check", sa.Boolean()),
    ("override_by", sa.String(64)),
    ("override_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("vqd_devices") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vqd_devices") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
