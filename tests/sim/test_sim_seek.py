"""Playback seek and speed in the simulator (issue 3): a camera playing its recording goes on
from the asked point after MANSRTSP `Range: npt=<s>-` and paces by `Scale:`. The footage's
picture says where in it a frame is (its brightness steps every second), so what the receiver
decodes shows the seek: first at the sender (PS over RTP to a UDP socket, demuxed and decoded),
then through the real platform (a Playback INVITE, INFO from the platform's control, the viewer's
fMP4 decoded with PyAV)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
import websockets

from camgrid.app import Platform
from camgrid.media.ps import PsDemuxer
from camgrid.media.rtp import parse_rtp
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import CLOCK_HZ, Footage, load_footage, with_audio
from camgrid.sim.rtp_sender import PsRtpSender
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for
from tests.signaling.conftest import specs  # noqa: F401  (a fixture)

FPS = 25
SECONDS = 8
SECOND = CLOCK_HZ


def luma_of_second(second: int) -> int:
    return 16 + 24 * second  # 16, 40, ... 184: far apart, flat frames decode to within a few levels


def second_of_luma(luma: float) -> int:
    return round((luma - 16) / 24)


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Footage:
    """8 s at 25 fps, key frame every second, each second a flat picture of its own brightness, with a G.711A tone."""
    src = Path(tmp_path_factory.mktemp("seek")) / "steps.y4m"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("rawvideo", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(SECONDS * FPS):
            frame = av.VideoFrame(160, 120, "yuv420p")
            frame.planes[0].update(bytes([luma_of_second(i // FPS)]) * frame.planes[0].buffer_size)
            for plane in frame.planes[1:]:
                plane.update(bytes([128]) * plane.buffer_size)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return with_audio(load_footage(src, gop_s=1.0), "g711a")


def mean_luma(picture: av.VideoFrame) -> float:
    plane = picture.planes[0]
    data = bytes(plane)
    rows = [data[r * plane.line_size:r * plane.line_size + picture.width] for r in range(picture.height)]
    return sum(map(sum, rows)) / (picture.width * picture.height)


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.packets.append(data)


def demux(packets: list[bytes]):
    demuxer, units = PsDemuxer(), []
    for data in packets:
        rtp = parse_rtp(data)
        units += demuxer.feed(rtp.payload)
        if rtp.marker:
            units += demuxer.flush()
    return units


def test_key_position_is_the_key_frame_at_or_before_in_the_looped_recording(footage: Footage) -> None:
    sender = PsRtpSender(footage, 1, host="127.0.0.1", port=9)
    assert sender.key_position(0) == 0
    assert sender.key_position(round(5.5 * SECOND)) == 5 * SECOND
    assert sender.key_position(5 * SECOND) == 5 * SECOND
    assert sender.key_position(round(13.2 * SECOND)) == 13 * SECOND  # second loop: footage second 5
    with pytest.raises(ValueError):
        sender.seek(-1)


async def test_seek_goes_on_from_the_key_frame_of_that_point_with_sound(footage: Footage) -> None:
    transport, sink = await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sender = PsRtpSender(footage, 7, host="127.0.0.1", port=transport.get_extra_info("sockname")[1], speed=2)
    await sender.start()
    await asyncio.sleep(0.4)  # about 0.8 s of footage
    sender.seek(5.5)
    await asyncio.sleep(0.4)
    sender.pause()
    await asyncio.sleep(0.1)
    sender.seek(13.2)  # resumes, in the second loop of the recording
    await asyncio.sleep(0.3)
    sender.seek(2)  # backwards
    await asyncio.sleep(0.3)
    await sender.stop()
    transport.close()
    assert sender.seeks == 3 and sender.error is None

    units = demux(sink.packets)
    video = [u for u in units if u.is_video]
    origin = video[0].pts
    times = [u.pts - origin for u in video]
    jumps = [i for i in range(1, len(times)) if times[i] - times[i - 1] != footage.frame_period]
    assert [times[i] for i in jumps] == [5 * SECOND, 13 * SECOND, 2 * SECOND]  # media time says where it is
    assert all(video[i].keyframe for i in jumps)
    assert times[jumps[0] - 1] < 2 * SECOND  # the first second or so was sent before the first seek

    ctx = av.CodecContext.create("h264", "r")
    seconds = []
    for unit in video:
        for picture in ctx.decode(av.Packet(unit.data)):
            seconds.append(second_of_luma(mean_luma(picture)))
    seconds += [second_of_luma(mean_luma(p)) for p in ctx.decode(None)]
    assert len(seconds) == len(video)
    expected = [(t // SECOND) % SECONDS for t in times]
    assert seconds == expected  # every picture is the footage of the second its media time names

    audio = [u for u in units if not u.is_video]
    assert audio and {u.codec for u in audio} == {"g711a"}
    # sound goes on with the picture: after each jump, the next audio starts at the new point
    for i in jumps:
        at = next(k for k, u in enumerate(units) if u is video[i])
        following = next(u.pts - origin for u in units[at:] if not u.is_video)
        assert 0 <= following - times[i] < SECOND // 10


async def test_speed_changes_the_pacing_of_media_time(footage: Footage) -> None:
    transport, sink = await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sender = PsRtpSender(footage, 8, host="127.0.0.1", port=transport.get_extra_info("sockname")[1])
    await sender.start()
    await asyncio.sleep(0.6)
    at_1x = sender.frames_sent
    sender.speed = 4
    await asyncio.sleep(0.6)
    at_4x = sender.frames_sent - at_1x
    await sender.stop()
    transport.close()
    assert 2.5 * at_1x <= at_4x <= 5.5 * at_1x, (at_1x, at_4x)


# -- through the platform ---------------------------------------------------------------------------------

class Viewer:
    """The platform's fMP4 of a session over its WebSocket, kept until stopped."""

    def __init__(self, url: str) -> None:
        self.url, self.data = url, []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            async for msg in ws:
                if isinstance(msg, bytes):
                    self.data.append(msg)

    async def stop(self) -> bytes:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        return b"".join(self.data)


async def test_a_platform_playback_seek_is_seen_in_what_the_viewer_decodes(tmp_path, specs, footage):  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'camgrid.db'}"
    provision(db_url, specs[:1])
    platform = Platform(make_settings(tmp_path, db_url, catalog={"query_on_register": False}), announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(footage)
    await sim.start()
    ended = []

    async def on_end(event):
        ended.append(event)
    platform.bus.subscribe("media.stream_ended", on_end)
    try:
        assert await sim.wait_registered(10)
        start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        session = await platform.media.playback(specs[0].id, specs[0].channels[0].id, start, start + timedelta(seconds=60))
        assert await platform.media.wait_first_frame(session, 10), session.end_reason
        viewer = Viewer(session.node.live_url(session.session_id, "tester", 30))
        await asyncio.sleep(1.5)  # the recording's first second or two
        await platform.media.control(session, "seek", 5)
        await asyncio.sleep(1.5)
        data = await viewer.stop()
        assert [(m, n) for _, m, _, n in sim.media.controls] == [("PLAY", 5.0)]
        with av.open(io.BytesIO(data)) as container:
            seconds = [second_of_luma(mean_luma(p)) for p in container.decode(video=0)]
        assert len(seconds) >= 40, seconds
        first_after = next(i for i, s in enumerate(seconds) if s >= 5)
        assert first_after > 0 and max(seconds[:first_after]) <= 2  # before: the start of the recording
        assert set(seconds[first_after:]) <= {5, 6}  # after: from second 5 on, nothing of 2-4 between
        assert seconds[first_after] == 5

        # speed: PLAY with Scale 4 sends four seconds of recording per second; a seek past the end
        # of the range ends the playback as the end of the recording does (MediaStatus 121)
        call = next(iter(sim.media.calls.values()))
        before, t0 = call.sender.frames_sent, time.monotonic()
        await platform.media.control(session, "speed", 4.0)
        await asyncio.sleep(1.0)
        rate = (call.sender.frames_sent - before) / (time.monotonic() - t0)
        assert 3 * FPS <= rate <= 5 * FPS, rate
        await platform.media.control(session, "seek", 61)
        await wait_for(lambda: session.state == "ended", timeout=10)
        assert session.end_reason == "the device reached the end of the recording (MediaStatus 121)"
    finally:
        await sim.stop()
        await platform.stop()
