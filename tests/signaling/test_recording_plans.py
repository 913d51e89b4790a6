"""Recording plans carried out: a continuous plan records a simulated camera through the media
node; the timeline shows it; switching the plan off stops it; a stream that ends is asked for
again. Schedules are pure and tested without a network."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import av
import pytest
from sqlalchemy import select

from camgrid.app import Platform
from camgrid.media.recordings_query import segments_between, timeline
from camgrid.signaling.recording_plans import PlanError, in_schedule, validate_schedule
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import recordings
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


@pytest.fixture
def db_url(tmp_path):
    """The recording index is tested on both databases in tests/media; SQLite here."""
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 320, 240, 25, 3, gop_s=1.0)


async def start_with_camera(tmp_path, db_url, specs, footage, **media):
    """A platform (inline media node) with the given media settings and one registered camera streaming `footage`."""
    provision(db_url, specs[:1])
    platform = Platform(make_settings(tmp_path, db_url, media=media), announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(footage)
    await sim.start()
    if not await sim.wait_registered(10):
        await platform.stop()
        await sim.stop()
        raise AssertionError("the simulated camera did not register")
    await wait_for(lambda: platform.health.is_online(specs[0].id))
    return platform, sim


def test_schedules():
    windows = validate_schedule([{"days": [0, 1, 2, 3, 4], "from": "08:00", "to": "18:00"}])
    monday_9 = datetime(2026, 11, 30, 9, 0)
    assert in_schedule(windows, monday_9)
    assert not in_schedule(windows, monday_9.replace(hour=18))
    assert not in_schedule(windows, monday_9 + timedelta(days=5))  # Saturday
    for bad in ([{"from": "18:00", "to": "08:00"}], [{"from": "8", "to": "9:00"}], [{"days": [7], "from": "01:00", "to": "02:00"}]):
        with pytest.raises(PlanError):
            validate_schedule(bad)


async def test_a_continuous_plan_records_and_off_stops(tmp_path, db_url, specs, footage):
    platform, sim = await start_with_camera(tmp_path, db_url, specs, footage, segment_s=2.0, part_s=0.5, linger_s=1.0,
                                            recording_retry_s=1.0)
    try:
        device, channel = specs[0].id, specs[0].channels[0].id
        plans = platform.recording_plans
        plans.set_plan(channel, device, "continuous", [], "tester")
        await wait_for(lambda: plans.describe(channel)["recording"], timeout=10)
        session = plans.recording[channel]

        def closed_segments():
            with platform.engine.connect() as conn:
                return conn.execute(select(recordings).where(recordings.c.state == "closed")).all()
        await wait_for(lambda: len(closed_segments()) >= 2, timeout=15)
        assert session.state != "ended"  # nobody watches, yet the linger time does not end it

        # A BYE from the camera ends the stream; the plan asks for it again.
        await sim.media.hang_up_all()
        await wait_for(lambda: plans.describe(channel)["recording"] and plans.recording[channel] is not session, timeout=15)

        now = datetime.now(timezone.utc)
        t = timeline(segments_between(platform.engine, channel, now - timedelta(minutes=5), now), now - timedelta(minutes=5), now)
        assert t["spans"] and t["covered_s"] >= 4
        first = segments_between(platform.engine, channel, now - timedelta(minutes=5), now)[0]
        with av.open(str(platform.settings.recordings_dir / first["path"])) as container:
            assert {(f.width, f.height) for f in container.decode(video=0)} == {(320, 240)}

        plans.set_plan(channel, device, "off", [], "tester")
        await wait_for(lambda: not plans.describe(channel)["recording"], timeout=10)
        await wait_for(lambda: not platform.media.sessions, timeout=10)  # then the stream lingers out
    finally:
        await platform.stop()
        await sim.stop()


async def test_an_event_plan_records_around_a_device_alarm(tmp_path, db_url, specs, footage):
    platform, sim = await start_with_camera(tmp_path, db_url, specs, footage, segment_s=10.0, part_s=0.5,
                                            event_pre_s=1.0, event_post_s=1.0)
    try:
        device, channel = specs[0].id, specs[0].channels[0].id
        plans = platform.recording_plans
        plans.set_plan(channel, device, "event", [], "tester")
        await wait_for(lambda: plans.describe(channel)["recording"], timeout=10)
        await asyncio.sleep(2.5)

        def segments():
            with platform.engine.connect() as conn:
                return conn.execute(select(recordings)).all()
        assert segments() == []  # nothing is written without an event
        await sim.devices[device].send_alarm(description="door forced")
        await wait_for(lambda: any(r.state == "closed" for r in segments()), timeout=15)
        [seg] = segments()
        assert 2.0 <= (seg.end_at - seg.start_at).total_seconds() <= 4.5  # ~1 s before, ~1 s after, cut at key frames
    finally:
        await platform.stop()
        await sim.stop()


async def test_a_download_copies_the_device_recording_at_its_own_times(tmp_path, db_url, specs, footage):
    platform, sim = await start_with_camera(tmp_path, db_url, specs, footage, segment_s=60.0, part_s=0.5)
    try:
        device, channel = specs[0].id, specs[0].channels[0].id
        start = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
        session = await platform.media.download(device, channel, start, start + timedelta(seconds=2), speed=4)
        await wait_for(lambda: session.state == "ended", timeout=15)
        assert session.end_reason == "the device reached the end of the recording (MediaStatus 121)"
        with platform.engine.connect() as conn:
            await wait_for(lambda: conn.execute(select(recordings)).all(), timeout=5)
        t = timeline(segments_between(platform.engine, channel, start - timedelta(minutes=1), start + timedelta(minutes=1)),
                     start - timedelta(minutes=1), start + timedelta(minutes=1))
        [span] = t["spans"]
        assert abs((datetime.fromisoformat(span["from"]) - start).total_seconds()) < 0.1  # at the footage's own time
        assert 1.5 <= t["covered_s"] <= 2.6
    finally:
        await platform.stop()
        await sim.stop()
