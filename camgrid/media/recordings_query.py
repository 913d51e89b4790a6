"""Reading the segment index: which segments cover a time range, and the timeline of covered
spans and gaps that playback shows.

Fast over months of footage: a segment is at most MAX_SEGMENT long, so the segments that
overlap [start, end) are found by an index range on (channel_id, start_at) from
start − MAX_SEGMENT, not by scanning the channel's history. Merging is linear in the number
of segments returned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, select

from camgrid.registry._sql import aware
from camgrid.store.tables import recordings

MAX_SEGMENT = timedelta(hours=1)  # media.segment_s is at most 3600
JOIN_TOLERANCE = timedelta(seconds=1.5)  # segments closer than this play as one span


def segments_between(engine: Engine, channel_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    c = recordings.c
    stmt = (select(recordings)
            .where(and_(c.channel_id == channel_id, c.start_at >= start - MAX_SEGMENT, c.start_at < end, c.end_at > start,
                        c.bytes > 0))
            .order_by(c.start_at))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for row in rows:
        row["start_at"], row["end_at"] = aware(row["start_at"]), aware(row["end_at"])
    return rows


def spans_between(engine: Engine, channel_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The timeline of [start, end) without building a row per segment: only (start, end, bytes)
    tuples are read, which is what keeps a month of 1-minute segments quick."""
    c = recordings.c
    stmt = (select(c.start_at, c.end_at, c.bytes)
            .where(and_(c.channel_id == channel_id, c.start_at >= start - MAX_SEGMENT, c.start_at < end, c.end_at > start,
                        c.bytes > 0))
            .order_by(c.start_at))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    segments = [{"start_at": aware(s), "end_at": aware(e), "bytes": b} for s, e, b in rows]
    return timeline(segments, start, end)


def timeline(segments: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    """Covered spans (clipped to the range) and the gaps between them, in time order."""
    spans: list[list[datetime]] = []
    for seg in segments:
        s, e = max(seg["start_at"], start), min(seg["end_at"], end)
        if e <= s:
            continue
        if spans and s - spans[-1][1] <= JOIN_TOLERANCE:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e])
    gaps, cursor = [], start
    for s, e in spans:
        if s - cursor > JOIN_TOLERANCE:
            gaps.append((cursor, s))
        cursor = max(cursor, e)
    if end - cursor > JOIN_TOLERANCE:
        gaps.append((cursor, end))
    covered = sum((e - s).total_seconds() for s, e in spans)
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "spans": [{"from": s.isoformat(), "to": e.isoformat()} for s, e in spans],
        "gaps": [{"from": s.isoformat(), "to": e.isoformat()} for s, e in gaps],
        "covered_s": round(covered, 3), "segments": len(segments),
        "bytes": sum(seg["bytes"] for seg in segments),
    }
