"""Recordings: the audio codec of each segment (recordings.audio_codec: aac | g711a | g711u; NULL
when the segment has no audio track), written by the recorder and by orphan re-indexing.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("audio_codec", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("audio_codec")
