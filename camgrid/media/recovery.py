"""After a media node stopped without closing its segments (killed, crashed, power lost):
make the index and the disk agree again before recording resumes.

Each segment the index still shows as open on this node is read back: a torn last fragment is
cut off, and the row gets the size and end time of what is whole on disk (state "recovered").
The time between that end and the next recording is a gap, written as an event with its cause.
Blocking: run in a worker thread at node start.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update

from camgrid.bus import Event
from camgrid.governance.event_log import event_row
from camgrid.media.segment_file import SegmentError, repair_segment
from camgrid.store.tables import events, recordings

log = logging.getLogger(__name__)

CAUSE = "the media node stopped without closing the segment (killed, crashed or lost power)"


def recover_segments(engine: Engine, root: Path, node_id: str, open_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Repair the given open segments of `node_id`; returns what was done per segment."""
    report = []
    for row in open_rows:
        path = root / row["path"]
        lost = 0
        try:
            scan = repair_segment(path)
            size, lost = scan.whole_bytes, scan.file_bytes - scan.whole_bytes
            end_at = row["start_at"] + timedelta(seconds=scan.duration_ticks / 90_000)
            detail = f"{scan.fragments} whole parts kept, {lost} torn bytes cut"
        except FileNotFoundError:
            size, end_at, detail = 0, row["start_at"], "the file is missing"
        except SegmentError as exc:
            size, end_at, detail = 0, row["start_at"], f"unreadable: {exc}"
        with engine.begin() as conn:
            conn.execute(update(recordings).where(recordings.c.id == row["id"]).values(
                bytes=size, end_at=end_at, state="recovered"))
            conn.execute(events.insert(), [event_row(Event("recording.gap", row["channel_id"], {
                "device_id": row["device_id"], "segment_id": row["id"], "recorded_until": end_at.isoformat(),
                "cause": CAUSE, "detail": detail, "lost_bytes": lost}))])
        log.warning("recovered segment %s of %s: %s", row["id"], row["channel_id"], detail)
        report.append({"id": row["id"], "bytes": size, "end_at": end_at, "detail": detail})
    return report
