"""Rebuilding from the database (SQLite and PostgreSQL): days closed from the recorded events,
exact seconds per channel, the first-time rewind, carrying a closed day's end state, and
idempotent rewrites."""

from __future__ import annotations

from datetime import date

import pytest
from rates_helpers import C1, C2, C3, D1, TZ, add_events, history, local, seed_registry
from sqlalchemy import func, select

from camgrid.ops.rates import query, store
from camgrid.ops.rates.days import day_bounds, rebuild
from camgrid.store.tables import rates_channel_daily, rates_group_daily

H = 3600.0
NOW = local(3, 12).timestamp()


def daily(engine) -> dict[tuple[date, str], dict]:
    with engine.connect() as conn:
        return {(r["day"], r["channel_id"]): dict(r) for r in conn.execute(select(rates_channel_daily)).mappings()}


def secs(row: dict) -> tuple[float, float, float]:
    return row["observed_s"], row["online_s"], row["intact_s"]


def test_the_days_since_the_first_event_are_closed_with_exact_seconds(engine):
    seed_registry(engine)
    add_events(engine, history())
    today = rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)
    rows = daily(engine)
    d1, d2 = date(2026, 12, 1), date(2026, 12, 2)
    assert sorted({day for day, _ in rows}) == [d1, d2]
    # D1 was offline before its online event (the rewind), so the 1st counts from 10:00.
    assert secs(rows[(d1, C1)]) == (24 * H, 14 * H, 14 * H)
    assert secs(rows[(d1, C2)]) == (24 * H, 14 * H, 14 * H)
    assert secs(rows[(d1, C3)]) == (24 * H, 24 * H, 24 * H)  # D2 was up until its offline event
    assert secs(rows[(d2, C1)]) == (24 * H, 24 * H, 18 * H)  # blurred 12:00-18:00
    assert secs(rows[(d2, C3)]) == (24 * H, 6 * H, 6 * H)
    assert rows[(d1, C1)]["height"] == 1080 and rows[(d2, C1)]["height"] == 1080
    assert rows[(d2, C3)]["end_device_up"] is False and rows[(d2, C1)]["end_faults"] == ""
    # today so far: noon, D1 down 08:00-09:00
    t = today.totals(NOW)
    slot = today.slot_of[C1]
    assert (t.observed[slot], t.online[slot]) == (12 * H, 11 * H)
    assert t.online[today.slot_of[C3]] == 0


def test_a_second_rebuild_starts_from_the_last_closed_day_and_agrees(engine):
    seed_registry(engine)
    add_events(engine, history())
    first = rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)
    before = daily(engine)
    again = rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)
    assert daily(engine) == before
    for cid in (C1, C2, C3):
        a, b = first.totals(NOW), again.totals(NOW)
        assert a.online[first.slot_of[cid]] == b.online[again.slot_of[cid]]
        assert a.intact[first.slot_of[cid]] == b.intact[again.slot_of[cid]]


def test_rewriting_a_day_replaces_it(engine):
    seed_registry(engine)
    add_events(engine, history())
    rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)
    ledger = rebuild(engine, TZ, local(4, 1).timestamp(), backfill_days=7, hd_min_height=720)
    assert ledger.start == day_bounds(date(2026, 12, 4), TZ)[0]
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(rates_channel_daily)
                         .where(rates_channel_daily.c.day == date(2026, 12, 3))).scalar_one()
    assert n == 3
    assert secs(daily(engine)[(date(2026, 12, 3), C1)]) == (24 * H, 23 * H, 23 * H)
    store.write_day(engine, date(2026, 12, 3), ledger, 720)  # written again (here the 4th's ledger): replaced
    rows = daily(engine)
    assert len(rows) == 9
    assert secs(rows[(date(2026, 12, 3), C1)]) == (24 * H, 24 * H, 24 * H)  # the 4th's whole day


def test_backfill_is_bounded(engine):
    seed_registry(engine)
    add_events(engine, history())
    rebuild(engine, TZ, local(20, 12).timestamp(), backfill_days=3, hd_min_height=720)
    with engine.connect() as conn:
        days = sorted(conn.execute(select(rates_group_daily.c.day).distinct()).scalars())
    assert days == [date(2026, 12, d) for d in (17, 18, 19)]


def test_channels_that_left_count_until_their_device_said_so(engine):
    seed_registry(engine)
    add_events(engine, history())
    rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)  # the 1st and 2nd closed
    with engine.begin() as conn:  # C2 is gone from the registry; D1's catalog said so on the 3rd at 10:00
        conn.execute(rates_channel_daily.delete().where(rates_channel_daily.c.day == date(2026, 12, 3)))
        from camgrid.store.tables import channels
        conn.execute(channels.delete().where(channels.c.id == C2))
    add_events(engine, [(local(3, 10), "catalog.updated", D1, {"added": 0, "removed": 1, "updated": 0})])
    ledger = rebuild(engine, TZ, local(4, 0, 30).timestamp(), backfill_days=7, hd_min_height=720)
    rows = daily(engine)
    assert secs(rows[(date(2026, 12, 3), C2)]) == (10 * H, 9 * H, 9 * H)  # until 10:00, D1 down 08-09
    assert rows[(date(2026, 12, 3), C2)]["present"] is False
    assert C2 not in ledger.slot_of


def test_the_query_combines_days_groups_and_targets(engine):
    seed_registry(engine)
    add_events(engine, history())
    ledger = rebuild(engine, TZ, NOW, backfill_days=7, hd_min_height=720)
    from camgrid.ops.rates.figures import group_sums
    live = query.Live(today=date(2026, 12, 3),
                      today_rows=group_sums(ledger.infos, ledger.totals(NOW), ledger.height, 720))
    out = query.by_group(engine, "point_class", date(2026, 12, 1), date(2026, 12, 3), live)
    by = {r["key"]: r for r in out["rows"]}
    # class one: C1 and C3 over 2.5 days
    online = (14 + 24) + (24 + 6) + (11 + 0)
    assert by["1"]["online_rate"] == pytest.approx(online / (2 * 60), abs=1e-6)
    assert by["1"]["targets"]["online_rate"] == 0.98 and by["1"]["meets"]["online_rate"] is False
    assert by["2"]["online_rate"] == pytest.approx((14 + 24 + 11) / 60, abs=1e-6)
    assert out["days"] == 3 and out["total"]["channel_days"] == 9
    assert out["total"]["hd_channel_days"] == 3 and out["total"]["measured_channel_days"] == 3
    trend = query.trend(engine, date(2026, 12, 1), date(2026, 12, 3), live, by="point_class", point_class=2)
    assert [d["online_rate"] for d in trend["days"]] == pytest.approx([14 / 24, 1.0, 11 / 12], abs=1e-6)
    worst = query.channels(engine, date(2026, 12, 1), date(2026, 12, 2), query.Live(today=date(2026, 12, 3)),
                           below_target=True)
    assert [i["channel_id"] for i in worst["items"]] == [C3, C1, C2]  # 30/48, then 38/48 twice (by ID)
    assert worst["items"][0]["online_rate"] == pytest.approx(30 / 48, abs=1e-6)
    assert worst["items"][1]["resolution"] == [1920, 1080] and worst["items"][1]["hd"] is True
