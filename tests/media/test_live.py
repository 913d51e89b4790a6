"""LiveFeed: what a viewer receives, joining late, falling behind, across timestamp wraps."""

from __future__ import annotations

import io

import av
import pytest

from camgrid.media.fmp4 import read_boxes
from camgrid.media.live import LiveFeed
from camgrid.media.ps import VIDEO_ID, AccessUnit
from camgrid.sim.video import synthetic_footage


@pytest.fixture(scope="module")
def frames():
    footage = synthetic_footage("h264", 160, 120, 25, 3, gop_s=1.0)
    return footage.frames


def unit(frame, pts=None):
    ts = frame.pts if pts is None else pts
    return AccessUnit(VIDEO_ID, "h264", ts, ts, frame.data, frame.keyframe)


def drain(viewer):
    out = []
    while viewer._queue:
        out.append(viewer._queue.popleft())
    return out


def decode(chunks):
    with av.open(io.BytesIO(b"".join(c.data for c in chunks))) as container:
        return [(f.width, f.height, f.pts) for f in container.decode(video=0)]


def test_a_late_viewer_starts_at_the_last_key_frame_and_decodes(frames):
    feed = LiveFeed()
    for f in frames[:37]:  # into the second GOP (key frames at 0, 25)
        feed.push(unit(f))
    viewer = feed.add_viewer()
    for f in frames[37:50]:
        feed.push(unit(f))
    chunks = drain(viewer)
    assert chunks[0].init and chunks[0].track.width == 160
    assert chunks[1].keyframe and not chunks[2].keyframe
    assert len(chunks) == 1 + (37 - 25) + 13
    decoded = decode(chunks)
    assert len(decoded) == 25 and {(w, h) for w, h, _ in decoded} == {(160, 120)}


def test_frames_before_the_first_key_frame_are_not_playable(frames):
    feed = LiveFeed()
    feed.push(unit(frames[3]))
    assert feed.init is None and feed.unplayable == 1
    viewer = feed.add_viewer()
    feed.push(unit(frames[25]))
    chunks = drain(viewer)
    assert [c.init for c in chunks] == [True, False]


def test_a_slow_viewer_skips_to_the_next_key_frame(frames):
    feed = LiveFeed(max_queue_bytes=20_000)
    feed.push(unit(frames[0]))
    slow, fast = feed.add_viewer(), feed.add_viewer()
    fast.max_queue_bytes = 1 << 30
    for f in frames[1:60]:
        feed.push(unit(f))
    assert slow.skipped > 0 and fast.skipped == 0
    chunks = drain(slow)
    # Whatever the slow viewer kept still decodes: an init, then whole GOPs from a key frame.
    assert chunks[0].init
    assert chunks[1].keyframe
    assert decode(chunks)


def test_the_timeline_keeps_moving_across_a_wrap_and_a_device_restart(frames):
    feed = LiveFeed()
    viewer = feed.add_viewer()
    near_wrap = (1 << 33) - 3600 * 5
    for i, f in enumerate(frames[:25]):
        feed.push(unit(f, (near_wrap + i * 3600) & ((1 << 33) - 1)))
    for i, f in enumerate(frames[25:50]):  # the device restarted its clock
        feed.push(unit(f, 1000 + i * 3600))
    chunks = drain(viewer)
    assert all([box for box, _, _ in read_boxes(c.data)] == ["moof", "mdat"] for c in chunks[1:])
    decoded = decode(chunks)
    pts = [p for _, _, p in decoded]
    assert pts == sorted(pts) and len(set(pts)) == len(pts) == 50
    assert feed.discontinuities == 1


def test_a_frame_without_nal_units_is_dropped_not_fatal(frames):
    feed = LiveFeed()
    feed.push(unit(frames[0]))
    viewer = feed.add_viewer()
    feed.push(AccessUnit(VIDEO_ID, "h264", 3600, 3600, b"\xff" * 50, False))
    feed.push(unit(frames[1]))
    assert feed.bad_frames == 1
    assert [c.init for c in drain(viewer)] == [True, False, False]  # init, frame 0 (cached), frame 1


def test_fragments_are_built_only_for_someone(frames):
    feed = LiveFeed()
    for f in frames[:30]:
        feed.push(unit(f))
    assert all(frame.chunk is None for frame in feed._gop)  # nobody watched: nothing muxed
    viewer = feed.add_viewer()
    chunks = drain(viewer)
    assert len(chunks) == 1 + 5 and decode(chunks)  # init + the GOP since the key frame at 25
