"""Live audio: what a viewer of the LiveFeed receives decodes (PyAV) with AAC passed through, G.711
transcoded to AAC (media.audio_transcode) or left out with the reason in the init info; a video-only
stream is what it was."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from camgrid.media.live import LiveFeed
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, AccessUnit
from camgrid.sim.video import synthetic_footage, with_audio


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 4, gop_s=1.0)


def play(footage, audio_codec, *, transcode=True, bad_audio=False, announce=None, audio_from_s=0.0):
    """Feed the footage (and its audio from `audio_from_s`, after each frame of its time) to a
    LiveFeed watched from the start, the map announcing `announce` at key frames; (the feed, the
    chunks the viewer got)."""
    fo = with_audio(footage, audio_codec) if audio_codec else footage
    feed = LiveFeed(audio_transcode=transcode)
    viewer = feed.add_viewer()
    units = [u for u in fo.audio if u.pts >= audio_from_s * 90_000]
    for f in fo.frames:
        if f.keyframe and announce:
            feed.announce_audio(announce)
        feed.push(AccessUnit(VIDEO_ID, "h264", f.pts, f.pts, f.data, f.keyframe))
        while units and units[0].pts <= f.pts:
            unit = units.pop(0)
            feed.push_audio(AccessUnit(AUDIO_ID, audio_codec, unit.pts, unit.pts, b"\x00" if bad_audio else unit.data))
    chunks = list(viewer._queue)
    return feed, chunks


def from_last_init(chunks) -> tuple[dict | None, bytes]:
    last = max(i for i, c in enumerate(chunks) if c.init)
    return chunks[last].info, b"".join(c.data for c in chunks[last:])


def decode(data: bytes) -> dict:
    out = {}
    with av.open(io.BytesIO(data)) as container:
        out["video"] = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(data)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
            spectrum = np.abs(np.fft.rfft(pcm[-stream.rate:] * np.hanning(stream.rate)))
            out.update(audio=stream.codec_context.name, rate=stream.rate, audio_s=len(pcm) / stream.rate,
                       pitch=float(np.argmax(spectrum)))
    return out


def test_aac_is_passed_through(footage):
    feed, chunks = play(footage, "aac", announce="aac")
    assert sum(c.init for c in chunks) == 1  # the first init waited for the announced AAC's first header
    info, data = from_last_init(chunks)
    assert info["audio"]["played"] is True and info["audio"]["transcoded_to"] is None
    assert info["codecs"] == f"{feed.track.codec_string},mp4a.40.2"
    got = decode(data)
    assert got["video"] == 100 and got["audio"] == "aac" and got["rate"] == 16000  # from the first key frame
    assert abs(got["audio_s"] - 4.0) < 0.3 and abs(got["pitch"] - 440) < 5


def test_announced_aac_that_comes_late_in_the_first_gop_holds_that_gop_not_the_next(footage):
    """The first init waits for the AAC header, but the frames since the first key frame wait with
    it and play: a cold start is not a GOP later (time to first frame)."""
    feed, chunks = play(footage, "aac", announce="aac", audio_from_s=0.6)
    assert sum(c.init for c in chunks) == 1 and chunks[0].init and chunks[1].keyframe
    got = decode(b"".join(c.data for c in chunks))
    assert got["video"] == 100 and got["audio"] == "aac" and feed.unplayable == 0
    assert abs(got["audio_s"] - 3.4) < 0.3


def test_aac_that_appears_later_joins_at_a_key_frame_and_one_never_sent_does_not_hold_video(footage):
    _, chunks = play(footage, "aac", audio_from_s=1.5)  # not announced: video starts at once
    assert [c.info for c in chunks if c.init][0] is None
    info, data = from_last_init(chunks)
    assert sum(c.init for c in chunks) == 2 and info["audio"]["played"] is True
    assert decode(data)["video"] == 50 and decode(data)["audio"] == "aac"
    feed, chunks = play(footage, None, announce="aac")  # announced, never sent
    assert sum(c.init for c in chunks) == 1 and decode(b"".join(c.data for c in chunks)) == {"video": 50}
    assert feed.unplayable == 50


def test_g711_is_transcoded_to_aac_for_browsers(footage):
    feed, chunks = play(footage, "g711a", announce="g711a")
    assert sum(c.init for c in chunks) == 1  # the map's G.711 is enough for the first init
    info, data = from_last_init(chunks)
    assert info["audio"] == {"codec": "g711a", "sample_rate": 8000, "channels": 1, "played": True,
                             "transcoded_to": "aac", "reason": None}
    assert info["codecs"].endswith(",mp4a.40.2")
    got = decode(data)
    assert got["audio"] == "aac" and got["rate"] == 8000 and abs(got["pitch"] - 440) < 5
    assert got["video"] == 100
    assert 3.4 < got["audio_s"] <= 4.0  # the encoder still holds the last few frames (about 0.4 s) when the feed ends


def test_g711_without_transcoding_is_video_only_and_says_so(footage):
    feed, chunks = play(footage, "g711u", transcode=False, announce="g711u")
    assert sum(c.init for c in chunks) == 1
    info, data = from_last_init(chunks)
    assert info["audio"]["played"] is False and "audio_transcode is off" in info["audio"]["reason"]
    assert info["codecs"] == feed.track.codec_string
    got = decode(data)
    assert got == {"video": 100}


def test_video_only_stream_is_unchanged_and_bad_audio_costs_nothing(footage):
    _, plain = play(footage, None)
    assert plain[0].info is None  # no audio: the init message is what it was
    feed, bad = play(footage, "aac", bad_audio=True)
    assert feed.audio_bad_units > 0 and feed.audio is None
    assert [c.data for c in bad] == [c.data for c in plain]
    assert bad[0].info is None  # audio that never parsed: shown as a video-only stream (counted in the stats)
    assert decode(b"".join(c.data for c in bad)) == {"video": 100}
