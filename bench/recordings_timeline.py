"""Timeline queries over months of footage: the segment index answered from its range index.

    .venv/bin/python bench/recordings_timeline.py [--days 90] [--channels 50] [--database-url URL]

Fills a fresh index (SQLite in a temp dir by default; PostgreSQL with --database-url) with
`--days` of 60 s segments for `--channels` channels (90 days × 50 channels = 6.5 M rows would
take long to insert; the default is 90 days for the channel asked about plus 10 days for each
of the others), then times the timeline of the first channel over 1 hour, 1 day, 30 days and
90 days: `spans_between` (the bounded range scan on (channel_id, start_at), reading only start,
end and size per segment) plus the merge into spans and gaps. Baseline side by side: the same rows fetched with the unbounded overlap
condition (start_at < to AND end_at > from), which scans the channel's history up to `to`.
Medians of 5 runs each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import and_, select  # noqa: E402

from camgrid.media.recordings_query import spans_between  # noqa: E402
from camgrid.store.engine import make_engine, migrate  # noqa: E402
from camgrid.store.tables import recordings  # noqa: E402

END = datetime(2026, 11, 30, tzinfo=timezone.utc)


def fill(engine, channels: int, days: int) -> int:
    total = 0
    for ch in range(channels):
        span = days if ch == 0 else min(days, 10)
        rows = []
        t = END - timedelta(days=span)
        n = 0
        while t < END:
            if not (n % 97 == 13):  # a gap now and then (a missing minute)
                rows.append({"id": f"{ch:04d}{n:028d}", "channel_id": f"3402000000131{ch:07d}", "device_id": "34020000001320000001",
                             "start_at": t, "end_at": t + timedelta(seconds=60), "bytes": 30_000_000, "path": f"c{ch}/{n}.mp4",
                             "codec": "h264", "width": 1920, "height": 1080, "state": "closed", "node_id": "bench",
                             "created_at": t})
            t += timedelta(seconds=60)
            n += 1
            if len(rows) >= 20_000:
                with engine.begin() as conn:
                    conn.execute(recordings.insert(), rows)
                total += len(rows)
                rows = []
        if rows:
            with engine.begin() as conn:
                conn.execute(recordings.insert(), rows)
            total += len(rows)
    return total


def unbounded(engine, channel_id, start, end):
    c = recordings.c
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(recordings).where(and_(
            c.channel_id == channel_id, c.start_at < end, c.end_at > start, c.bytes > 0)).order_by(c.start_at)).mappings()]


def timed(fn, *args, runs=5):
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn(*args)
        values.append(time.perf_counter() - t0)
    return statistics.median(values), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--channels", type=int, default=50)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{Path(tmp) / 'timeline.db'}")
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(recordings.delete())
        t0 = time.perf_counter()
        rows = fill(engine, args.channels, args.days)
        print(f"{rows:,} segments indexed in {time.perf_counter() - t0:.0f} s ({engine.dialect.name})")
        channel = "34020000001310000000"
        print(f"{'range':>8} {'segments':>9} {'spans':>6} {'timeline ms':>12} {'unbounded fetch ms':>19}")
        for label, span in (("1 h", timedelta(hours=1)), ("1 day", timedelta(days=1)), ("30 days", timedelta(days=30)),
                            (f"{args.days} days", timedelta(days=args.days))):
            start, end = END - span - timedelta(hours=1), END - timedelta(hours=1)

            def full(start=start, end=end):
                return spans_between(engine, channel, start, end)
            took, result = timed(full)
            base, _ = timed(unbounded, engine, channel, start, end)
            print(f"{label:>8} {result['segments']:>9,} {len(result['spans']):>6} {took * 1000:>12.1f} {base * 1000:>19.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
