"""The position marks of a device playback on a live feed (camgrid.media.playback_position): the
start mark sits at the timeline's 0, moved on by the frames before the first playable key frame;
a seek's mark at the first key frame after it was noted, published once the device accepted it,
forgotten when refused. Real H.264 frames through a real LiveFeed; the platform-level test with
the simulator is tests/signaling/test_device_playback_position.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from camgrid.media.live import LiveFeed
from camgrid.media.playback_position import PlaybackPosition
from camgrid.media.ps import AccessUnit
from camgrid.sim.video import synthetic_footage

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
VIDEO_ID = 0xE0


@pytest.fixture(scope="module")
def frames():
    return synthetic_footage("h264", 160, 120, 25, 3, gop_s=1.0).frames  # key frames at 0, 25, 50


def unit(frame) -> AccessUnit:
    return AccessUnit(VIDEO_ID, "h264", frame.pts, frame.pts, frame.data, frame.keyframe)


async def settle() -> None:
    for _ in range(5):  # the watcher takes what was pushed
        await asyncio.sleep(0)


def marks(position: PlaybackPosition) -> list[tuple[float, datetime, str]]:
    return [(m.media_s, m.wall, m.cause) for m in position.marks]


async def test_a_seek_is_marked_at_its_key_frame_once_accepted_and_forgotten_when_refused(frames):
    assert [i for i, f in enumerate(frames) if f.keyframe] == [0, 25, 50]
    stream = SimpleNamespace(live=LiveFeed(), last_viewer_left_at=None)
    position = PlaybackPosition(stream)
    position.start_at(T0)
    await settle()
    for frame in frames[:10]:
        stream.live.push(unit(frame))
    await settle()
    assert marks(position) == [(0.0, T0, "start")]

    refused = position.seek_to(T0 + timedelta(seconds=30))
    assert position.answered(refused, False)
    accepted = position.seek_to(T0 + timedelta(seconds=60))
    for frame in frames[10:30]:  # the key frame at 25 is the device's footage from the seek on
        stream.live.push(unit(frame))
    await settle()
    assert marks(position) == [(0.0, T0, "start")]  # placed, not published: the device has not answered yet
    assert position.answered(accepted, True)
    assert marks(position) == [(0.0, T0, "start"), (1.0, T0 + timedelta(seconds=60), "seek")]
    assert not position.answered(accepted, True) and not position.answered(99, True)

    # Accepted before its key frame came: published when it comes; the watcher then leaves.
    later = position.seek_to(T0 + timedelta(seconds=90))
    assert position.answered(later, True)
    for frame in frames[30:51]:
        stream.live.push(unit(frame))
    await settle()
    assert marks(position)[-1] == (2.0, T0 + timedelta(seconds=90), "seek")
    assert stream.live.viewers == 0 and stream.last_viewer_left_at is not None
    await position.close()


async def test_the_start_mark_counts_the_frames_before_the_first_playable_key_frame(frames):
    stream = SimpleNamespace(live=LiveFeed(), last_viewer_left_at=None)
    position = PlaybackPosition(stream)
    position.start_at(T0)
    for frame in frames[20:25] + frames[25:30]:  # five frames of a GOP whose key frame never came
        stream.live.push(unit(frame))
    await settle()
    assert stream.live.unplayable == 5
    assert marks(position) == [(0.0, T0 + timedelta(seconds=5 * 3600 / 90_000), "start")]
    await position.close()
