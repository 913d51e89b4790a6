"""The timeline of recorded footage: spans, gaps, and the index range that keeps it fast."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from camgrid.media.recordings_query import segments_between, timeline
from camgrid.store.tables import recordings

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
CH = "34020000001310000001"


def seg(start_s, end_s, n=[0]):
    n[0] += 1
    return {"id": f"s{n[0]:030d}", "channel_id": CH, "device_id": "34020000001320000001",
            "start_at": T0 + timedelta(seconds=start_s), "end_at": T0 + timedelta(seconds=end_s), "bytes": 1000,
            "path": f"x/{n[0]}.mp4", "codec": "h264", "width": 1, "height": 1, "state": "closed", "node_id": "n",
            "created_at": T0}


def at(s):
    return (T0 + timedelta(seconds=s)).isoformat()


def test_adjacent_segments_join_and_holes_are_gaps():
    segs = [seg(0, 60), seg(60.5, 120), seg(200, 260)]
    t = timeline(segs, T0, T0 + timedelta(seconds=300))
    assert t["spans"] == [{"from": at(0), "to": at(120)}, {"from": at(200), "to": at(260)}]
    assert t["gaps"] == [{"from": at(120), "to": at(200)}, {"from": at(260), "to": at(300)}]
    assert t["covered_s"] == 180


def test_spans_are_clipped_to_the_range():
    t = timeline([seg(0, 60)], T0 + timedelta(seconds=30), T0 + timedelta(seconds=45))
    assert t["spans"] == [{"from": at(30), "to": at(45)}] and t["gaps"] == []


def test_segments_between_uses_the_bounded_range(engine):
    rows = [seg(i * 60, i * 60 + 60) for i in range(500)] + [seg(-3600 * 24, -3600 * 24 + 60)]
    rows.append({**seg(10, 20), "bytes": 0})  # an empty segment (nothing whole on disk) is not footage
    with engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
    found = segments_between(engine, CH, T0 + timedelta(seconds=90), T0 + timedelta(seconds=200))
    assert [(s["start_at"] - T0).total_seconds() for s in found] == [60, 120, 180]
    assert all(s["start_at"].tzinfo is not None for s in found)
    assert segments_between(engine, "34020000001310000009", T0, T0 + timedelta(days=1)) == []


def test_spans_between_gives_the_same_timeline_as_the_full_rows(engine):
    from camgrid.media.recordings_query import spans_between

    rows = [seg(i * 60, i * 60 + 60) for i in range(30) if i % 7 != 3]
    with engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(seconds=1700)
    assert spans_between(engine, CH, start, end) == timeline(segments_between(engine, CH, start, end), start, end)
