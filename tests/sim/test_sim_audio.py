"""The simulator's audio end to end: a camera sending video and a G.711 / AAC tone as PS over RTP to
a real media node (UDP on loopback) that records it; the recorded segments decode (PyAV) with the
device's audio codec and about the video's length, and a live viewer is told what it gets."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timezone

import av
import pytest
import websockets

from camgrid.config import MediaSettings
from camgrid.media import tokens
from camgrid.media.node import MediaNode
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, PsDemuxer, mux_ps
from camgrid.media.recordings_query import segments_between
from camgrid.media.stream import StreamSpec
from camgrid.sim.media import SimMedia, SimMediaOptions
from camgrid.sim.video import AudioUnit, load_footage, synthetic_footage, with_audio
from camgrid.sim.rtp_sender import PsRtpSender, packetize
from camgrid.store.engine import make_engine, migrate

SECRET = "sim-audio-secret-0123456789"
CHANNEL, DEVICE = "34020000001310000001", "34020000001320000001"
DECODER = {"aac": "aac", "g711a": "pcm_alaw", "g711u": "pcm_mulaw"}


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 2, gop_s=1.0)


def test_the_sender_interleaves_audio_pes_listed_in_the_map(footage):
    fo = with_audio(footage, "g711u")
    sender = PsRtpSender(fo, 1, host="127.0.0.1", port=9)
    demuxer, units = PsDemuxer(), []
    schedule = sender._schedule()
    for _ in range(len(fo.frames) + len(fo.audio)):
        media, item = next(schedule)
        ps = (mux_ps(AUDIO_ID, item.data, media) if isinstance(item, AudioUnit)
              else mux_ps(VIDEO_ID, item.data, media, streams=sender._streams, keyframe=item.keyframe))
        for packet in packetize(ps, ssrc=1, seq=0, timestamp=media):
            units += demuxer.feed(packet[12:])
        units += demuxer.flush()
    audio = [u for u in units if not u.is_video]
    assert demuxer.codecs[0xC0] == "g711u" and len(audio) == len(fo.audio)  # the map names the audio stream
    assert [u.pts for u in units] == sorted(u.pts for u in units)  # in time order
    assert b"".join(u.data for u in audio) == b"".join(a.data for a in fo.audio)


async def test_sim_media_options_pick_the_sound():
    tone = await SimMedia(SimMediaOptions(audio="g711a")).footage()
    assert tone.audio_codec == "g711a" and abs(len(b"".join(a.data for a in tone.audio)) / 8000 - tone.duration_s) < 0.1
    assert (await SimMedia(SimMediaOptions()).footage()).audio == []  # auto: a test pattern has no sound of its own
    with pytest.raises(ValueError, match="unknown audio"):
        with_audio(tone, "mp3")


@pytest.mark.parametrize("codec", ["g711a", "aac"])
async def test_simulated_audio_is_recorded_and_decodes(tmp_path, footage, codec):
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate(engine)
    settings = MediaSettings(http_port=0, rtp_ports=(0, 0), host="127.0.0.1", segment_s=2, part_s=0.5)
    node = MediaNode(settings, SECRET, node_id="n1", engine=engine, recordings_dir=tmp_path / "rec")
    await node.start()
    sender = None
    try:
        opened = await node.open_stream(StreamSpec("s1", "udp"))
        node.start_recording("s1", channel_id=CHANNEL, device_id=DEVICE)
        sender = PsRtpSender(with_audio(footage, codec), 0x1234, host="127.0.0.1", port=opened["port"], speed=2)
        await sender.start()
        token = tokens.issue(SECRET, "s1", "tester", 30)
        inits = []
        async with websockets.connect(f"ws://127.0.0.1:{node.http.port}/live/s1?token={token}", max_size=None) as ws:
            deadline = asyncio.get_running_loop().time() + 10
            while not (inits and (inits[-1].get("audio") or {}).get("played")):
                # the map announces the audio with the first key frame: G.711 (as AAC) is in the first
                # init, AAC from its first header on
                assert asyncio.get_running_loop().time() < deadline, inits
                message = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(message, str):
                    inits.append(json.loads(message))
        assert len(inits) == 1
        assert inits[-1]["audio"]["codec"] == codec and inits[-1]["audio"]["played"] is True
        assert inits[-1]["codecs"].endswith("mp4a.40.2")
        await asyncio.sleep(2.2)  # two loops of the 2 s footage at 2x
        stats = node.stats_of("s1")
        assert stats["audio_units"] > 0 and stats["audio"]["codec"] == codec and stats["audio_bad_units"] == 0
        await sender.stop()
        await asyncio.sleep(0.3)  # the reorder buffer lets the last packets through
        final = await node.stop_recording("s1")
        assert final["audio"]["codec"] == codec and final["audio_samples"] > 0
        rows = await asyncio.to_thread(segments_between, engine, CHANNEL, _epoch(), _far())
        with_audio_files = 0
        for row in rows:
            with av.open(str(tmp_path / "rec" / row["path"])) as container:
                video = sum(1 for _ in container.decode(video=0))
            with av.open(str(tmp_path / "rec" / row["path"])) as container:
                if not container.streams.audio:
                    continue
                stream = container.streams.audio[0]
                assert stream.codec_context.name == DECODER[codec]
                seconds = sum(f.samples for f in container.decode(stream)) / stream.rate
            with_audio_files += 1
            assert abs(seconds - video / 25) < 0.3, (seconds, video)  # the audio covers the segment's video
        assert with_audio_files >= 1
    finally:
        if sender is not None:
            await sender.stop()
        await node.stop()
        engine.dispose()


def _epoch():
    return datetime(2000, 1, 1, tzinfo=timezone.utc)


def _far():
    return datetime(2100, 1, 1, tzinfo=timezone.utc)


def test_a_file_with_sound_is_sent_with_it(tmp_path):
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:  # a short clip with a 440 Hz sound track, as a camera file would have
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono")
        with av.open("sine=frequency=440:sample_rate=16000:duration=1", format="lavfi") as src:
            for frame in src.decode(audio=0):
                frame.pts = None
                for packet in audio.encode(frame):
                    out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
        for i in range(25):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    fo = with_audio(load_footage(clip), "auto", clip)
    assert fo.audio_codec == "aac" and len(fo.audio) > 10
    assert with_audio(load_footage(clip), "none", clip).audio == []
    data = b"".join(a.data for a in fo.audio)  # ADTS as sent: FFmpeg reads it back
    with av.open(io.BytesIO(data), format="aac") as container:
        assert sum(f.samples for f in container.decode(audio=0)) / 16000 == pytest.approx(1.0, abs=0.15)
