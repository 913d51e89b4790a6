"""Recordings: the (channel_id, start_at) index also holds end_at and bytes, so that the timeline
of a channel over months (recordings_query.spans_between) is read from the index alone. Same
name, same leading columns: every query that used it still does; no second index to keep up.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_recordings_channel_id_start_at", "recordings")
    op.create_index("ix_recordings_channel_id_start_at", "recordings", ["channel_id", "start_at", "end_at", "bytes"])


def downgrade() -> None:
    op.drop_index("ix_recordings_channel_id_start_at", "recordings")
    op.create_index("ix_recordings_channel_id_start_at", "recordings", ["channel_id", "start_at"])
