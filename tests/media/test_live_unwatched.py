"""LiveFeed of a stream nobody watches: its frames wait unplaced and are put on the timeline only
when a viewer joins (or, timeline only, when their GOP is over). A viewer must not be able to tell:
what it receives is byte for byte what the feed that places every frame on arrival
(`defer_unwatched=False`) sends, across joins and leaves, audio, codec changes and timestamp
jumps; and it decodes (PyAV) from a key frame on."""

from __future__ import annotations

import io
import random
import time

import av
import pytest

from camgrid.media.live import LiveFeed
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, AccessUnit
from camgrid.sim.video import synthetic_footage, with_audio

WRAP = 1 << 33


@pytest.fixture(scope="module")
def h264():
    return synthetic_footage("h264", 160, 120, 25, 3, gop_s=1.0)


@pytest.fixture(scope="module")
def h265():
    return synthetic_footage("h265", 192, 144, 25, 2, gop_s=1.0)


def events(parts, *, seed=0, jumps=False, no_dts=False):
    """("announce", codec) / ("video", AccessUnit) / ("audio", AccessUnit) as a camera sends the
    footages one after another (the second a codec and size change), timestamps running on; with
    `jumps`, the clock wraps, restarts mid-GOP and repeats a timestamp."""
    rng = random.Random(seed)
    out, base, previous_pts = [], WRAP - 90_000 if jumps else 0, 0
    for footage in parts:
        audio = list(footage.audio)
        for i, frame in enumerate(footage.frames):
            if jumps and i == 40:
                base -= rng.randrange(1_000_000, 5_000_000)  # the device restarted its clock mid-GOP
            pts = (base + frame.pts) & (WRAP - 1)
            if jumps and i == 60:
                pts = previous_pts  # a repeated timestamp
            if frame.keyframe and footage.audio_codec:
                out.append(("announce", footage.audio_codec))
            out.append(("video", AccessUnit(VIDEO_ID, footage.codec, pts, None if no_dts else pts, frame.data,
                                            frame.keyframe)))
            previous_pts = pts
            while audio and audio[0].pts <= frame.pts:
                unit = audio.pop(0)
                out.append(("audio", AccessUnit(AUDIO_ID, footage.audio_codec, (base + unit.pts) & (WRAP - 1),
                                                None, unit.data)))
        base += footage.frames[-1].pts + 3600
    return out


def replay(feed, schedule, actions):
    """Feed the events; actions[i] runs before event i: "join", "leave" (the oldest viewer) or
    "hls". Returns each viewer's chunks, in the order the viewers joined."""
    viewers, chunks = [], []
    for i, (kind, unit) in enumerate(schedule):
        action = actions.get(i)
        if action == "join":
            viewers.append(feed.add_viewer())
        elif action == "leave" and viewers:
            viewer = viewers.pop(0)
            chunks.append(list(viewer._queue))
            feed.remove_viewer(viewer)
        elif action == "hls":
            feed.hls.last_request = time.monotonic()
        if kind == "announce":
            feed.announce_audio(unit)
        elif kind == "video":
            feed.push(unit)
        else:
            feed.push_audio(unit)
    return chunks + [list(v._queue) for v in viewers]


def seen(feed, chunks):
    """What a viewer (and the stats) can observe."""
    return ([[(c.data, c.keyframe, c.init, c.track, c.info) for c in viewer] for viewer in chunks],
            [seg for seg in feed.hls._segments],
            {name: getattr(feed, name) for name in ("frames", "keyframes", "discontinuities", "bad_frames",
                                                   "unplayable", "bad_parameter_sets", "audio_units",
                                                   "audio_dropped", "audio_bad_units", "track", "init", "audio")},
            (feed.timeline.last_dts, feed.timeline.frame_ticks))


def decode(chunks):
    data = b"".join(c.data for c in chunks)
    with av.open(io.BytesIO(data)) as container:
        video = [(f.width, f.height) for f in container.decode(video=0)]
    with av.open(io.BytesIO(data)) as container:
        audio = sum(f.samples for f in container.decode(audio=0)) if container.streams.audio else 0
    return video, audio


@pytest.mark.parametrize("audio", [None, "aac", "g711a"])
@pytest.mark.parametrize("seed", range(8))
def test_a_viewer_gets_what_the_eager_feed_sends(h264, h265, audio, seed):
    parts = [with_audio(h264, audio), with_audio(h265, audio)] if audio else [h264, h265]
    schedule = events(parts, seed=seed, jumps=seed % 2 == 1, no_dts=seed % 4 == 2)
    rng = random.Random(seed)
    # Watched and unwatched stretches, joins mid-GOP; one moment with two viewers.
    moments = sorted(rng.sample(range(len(schedule)), 11))
    actions = dict(zip(moments, ["join", "leave"] * 5 + ["join"]))
    actions[rng.randrange(len(schedule))] = "join"
    if seed % 4 == 3:
        actions[moments[-1] - 20] = "hls"
    deferred, eager = LiveFeed(), LiveFeed(defer_unwatched=False)
    got = seen(deferred, replay(deferred, schedule, actions))
    want = seen(eager, replay(eager, schedule, actions))
    assert got == want
    assert any(got[0]), "no viewer received anything: the schedule tests nothing"


def test_an_unwatched_stream_keeps_its_frames_unplaced_until_a_viewer_joins(h264):
    feed = LiveFeed()
    schedule = events([h264])
    for _, unit in schedule[:37]:  # into the second GOP (key frames at 0, 25)
        feed.push(unit)
    assert len(feed._gop) == 1 and len(feed._unplaced) == 11  # the key frame placed; nothing built
    assert feed.frames == 26 and feed.keyframes == 2
    viewer = feed.add_viewer()
    assert not feed._unplaced
    for _, unit in schedule[37:50]:
        feed.push(unit)
    chunks = list(viewer._queue)
    assert chunks[0].init and chunks[0].track.width == 160 and chunks[0].track.codec == "h264"
    assert chunks[1].keyframe and not any(c.keyframe for c in chunks[2:])
    video, _ = decode(chunks)
    assert video == [(160, 120)] * 25


def test_a_codec_change_while_nobody_watches_reaches_the_next_viewer(h264, h265):
    feed = LiveFeed()
    schedule = events([h264, h265])
    change = next(i for i, (_, u) in enumerate(schedule) if u.codec == "h265")
    for _, unit in schedule[:change + 30]:  # the H.265 part's first GOP and a few frames of its second
        feed.push(unit)
    viewer = feed.add_viewer()
    chunks = list(viewer._queue)
    assert [c.init for c in chunks].count(True) == 1
    assert chunks[0].track.codec == "h265" and (chunks[0].track.width, chunks[0].track.height) == (192, 144)
    assert chunks[1].keyframe
    video, _ = decode(chunks)
    assert video == [(192, 144)] * 5


def test_aac_of_an_unwatched_stream_plays_from_the_join(h264):
    footage = with_audio(h264, "aac")
    feed = LiveFeed()
    schedule = events([footage])
    join = next(i for i, (kind, u) in enumerate(schedule) if kind == "video" and u.pts == 62 * 3600)
    replay(feed, schedule[:join], {})
    viewer = feed.add_viewer()
    replay(feed, schedule[join:], {})
    chunks = list(viewer._queue)
    assert chunks[0].info["audio"]["played"] and chunks[0].info["codecs"].endswith("mp4a.40.2")
    video, samples = decode(chunks)
    assert len(video) == 25 and samples >= 0.8 * 16_000  # the GOP from the key frame at 50: ~1 s of sound
