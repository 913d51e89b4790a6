"""Playback of recorded footage: from any moment, across segments and gaps, on one timeline;
and through a media node's WebSocket with a signed link."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta

import av
import pytest
import websockets

from camgrid.config import MediaSettings
from camgrid.media import tokens
from camgrid.media.node import MediaNode
from camgrid.media.playback import read_recorded
from recording_helpers import CHANNEL, at

SECRET = "playback-secret-0123456789abcdef"


def decode(blob):
    with av.open(io.BytesIO(blob)) as container:
        return [(f.width, f.height, f.time) for f in container.decode(video=0)]


async def test_playback_from_the_middle_runs_on_one_timeline_across_the_gap(recorded):
    engine, root = recorded
    items = [i async for i in read_recorded(engine, root, CHANNEL, at(1.5))]
    kinds = [i.kind for i in items]
    assert kinds[0] == "init" and kinds.count("init") == 1  # same picture format throughout
    assert items[0].info["codec_string"].startswith(("avc1.", "hvc1."))  # what the browser's MSE asks for
    segments = [i for i in items if i.kind == "segment"]
    assert len(segments) == 4  # the rest of run 1's first segment, its second, then run 2's two
    assert segments[0].wall <= at(1.5) < segments[0].wall + timedelta(seconds=1.01)  # from the key frame before 1.5 s
    assert segments[2].wall == pytest.approx(at(14), abs=timedelta(seconds=0.1))  # after the 10 s gap
    frames = decode(b"".join(i.data for i in items if i.kind in ("init", "fragment")))
    times = [t for _, _, t in frames]
    assert times == sorted(times)
    assert max(b - a for a, b in zip(times, times[1:])) < 0.05  # no hole on the player's timeline
    assert len(frames) == 3 * 25 + 4 * 25  # from the key frame at 1 s to the end of both runs


async def test_a_bounded_range_stops_at_its_end(recorded):
    engine, root = recorded
    items = [i async for i in read_recorded(engine, root, CHANNEL, at(0), at(1.0))]
    frames = decode(b"".join(i.data for i in items if i.kind in ("init", "fragment")))
    assert 20 <= len(frames) <= 40  # whole parts up to the end of the range


async def test_a_missing_file_is_reported_and_skipped(recorded):
    engine, root = recorded
    victim = sorted(root.rglob("*.mp4"))[1]
    victim.unlink()
    items = [i async for i in read_recorded(engine, root, CHANNEL, at(0))]
    assert [i.kind for i in items].count("missing") == 1
    assert decode(b"".join(i.data for i in items if i.kind in ("init", "fragment")))


async def test_a_node_plays_recordings_over_a_signed_websocket_at_speed(recorded):
    engine, root = recorded
    node = MediaNode(MediaSettings(http_port=0, rtp_ports=(0, 0), host="127.0.0.1"), SECRET, node_id="n1",
                     engine=engine, recordings_dir=root)
    await node.start()
    try:
        token = tokens.issue(SECRET, f"playback:{CHANNEL}", "tester", 30)
        url = f"ws://127.0.0.1:{node.http.port}/playback/{CHANNEL}?token={token}&from={at(0).isoformat().replace('+', '%2B')}&speed=8"
        texts, blobs = [], []
        t0 = time.monotonic()
        async with websockets.connect(url, max_size=None) as ws:
            async for msg in ws:
                (texts if isinstance(msg, str) else blobs).append(msg)
        elapsed = time.monotonic() - t0
        assert json.loads(texts[-1])["type"] == "end"
        assert len(decode(b"".join(blobs))) == 200  # both runs, every frame
        assert elapsed < 4  # 8 s of footage at 8x with 2 s sent ahead
        bad = url.replace(token, tokens.issue(SECRET, "playback:34020000001310000002", "tester", 30))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
            async with websockets.connect(bad) as ws:
                await ws.recv()
        assert err.value.rcvd.code == 4401
    finally:
        await node.stop()
