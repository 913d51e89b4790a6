"""Rates at network scale: what the ledger costs per channel and per fact, how long a day takes
to close and store, and what reading group figures over many days costs against the naive way
(summing the per-channel rows), measured side by side on the same database.

    .venv/bin/python bench/rates_scale.py [--channels 500000] [--per-device 8] [--facts 200000]
                                          [--days 30] [--query-channels 20000] [--database-url URL]

Prints one JSON object; docs/benchmarks.md has the figures and this command.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from camgrid.ops.rates import facts, query, store
from camgrid.ops.rates.figures import GroupIndex, group_sums
from camgrid.ops.rates.ledger import ChannelState, DayLedger
from camgrid.store.engine import open_store
from camgrid.store.tables import rates_channel_daily

DAY = 86400.0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(channels: int, per_device: int, orgs: int = 200) -> DayLedger:
    ledger = DayLedger(0, DAY)
    vendors = ["hik", "dahua", "uniview", "tiandy", "kedacom"]
    for i in range(channels):
        row = {"id": f"3402000000131{i:07d}", "device_id": f"3402000000132{i // per_device:07d}",
               "point_class": 1 + (i % 3 == 0), "organisation_id": f"34020000002160{i % orgs:06d}",
               "manufacturer": vendors[i % len(vendors)], "type_code": "132"}
        info = facts.info_from_row(row)  # as the registry's rows become ledger entries
        ledger.add_channel(info, ChannelState(device_up=True, height=1080 if i % 10 else 576, width=1920))
    return ledger


def bench_ledger(args: argparse.Namespace) -> tuple[DayLedger, dict]:
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    ledger = build(args.channels, args.per_device)
    build_s = time.perf_counter() - t0
    grown_mb = rss_mb() - before
    devices = args.channels // args.per_device
    rng = random.Random(7)
    facts_list = []
    for k in range(args.facts):
        at = DAY * k / args.facts
        if k % 4 == 3:
            facts_list.append(("vqd.fault" if k % 8 == 3 else "vqd.cleared",
                               f"3402000000131{rng.randrange(args.channels):07d}", {"type": "blur"}, at))
        else:
            facts_list.append(("device.offline" if k % 2 else "device.online",
                               f"3402000000132{rng.randrange(devices):07d}", {}, at))
    t0 = time.perf_counter()
    for kind, subject, data, at in facts_list:
        facts.apply(ledger, kind, subject, data, at)
    apply_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ledger.frozen()
    frozen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    totals = ledger.totals(DAY / 2)
    totals_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = GroupIndex.build(list(ledger.infos))
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = group_sums(index, totals, ledger.height.copy(), 720)
    sums_s = time.perf_counter() - t0
    registry = [facts.RegistryChannel(info, True, None, 0.0) for info in ledger.infos]
    t0 = time.perf_counter()
    facts.reconcile(ledger, registry, DAY / 2)
    reconcile_s = time.perf_counter() - t0
    return ledger, {
        "channels": args.channels, "devices": devices, "ledger_build_s": round(build_s, 2),
        "ledger_rss_growth_mb": round(grown_mb, 1),
        "ledger_bytes_per_channel": round(grown_mb * 1024 * 1024 / args.channels),
        "facts": args.facts, "apply_us_per_fact": round(apply_s / args.facts * 1e6, 2),
        "channels_per_device": args.per_device,
        "frozen_copy_ms": round(frozen_s * 1e3, 1), "totals_ms": round(totals_s * 1e3, 1), "group_index_build_ms": round(index_s * 1e3, 1), "group_sums_ms": round(sums_s * 1e3, 1), "group_rows": len(rows),
        "full_reconcile_ms": round(reconcile_s * 1e3, 1),
    }


def bench_store(args: argparse.Namespace, ledger: DayLedger, url: str) -> dict:
    engine = open_store(url)
    t0 = time.perf_counter()
    store.write_day(engine, date(2026, 1, 1), ledger, 720)
    close_s = time.perf_counter() - t0
    # Many days of a smaller network: group figures from rates_group_daily vs the naive sum of the
    # per-channel rows (what a design without the group table would read), side by side.
    small = build(args.query_channels, args.per_device)
    first = date(2026, 2, 1)
    for d in range(args.days):
        store.write_day(engine, first + timedelta(days=d), small, 720)
    last = first + timedelta(days=args.days - 1)
    live = query.Live()
    timings: dict[str, list[float]] = {"groups": [], "naive": []}
    for _ in range(5):
        t0 = time.perf_counter()
        out = query.by_group(engine, "organisation", first, last, live)
        timings["groups"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        t = rates_channel_daily
        with engine.connect() as conn:
            naive = conn.execute(select(t.c.organisation_id, func.sum(t.c.online_s), func.sum(t.c.observed_s))
                                 .where(t.c.day >= first, t.c.day <= last).group_by(t.c.organisation_id)).all()
        timings["naive"].append(time.perf_counter() - t0)
    assert len(naive) == len(out["rows"])
    engine.dispose()
    groups_ms, naive_ms = (float(np.median(v)) * 1e3 for v in timings.values())
    return {"database": url.split(":")[0], "close_day_s": round(close_s, 2), "query_days": args.days,
            "query_channels": args.query_channels, "by_organisation_ms": round(groups_ms, 1),
            "naive_per_channel_sum_ms": round(naive_ms, 1), "ratio_naive_over_groups": round(naive_ms / groups_ms, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=500_000)
    parser.add_argument("--per-device", type=int, default=8)
    parser.add_argument("--facts", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--query-channels", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    ledger, result = bench_ledger(args)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'rates.db'}"
        result.update(bench_store(args, ledger, url))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
