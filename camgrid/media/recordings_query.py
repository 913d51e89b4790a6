"""Reading the segment index: which segments cover a time range, and the timeline of covered
spans and gaps that playback shows.

Fast over months of footage: a segment is at most MAX_SEGMENT long, so the segments that
overlap [start, end) are found by an index range on (channel_id, start_at) from
start − MAX_SEGMENT, not by scanning the channel's history. The timeline API merges those
segments into spans in the database (gaps and islands with window functions, on SQLite ≥ 3.25
and PostgreSQL), so one row per span comes back, not one per segment. `timeline` is the same
merge in Python, for rows already read, and the reference the SQL is tested against.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (BigInteger, DateTime, Engine, Interval, TextClause, and_, bindparam, column, select,
                        text)
from sqlalchemy.sql.elements import ColumnElement

from camgrid.registry._sql import aware
from camgrid.store.tables import recordings

MAX_SEGMENT = timedelta(hours=1)  # media.segment_s is at most 3600
JOIN_TOLERANCE = timedelta(seconds=1.5)  # segments closer than this play as one span
_US = timedelta(microseconds=1)


def _in_range(channel_id: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    """Footage of the channel overlapping [start, end), as a range on (channel_id, start_at)."""
    c = recordings.c
    return and_(c.channel_id == channel_id, c.start_at >= start - MAX_SEGMENT, c.start_at < end, c.end_at > start,
                c.bytes > 0)


def segments_between(engine: Engine, channel_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    # in UTC: SQLite compares the stored UTC text with the bound time's own wall clock
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    stmt = select(recordings).where(_in_range(channel_id, start, end)).order_by(recordings.c.start_at)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for row in rows:
        row["start_at"], row["end_at"] = aware(row["start_at"]), aware(row["end_at"])
    return rows


# Gaps and islands in one pass over the index range, in start order: a segment opens a span when
# its start (clipped to the range) is more than the tolerance after the latest end before it.
# Only those that open a span come back; a span ends at the latest end seen before the next one
# opens, or before the closing row, placed after every segment, that also carries the count and
# bytes of all of them. A segment that clips to nothing (no length) counts but opens nothing.
# One window definition, with literal bounds, so that SQLite evaluates it in a single pass.
_SPANS = """
SELECT s, latest, n, size FROM (
  SELECT start_at, s, e, MAX(e) OVER w AS latest, COUNT(*) OVER w AS n, SUM(bytes) OVER w AS size
  FROM (
    SELECT start_at, bytes, s, CASE WHEN e > s THEN e END AS e
    FROM (SELECT start_at, bytes, {greatest}(start_at, :start) AS s, {least}(end_at, :end) AS e
          FROM recordings
          WHERE channel_id = :channel AND start_at >= :lo AND start_at < :end AND end_at > :start AND bytes > 0) AS clipped
    UNION ALL SELECT :end, 0, NULL, NULL
  ) AS segments
  WINDOW w AS (ORDER BY start_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
) AS seen
WHERE s IS NULL OR (e IS NOT NULL AND (latest IS NULL OR {apart}))
ORDER BY start_at
"""
# s − latest > tolerance, exact to the microsecond as in `timeline`. SQLite keeps UTC as
# 'YYYY-MM-DD HH:MM:SS.ffffff' text: whole seconds apart (a julianday difference of whole
# seconds, rounded: exact) and microseconds apart, worked out only where s > latest at all.
_APART = {
    "sqlite": "(s > latest AND CAST(round((julianday(substr(s, 1, 19)) - julianday(substr(latest, 1, 19))) * 86400)"
              " AS INTEGER) * 1000000 + CAST(substr(s, 21, 6) AS INTEGER) - CAST(substr(latest, 21, 6) AS INTEGER)"
              " > :tolerance_us)",
    "postgresql": "s - latest > :tolerance",
}
_TIME = DateTime(timezone=True)


def span_query(dialect: str, prefix: str = "") -> TextClause:
    """The timeline query for `dialect` (`prefix`: e.g. EXPLAIN), for the parameters of
    span_params. Rows in time order: (span start, end of the span before it, -, -) per span,
    then the closing row (None, end of the last span, segments, bytes)."""
    funcs = ("max", "min") if dialect == "sqlite" else ("greatest", "least")
    sql = prefix + _SPANS.format(greatest=funcs[0], least=funcs[1], apart=_APART.get(dialect, _APART["postgresql"]))
    stmt = text(sql).bindparams(bindparam("start", type_=_TIME), bindparam("end", type_=_TIME),
                                bindparam("lo", type_=_TIME))
    if dialect == "sqlite":
        stmt = stmt.bindparams(tolerance_us=JOIN_TOLERANCE // _US)
    else:
        stmt = stmt.bindparams(bindparam("tolerance", JOIN_TOLERANCE, type_=Interval()))
    return stmt


def span_params(channel_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"channel": channel_id, "start": start, "end": end, "lo": start - MAX_SEGMENT}


def spans_between(engine: Engine, channel_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The timeline of [start, end), merged in the database (span_query): what `timeline` gives
    for the same segments, read as one row per span. Times are answered in UTC."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if engine.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 25):  # no window functions: read the rows
        c = recordings.c
        stmt = select(c.start_at, c.end_at, c.bytes).where(_in_range(channel_id, start, end)).order_by(c.start_at)
        with engine.connect() as conn:
            return timeline([{"start_at": aware(s), "end_at": aware(e), "bytes": b} for s, e, b in conn.execute(stmt)],
                            start, end)
    with engine.connect() as conn:
        stmt = span_query(engine.dialect.name).columns(column("s", _TIME), column("latest", _TIME), column("n", BigInteger),
                                                       column("size", BigInteger))
        rows = conn.execute(stmt, span_params(channel_id, start, end)).all()
    starts = [aware(r.s) for r in rows[:-1]]
    ends = [aware(r.latest) for r in rows[1:]]
    closing = rows[-1]
    return _answer(list(zip(starts, ends)), start, end, int(closing.n), int(closing.size or 0))


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
    return _answer([(s, e) for s, e in spans], start, end, len(segments), sum(seg["bytes"] for seg in segments))


def _answer(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime, segments: int,
            size: int) -> dict[str, Any]:
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
        "covered_s": round(covered, 3), "segments": segments, "bytes": size,
    }
