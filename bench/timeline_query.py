"""The timeline API over months: spans merged in SQL against the Python merge, side by side.

    .venv/bin/python bench/timeline_query.py [--days 90] [--channels 20] [--rounds 7] [--only sqlite|postgresql]
                                             [--narrow-index | --both-indexes]
                                             [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Fills a segment index with `--days` of 60 s segments (a missing minute every 97, a 1.2 s hole
every 13 that the 1.5 s tolerance joins) for `--channels` channels, written in time order with
the channels interleaved, as a recorder writes them; then asks for the timeline of one channel
over 1 day, 30 days and `--days` days:

- old: the rows (start, end, bytes) of the range read through the (channel_id, start_at) index,
  merged into spans and gaps in Python (`timeline`), as `spans_between` did until 2026-12-01;
- new: `spans_between`, the same index range merged in the database (gaps and islands with
  window functions), one row per span read back.

The schema's (channel_id, start_at) index also holds end_at and bytes since migration 0016, so
the range is read from the index alone. `--narrow-index` puts back the two-column index of
0005-0015 in the bench database, for the figures before that change. `--both-indexes` times the
two side by side in one run: the filled database is copied (same rows, written in the same
order), the copy gets the narrow index, and every round times both merges on both copies, the
order turning each round.

Both answers are compared (they must be equal) before timing. Rounds alternate which one runs
first; the figures are medians over `--rounds`. SQLite in a temporary directory, and PostgreSQL
in a schema of its own (`bench_timeline_<pid>`) that is dropped at the end; with the server not
reachable, only SQLite runs.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import and_, select  # noqa: E402

from camgrid.media.recordings_query import MAX_SEGMENT, span_params, span_query, spans_between, timeline  # noqa: E402
from camgrid.registry._sql import aware  # noqa: E402
from camgrid.store.engine import make_engine, migrate  # noqa: E402
from camgrid.store.tables import recordings  # noqa: E402

END = datetime(2026, 11, 30, tzinfo=timezone.utc)
TARGET = "34020000001310000000"


def python_merge(engine: sa.Engine, channel_id: str, start: datetime, end: datetime) -> dict:
    """The timeline as it was answered before: every (start, end, bytes) of the range read, merged in Python."""
    c = recordings.c
    stmt = (select(c.start_at, c.end_at, c.bytes)
            .where(and_(c.channel_id == channel_id, c.start_at >= start - MAX_SEGMENT, c.start_at < end, c.end_at > start,
                        c.bytes > 0))
            .order_by(c.start_at))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return timeline([{"start_at": aware(s), "end_at": aware(e), "bytes": b} for s, e, b in rows], start, end)


def fill(engine: sa.Engine, channels: int, days: int) -> int:
    total, batch = 0, []
    t, n = END - timedelta(days=days), 0
    while t < END:
        for ch in range(channels):
            if n % 97 == 13:
                continue  # a missing minute
            start = t + (timedelta(seconds=1.2) if n % 13 == 5 else timedelta(0))  # a short hole, joined
            batch.append({"id": f"{ch:04d}{n:028d}", "channel_id": f"3402000000131{ch:07d}",
                          "device_id": "34020000001320000001", "start_at": start, "end_at": t + timedelta(seconds=60),
                          "bytes": 30_000_000, "path": f"3402000000131{ch:07d}/{t:%Y%m%d/%H%M%S}-{n:08x}.mp4",
                          "codec": "h264", "width": 1920, "height": 1080, "state": "closed", "node_id": "bench",
                          "created_at": t})
        t += timedelta(seconds=60)
        n += 1
        if len(batch) >= 20_000 or t >= END:
            with engine.begin() as conn:
                conn.execute(recordings.insert(), batch)
            total += len(batch)
            batch = []
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE recordings")
    return total


def narrow_index(engine: sa.Engine) -> None:
    """The (channel_id, start_at) index of migrations 0005-0015, in place of 0016's."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_recordings_channel_id_start_at")
        conn.exec_driver_sql("CREATE INDEX ix_recordings_channel_id_start_at ON recordings (channel_id, start_at)")
        conn.exec_driver_sql("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE recordings")


def filled(engine: sa.Engine, label: str, args: argparse.Namespace) -> None:
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(recordings.delete())
    t0 = time.perf_counter()
    rows = fill(engine, args.channels, args.days)
    print(f"\n{label}: {rows:,} segments of {args.channels} channels indexed in {time.perf_counter() - t0:.0f} s")


def ranges(args: argparse.Namespace) -> list[tuple[str, datetime, datetime]]:
    return [(name, END - span - timedelta(minutes=30), END - timedelta(minutes=30))
            for name, span in (("1 day", timedelta(days=1)), ("30 days", timedelta(days=30)),
                               (f"{args.days} days", timedelta(days=args.days)))]


def run(engine: sa.Engine, label: str, args: argparse.Namespace) -> None:
    filled(engine, label, args)
    if args.narrow_index:
        narrow_index(engine)
        label += ", index (channel_id, start_at) only"
    print(f"{label}\n{'range':>8} {'segments':>9} {'spans':>6} {'old (Python merge) ms':>22} {'new (SQL merge) ms':>19} "
          f"{'old/new':>8}")
    for name, start, end in ranges(args):
        old_answer = python_merge(engine, TARGET, start, end)
        new_answer = spans_between(engine, TARGET, start, end)
        if old_answer != new_answer:
            raise SystemExit(f"{label}, {name}: the SQL merge differs from the Python merge")
        old, new = [], []
        for r in range(args.rounds):
            pair = ((old, python_merge), (new, spans_between))
            for times, fn in (pair if r % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter()
                fn(engine, TARGET, start, end)
                times.append(time.perf_counter() - t0)
        o, n = statistics.median(old) * 1000, statistics.median(new) * 1000
        print(f"{name:>8} {new_answer['segments']:>9,} {len(new_answer['spans']):>6} {o:>22.1f} {n:>19.1f} {o / n:>7.1f}x")



def run_both(wide: sa.Engine, narrow: sa.Engine, copy_rows: list[str], label: str, args: argparse.Namespace) -> None:
    """Both indexes side by side: the empty `narrow` gets the rows of `wide` (`copy_rows`, SQL
    run on `narrow`), then the narrow index; each round times the four (index, merge) pairs, the
    order turned by one each round."""
    filled(wide, label, args)
    migrate(narrow)
    t0 = time.perf_counter()
    with narrow.begin() as conn:
        for sql in copy_rows:
            conn.exec_driver_sql(sql)
    narrow_index(narrow)
    print(f"copied, with the narrow index, in {time.perf_counter() - t0:.0f} s")
    pairs = [(index, merge, engine, fn) for index, engine in (("0016", wide), ("narrow", narrow))
             for merge, fn in (("Python", python_merge), ("SQL", spans_between))]
    print(f"{'range':>8} {'segments':>9} " + " ".join(f"{m + ' merge, ' + i:>20}" for i, m, *_ in pairs) + "   (ms)")
    for name, start, end in ranges(args):
        answers = [fn(engine, TARGET, start, end) for *_, engine, fn in pairs]
        if any(a != answers[0] for a in answers):
            raise SystemExit(f"{label}, {name}: the answers differ between indexes or merges")
        times: list[list[float]] = [[] for _ in pairs]
        for r in range(args.rounds):
            for k in range(len(pairs)):
                i = (k + r) % len(pairs)
                *_, engine, fn = pairs[i]
                t0 = time.perf_counter()
                fn(engine, TARGET, start, end)
                times[i].append(time.perf_counter() - t0)
        medians = " ".join(f"{statistics.median(t) * 1000:>20.1f}" for t in times)
        print(f"{name:>8} {answers[0]['segments']:>9,} {medians}")
    name, start, end = ranges(args)[0]
    for index, engine in (("0016", wide), ("narrow", narrow)):
        print(f"plan of the SQL merge, {name}, {index} index:\n  " + "\n  ".join(plan(engine, start, end)))


def plan(engine: sa.Engine, start: datetime, end: datetime) -> list[str]:
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        rows = conn.execute(span_query(engine.dialect.name, "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "),
                            span_params(TARGET, start, end)).all()
    return [str(r[-1] if sqlite else r[0]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--narrow-index", action="store_true",
                       help="the (channel_id, start_at) index without end_at and bytes, as before migration 0016")
    which.add_argument("--both-indexes", action="store_true",
                       help="0016's index and the narrow one side by side, on two copies of the same rows")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}; {args.days} days of 60 s segments; medians of {args.rounds} "
          "alternating rounds")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'timeline.db'}")
            narrow = make_engine(f"sqlite:///{Path(tmp) / 'narrow.db'}") if args.both_indexes else None
            try:
                if narrow is None:
                    run(engine, "SQLite", args)
                else:
                    copy = [f"ATTACH DATABASE '{Path(tmp) / 'timeline.db'}' AS filled",
                            "INSERT INTO recordings SELECT * FROM filled.recordings"]
                    run_both(engine, narrow, copy, "SQLite", args)
            finally:
                engine.dispose()
                if narrow is not None:
                    narrow.dispose()
    if args.only in (None, "postgresql"):
        schema = f"bench_timeline_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg_url, connect_args={"connect_timeout": 3})
        try:
            with admin.begin() as conn:
                version = conn.exec_driver_sql("SHOW server_version").scalar_one()
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        except sa.exc.OperationalError as exc:
            print(f"\nPostgreSQL not reachable at {args.pg_url}: {exc.orig}; skipped")
            return
        def in_schema(name: str) -> sa.Engine:
            return make_engine(f"{args.pg_url}{'&' if '?' in args.pg_url else '?'}options=-csearch_path%3D{name}")
        engine = in_schema(schema)
        narrow = None
        try:
            if args.both_indexes:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'CREATE SCHEMA "{schema}_narrow"')
                narrow = in_schema(f"{schema}_narrow")
                run_both(engine, narrow, [f'INSERT INTO recordings SELECT * FROM "{schema}".recordings'],
                         f"PostgreSQL {version}", args)
            else:
                run(engine, f"PostgreSQL {version}", args)
        finally:
            engine.dispose()
            if narrow is not None:
                narrow.dispose()
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}_narrow" CASCADE')
            admin.dispose()


if __name__ == "__main__":
    main()
