"""The retention policy alone (camgrid.media.retention): ages, legal holds, low space, alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from camgrid.media.retention import (CRITICAL, HELD, LOW_SPACE, MAX_AGE, OPEN, TOO_YOUNG, WARNING, AlarmGate, Disk, Hold,
                                     Holds, Profile, Segment, SpaceNeed, Thresholds, decide, low_space_alarm, space_needed)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEFAULT = Profile("default", 90, 7, 1)
CH_A, CH_B = "34020000001310000001", "34020000001310000002"


def seg(n: int, days_old: float, *, channel: str = CH_A, size: int = 100, state: str = "closed", length_s: int = 60) -> Segment:
    end = NOW - timedelta(days=days_old)
    return Segment(f"s{n}", channel, end - timedelta(seconds=length_s), end, size, state)


def plan_of(segments, *, need=0, holds=(), profile_of=lambda _: DEFAULT):
    segments = sorted(segments, key=lambda s: (s.end_at, s.id))
    return decide(segments, profile_of=profile_of, holds=Holds(holds, NOW), now=NOW, need_bytes=need)


def deleted(plan):
    return {(d.segment.id, d.reason) for d in plan.deletions}


def test_footage_older_than_the_maximum_age_is_deleted_and_younger_is_kept():
    plan = plan_of([seg(1, 120), seg(2, 90.01), seg(3, 89.9), seg(4, 10)])
    assert deleted(plan) == {("s1", MAX_AGE), ("s2", MAX_AGE)}
    assert plan.need_left == 0 and not plan.blocked


def test_each_channel_follows_its_own_profile_and_no_maximum_means_no_age_deletion():
    short, forever = Profile("short", 30, 1, 2), Profile("forever", None, 0, 3)
    profiles = {CH_A: short, CH_B: forever}
    plan = plan_of([seg(1, 40), seg(2, 400, channel=CH_B), seg(3, 20)], profile_of=profiles.__getitem__)
    assert deleted(plan) == {("s1", MAX_AGE)}


def test_a_legal_hold_overrides_the_maximum_age_until_released_or_expired():
    old = seg(1, 200)
    hold = Hold(7, CH_A, old.start_at + timedelta(seconds=30), old.end_at + timedelta(days=1))
    plan = plan_of([old, seg(2, 150)], holds=[hold])
    assert deleted(plan) == {("s2", MAX_AGE)}
    assert plan.blocked[HELD] == [old]
    released = Hold(7, CH_A, hold.start_at, hold.end_at, released_at=NOW - timedelta(hours=1))
    expired = Hold(8, CH_A, hold.start_at, hold.end_at, until=NOW - timedelta(seconds=1))
    other_channel = Hold(9, CH_B, hold.start_at, hold.end_at)
    before = Hold(10, CH_A, old.start_at - timedelta(days=1), old.start_at)  # ends where the segment starts
    assert ("s1", MAX_AGE) in deleted(plan_of([old], holds=[released, expired, other_channel, before]))
    still = Hold(11, CH_A, hold.start_at, hold.end_at, until=NOW + timedelta(days=1))
    assert deleted(plan_of([old], holds=[still])) == set()


def test_low_space_deletes_the_oldest_first_and_no_more_than_needed():
    segs = [seg(i, 60 - i, size=100) for i in range(10)]  # s0 is the oldest
    plan = plan_of(segs, need=250)
    assert deleted(plan) == {("s0", LOW_SPACE), ("s1", LOW_SPACE), ("s2", LOW_SPACE)}
    assert plan.need_left == 0
    assert deleted(plan_of(segs, need=0)) == set()


def test_expired_footage_counts_toward_the_space_needed():
    plan = plan_of([seg(1, 100, size=300), seg(2, 50, size=100), seg(3, 40, size=100)], need=350)
    assert deleted(plan) == {("s1", MAX_AGE), ("s2", LOW_SPACE)}


def test_footage_younger_than_the_minimum_age_is_kept_even_when_space_runs_out():
    segs = [seg(1, 8), seg(2, 6.9), seg(3, 0.01)]
    plan = plan_of(segs, need=10_000)
    assert deleted(plan) == {("s1", LOW_SPACE)}
    assert plan.need_left == 10_000 - 100
    assert sorted(s.id for s in plan.blocked[TOO_YOUNG]) == ["s2", "s3"]


def test_open_segments_are_never_deleted():
    plan = plan_of([seg(1, 300, state="open"), seg(2, 30, state="open")], need=1000)
    assert deleted(plan) == set() and plan.need_left == 1000
    assert len(plan.blocked[OPEN]) == 2


def test_nothing_eligible_leaves_the_need_and_says_why():
    hold = Hold(1, CH_A, NOW - timedelta(days=100), NOW)
    segs = [seg(1, 50), seg(2, 2, channel=CH_B), seg(3, 9, channel=CH_B, state="open")]
    plan = plan_of(segs, need=500, holds=[hold])
    assert plan.deletions == [] and plan.need_left == 500
    assert {why: [s.id for s in v] for why, v in plan.blocked.items()} == {HELD: ["s1"], TOO_YOUNG: ["s2"], OPEN: ["s3"]}
    severity, data = low_space_alarm(SpaceNeed(500, "disk", {"free_bytes": 10}), 0, 0, plan.need_left,
                                     {why: (len(v), sum(s.bytes for s in v)) for why, v in plan.blocked.items()})
    assert severity == CRITICAL and data["short_bytes"] == 500 and data["held_segments"] == 1
    assert "release holds" in data["message"] and data["free_bytes"] == 10


def test_space_needed_on_the_disk_and_within_the_quota():
    t = Thresholds(min_free_percent=5, min_free_bytes=0, target_free_percent=10, target_free_bytes=0)
    assert space_needed(Disk(1000, 60), t).bytes == 0
    need = space_needed(Disk(1000, 40), t)
    assert need.bytes == 60 and need.limit == "disk" and need.figures["target_free_bytes"] == 100
    # Absolute thresholds: the larger of the two counts.
    assert space_needed(Disk(1000, 40), Thresholds(5, 45, 10, 300)).bytes == 260
    # ... but never more than half of a small disk.
    assert space_needed(Disk(1000, 600), Thresholds(5, 1 << 30, 10, 2 << 30)).bytes == 0
    quota = Thresholds(5, 0, 10, 0, quota_bytes=2000)
    assert space_needed(Disk(10_000, 9000, recordings_bytes=1800), quota).bytes == 0
    q = space_needed(Disk(10_000, 9000, recordings_bytes=1950), quota)
    assert q.bytes == 150 and q.limit == "quota"  # down to 90 % of the quota
    assert space_needed(Disk(10_000, 9000, recordings_bytes=2500), quota).bytes == 700


def test_the_alarm_is_rate_limited_but_a_worse_one_passes_at_once():
    gate = AlarmGate(900)
    assert gate.allow(WARNING, 0)
    assert not gate.allow(WARNING, 100)
    assert gate.allow(CRITICAL, 200)
    assert not gate.allow(CRITICAL, 300) and not gate.allow(WARNING, 400)
    assert gate.allow(WARNING, 1200)
    severity, data = low_space_alarm(SpaceNeed(100, "quota"), 120, 2, 0, {})
    assert severity == WARNING and data["deleted_before_max_age"] == 2 and "maximum age" in data["message"]


# -- properties ---------------------------------------------------------------------------------

segments_st = st.lists(
    st.tuples(st.floats(0, 200), st.integers(0, 5000), st.sampled_from(["closed", "recovered", "open"]),
              st.sampled_from([CH_A, CH_B])),
    max_size=40)
holds_st = st.lists(st.tuples(st.sampled_from([CH_A, CH_B]), st.floats(0, 200), st.floats(0, 30), st.booleans()), max_size=4)
profiles_st = st.tuples(st.one_of(st.none(), st.integers(1, 150)), st.integers(0, 30))


@settings(max_examples=300, deadline=None)
@given(segments_st, holds_st, profiles_st, st.integers(0, 100_000))
def test_never_deletes_protected_footage_nor_more_than_needed(raw, raw_holds, raw_profile, need):
    max_age, min_age = raw_profile
    if max_age is not None:
        min_age = min(min_age, max_age)
    profile = Profile("p", max_age, min_age)
    segs = [seg(i, age, channel=ch, size=size, state=state) for i, (age, size, state, ch) in enumerate(raw)]
    holds = [Hold(i, ch, NOW - timedelta(days=start), NOW - timedelta(days=start) + timedelta(days=length),
                  released_at=NOW if released else None)
             for i, (ch, start, length, released) in enumerate(raw_holds)]
    plan = plan_of(segs, need=need, holds=holds, profile_of=lambda _: profile)
    active = Holds(holds, NOW)
    gone = {d.segment.id for d in plan.deletions}
    for d in plan.deletions:
        s = d.segment
        assert s.state != "open"
        assert active.covering(s.channel_id, s.start_at, s.end_at) is None
        assert s.end_at <= NOW - timedelta(days=min_age)
        assert (d.reason == MAX_AGE) == profile.expired(s.end_at, NOW)
    # Every expired, unprotected segment goes.
    for s in segs:
        if profile.expired(s.end_at, NOW) and s.state != "open" and active.covering(s.channel_id, s.start_at, s.end_at) is None:
            assert s.id in gone
    # Low space: oldest first, and the last one deleted was still needed.
    low = [d.segment for d in plan.deletions if d.reason == LOW_SPACE]
    need_after_expiry = need - plan.freed(MAX_AGE)
    if low:
        assert sum(s.bytes for s in low[:-1]) < need_after_expiry
        newest_deleted = max(s.end_at for s in low)
        for s in segs:  # nothing deletable older than a deleted one was skipped
            if s.id not in gone and s.end_at < newest_deleted and s.state != "open" and not profile.expired(s.end_at, NOW):
                assert (active.covering(s.channel_id, s.start_at, s.end_at) is not None
                        or s.end_at > NOW - timedelta(days=min_age))
    assert plan.need_left == max(0, need - plan.freed())
