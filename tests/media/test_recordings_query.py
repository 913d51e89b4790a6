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


# -- the SQL merge against the Python one ---------------------------------------------------------

import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from camgrid.media.recordings_query import JOIN_TOLERANCE, MAX_SEGMENT, span_params, span_query, spans_between  # noqa: E402
from camgrid.store.engine import make_engine, migrate  # noqa: E402

PG_URL = os.environ.get("CAMGRID_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
US = timedelta(microseconds=1)
TOL = JOIN_TOLERANCE // US


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_engine(request, tmp_path_factory):
    """One migrated database per kind for the whole module (hypothesis runs many examples on it)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path_factory.mktemp('rq') / 'camgrid.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        admin = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} (required in CI)")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    eng = make_engine(f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}")
    try:
        migrate(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# Gaps between one segment's end and the next one's start, in µs: the tolerance edge exactly
# and one µs either side, overlaps, back to back, and anything up to an hour.
_gap = st.one_of(st.sampled_from([TOL - 1, TOL, TOL + 1, 0, -1, -TOL, 1]),
                 st.integers(-3_600_000_000, 3_600_000_000))
# Lengths: zero, a µs, typical, up to the longest segment.
_length = st.one_of(st.sampled_from([0, 1, TOL, 60_000_000]), st.integers(0, MAX_SEGMENT // US))
_segment = st.tuples(_gap, _length, st.sampled_from([0, 1, 30_000_000]) | st.integers(0, 10**12), st.booleans())


def _rows(draw_list, origin):
    """Segments from (gap after the previous end, length, bytes, same start as the previous) tuples."""
    rows, cursor, last_start = [], origin, origin
    for i, (gap, length, size, tie) in enumerate(draw_list):
        start = last_start if tie and rows else cursor + gap * US
        end = start + length * US
        rows.append({"id": f"h{i:031d}", "channel_id": CH, "device_id": "34020000001320000001", "start_at": start,
                     "end_at": end, "bytes": size, "path": f"x/{i}.mp4", "codec": "h264", "width": 1, "height": 1,
                     "state": "closed", "node_id": "n", "created_at": T0})
        cursor, last_start = max(cursor, end), start
    return rows


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(_segment, max_size=40),
       origin_us=st.integers(-7_200_000_000, 3_600_000_000),
       range_start_us=st.one_of(st.integers(-3_600_000_000, 7_200_000_000), st.sampled_from([0, TOL, -TOL])),
       range_len_us=st.one_of(st.integers(1, 4 * 3_600_000_000), st.sampled_from([1, TOL, TOL + 1, 60_000_000])))
def test_the_sql_merge_gives_what_the_python_merge_gives(shared_engine, segments, origin_us, range_start_us, range_len_us):
    rows = _rows(segments, T0 + origin_us * US)
    start = T0 + range_start_us * US
    end = start + range_len_us * US
    with shared_engine.begin() as conn:
        conn.execute(recordings.delete())
        if rows:
            conn.execute(recordings.insert(), rows)
    # the reference: the Python merge over the rows as read, and over the rows as generated
    expected = timeline(segments_between(shared_engine, CH, start, end), start, end)
    chosen = sorted((r for r in rows if r["bytes"] > 0 and r["start_at"] >= start - MAX_SEGMENT and r["start_at"] < end
                     and r["end_at"] > start), key=lambda r: r["start_at"])
    assert timeline(chosen, start, end) == expected
    assert spans_between(shared_engine, CH, start, end) == expected


def test_the_sql_merge_on_a_range_given_in_another_zone(engine):
    """The API hands UTC; a range in another zone is answered in UTC, with the same instants."""
    rows = [seg(0, 60), seg(61.5, 120), seg(121.6, 180)]
    with engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
    east = timezone(timedelta(hours=8))
    start, end = (T0 + timedelta(seconds=10)).astimezone(east), (T0 + timedelta(seconds=170)).astimezone(east)
    got = spans_between(engine, CH, start, end)
    assert got == timeline(segments_between(engine, CH, start, end), start.astimezone(timezone.utc),
                           end.astimezone(timezone.utc))
    assert got["spans"] == [{"from": at(10), "to": at(120)}, {"from": at(121.6), "to": at(170)}]


def _plan(engine, start, end):
    """The query plan of the timeline query, as text."""
    sqlite = engine.dialect.name == "sqlite"
    stmt = span_query(engine.dialect.name, "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ")
    with engine.connect() as conn:
        rows = conn.execute(stmt, span_params(CH, start, end)).all()
    return "\n".join(str(r[-1] if sqlite else r[0]) for r in rows)


def test_the_timeline_query_reads_the_channel_start_index(engine):
    """A day of 1-minute segments for each of 8 channels; the query asks for one channel's hour."""
    rows = [{**seg(i * 60, i * 60 + 60), "channel_id": f"3402000000131000000{c}"} for c in range(8) for i in range(1440)]
    with engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE recordings")
    plan = _plan(engine, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert "ix_recordings_channel_id_start_at" in plan, plan


def test_the_timeline_api_answers_the_sql_merge(engine):
    """GET /channels/{id}/recordings: the spans merged in the database, equal to the Python merge
    of the same rows; a range given in another zone is the same instants."""
    from fastapi.testclient import TestClient

    from camgrid.api.app import ApiContext, create_api
    from camgrid.config import Settings
    from camgrid.governance.users import create_user, issue_token

    rows = [seg(i * 60, i * 60 + 60) for i in range(120) if i % 9 != 4] + [seg(7300.2, 7320)]
    with engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
    user = create_user(engine, "viewer1", "pass-word-123", "operator")
    client = TestClient(create_api(ApiContext(engine=engine, settings=Settings(), bus=None, health=None, commands=None,
                                              metrics=None)))
    headers = {"Authorization": f"Bearer {issue_token(engine, user['id'], 600)}"}
    start, end = T0 + timedelta(seconds=100), T0 + timedelta(hours=2, minutes=10)
    east = timezone(timedelta(hours=8))
    answer = client.get(f"/api/v1/channels/{CH}/recordings", headers=headers,
                        params={"from": start.astimezone(east).isoformat(), "to": end.isoformat()})
    assert answer.status_code == 200, answer.text
    expected = timeline(segments_between(engine, CH, start, end), start, end)
    assert answer.json() == expected
    assert len(expected["spans"]) == 15 and expected["spans"][-1] == {"from": at(7300.2), "to": at(7320)}


def test_an_sqlite_without_window_functions_gets_the_python_merge(sqlite_engine, monkeypatch):
    """SQLite before 3.25 has no window functions (an old system library): the rows are read and
    merged in Python, with the same answer. (That library cannot be loaded here: its version is faked.)"""
    import camgrid.media.recordings_query as rq

    rows = [seg(i * 60, i * 60 + 60) for i in range(100) if i % 7 != 2] + [seg(50, 50)]
    with sqlite_engine.begin() as conn:
        conn.execute(recordings.insert(), rows)
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(seconds=5000)
    in_sql = spans_between(sqlite_engine, CH, start, end)
    monkeypatch.setattr(rq, "sqlite3", type("OldSqlite", (), {"sqlite_version_info": (3, 24, 0)}))
    assert spans_between(sqlite_engine, CH, start, end) == in_sql
    assert len(in_sql["spans"]) == 13 and in_sql["segments"] == 73
