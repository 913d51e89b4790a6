"""Simulated camera video: footage encoded for sending, RTP packetizing, and PS over RTP received
for real over UDP and both TCP set-ups, demuxed and decoded."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import av
import pytest

from camgrid.media.ps import PsDemuxer
from camgrid.media.rtp import TcpDeframer, parse_rtp
from camgrid.sim.video import Footage, FootageError, load_footage, synthetic_footage
from camgrid.sim.rtp_sender import PsRtpSender, mode_for_offer, packetize

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
needs_footage = pytest.mark.skipif(not FOOTAGE.is_dir(), reason=f"no development footage at {FOOTAGE}")
FPS = 25


def nal_types(data: bytes, hevc: bool = False) -> set[int]:
    parts = data.split(b"\x00\x00\x01")[1:]
    return {(p[0] >> 1) & 0x3F if hevc else p[0] & 0x1F for p in parts if p}


@pytest.fixture(scope="module")
def footage() -> Footage:
    return synthetic_footage("h264", 320, 240, FPS, 2, gop_s=0.5)


# -- footage ----------------------------------------------------------------------------------
def check_cadence(f: Footage, gop_s: float) -> None:
    keyint = round(gop_s * f.fps)
    assert [i for i, fr in enumerate(f.frames) if fr.keyframe] == list(range(0, len(f.frames), keyint))
    hevc = f.codec == "h265"
    needed = {32, 33, 34} if hevc else {7, 8}  # (VPS,) SPS, PPS in-band before every key frame
    assert all(needed <= nal_types(fr.data, hevc) for fr in f.frames if fr.keyframe)
    pts = [fr.pts for fr in f.frames]
    assert pts == sorted(set(pts)) and pts[0] == 0


@needs_footage
@pytest.mark.parametrize("name", ["road-car-detection.mp4", "highway-cctv-osd-320x240.avi"])
def test_real_footage_is_reencoded_with_a_fixed_gop_and_cached(name: str, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    first = load_footage(FOOTAGE / name, max_seconds=3, gop_s=1.0, cache_dir=tmp_path)
    encode_s = time.perf_counter() - t0
    assert first.codec == "h264" and len(first.frames) == round(3 * first.fps)
    assert first.duration_s == pytest.approx(3, abs=0.1)
    check_cadence(first, 1.0)
    assert len(list(tmp_path.iterdir())) == 1
    t0 = time.perf_counter()
    again = load_footage(FOOTAGE / name, max_seconds=3, gop_s=1.0, cache_dir=tmp_path)
    assert time.perf_counter() - t0 < encode_s
    assert again == first
    other = load_footage(FOOTAGE / name, max_seconds=1, gop_s=0.5, size=(160, 120), cache_dir=tmp_path)
    assert (other.width, other.height) == (160, 120) and len(list(tmp_path.iterdir())) == 2


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    src = tmp_path / "clip.y4m"
    with av.open(str(src), "w") as out:  # a tiny source file without needing the footage folder
        stream = out.add_stream("rawvideo", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 20]) * plane.buffer_size)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    cache = tmp_path / "cache"
    first = load_footage(src, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(entry.read_bytes()[:-10])
    assert load_footage(src, cache_dir=cache) == first


@pytest.mark.parametrize("codec,decoder", [("h264", "h264"), ("h265", "hevc")])
def test_synthetic_footage_decodes(codec: str, decoder: str) -> None:
    f = synthetic_footage(codec, 176, 144, FPS, 1, gop_s=0.4)
    assert (f.codec, f.width, f.height, len(f.frames)) == (codec, 176, 144, FPS)
    check_cadence(f, 0.4)
    ctx = av.CodecContext.create(decoder, "r")
    pictures = [p for fr in f.frames for p in ctx.decode(av.Packet(fr.data))] + list(ctx.decode(None))
    assert len(pictures) == FPS and {(p.width, p.height) for p in pictures} == {(176, 144)}


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FootageError, match="no such file"):
        load_footage(tmp_path / "missing.mp4")
    with pytest.raises(FootageError, match="unknown codec"):
        synthetic_footage("mjpeg")
    audio = tmp_path / "tone.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\x00\x00" * 800)
    with pytest.raises(FootageError, match="no video"):
        load_footage(audio)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(FootageError, match="cannot decode"):
        load_footage(junk)


# -- RTP --------------------------------------------------------------------------------------
def test_packetize_splits_at_the_mtu_and_marks_the_last() -> None:
    ps = bytes(range(256)) * 23  # 5888 bytes
    packets = packetize(ps, ssrc=7, seq=65534, timestamp=1234, mtu_payload=1400)
    parsed = [parse_rtp(p) for p in packets]
    assert len(packets) == 5 and all(len(p) <= 1400 + 12 for p in packets)
    assert [p.marker for p in parsed] == [False] * 4 + [True]
    assert [p.sequence for p in parsed] == [65534, 65535, 0, 1, 2]
    assert {(p.timestamp, p.ssrc, p.payload_type) for p in parsed} == {(1234, 7, 96)}
    assert b"".join(p.payload for p in parsed) == ps
    assert len(packetize(b"x", ssrc=1, seq=0, timestamp=0)) == 1


def test_mode_for_offer() -> None:
    assert mode_for_offer(False, None) == "udp"
    assert mode_for_offer(True, "passive") == "tcp-connect"
    assert mode_for_offer(True, "active") == "tcp-listen"


# -- end to end -------------------------------------------------------------------------------
class Received:
    """What a platform would do with the packets: demux PS per frame and decode the video."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def add(self, packet: bytes) -> None:
        self.packets.append(packet)

    def decode(self) -> tuple[list, list]:
        demux, units = PsDemuxer(), []
        for data in self.packets:
            rtp = parse_rtp(data)
            units += demux.feed(rtp.payload)
            if rtp.marker:
                units += demux.flush()
        ctx = av.CodecContext.create("h264", "r")
        pictures = [p for u in units for p in ctx.decode(av.Packet(u.data))] + list(ctx.decode(None))
        return units, pictures


class UdpSink(asyncio.DatagramProtocol):
    def __init__(self, received: Received) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.add(data)


async def udp_sink() -> tuple[asyncio.DatagramTransport, Received, int]:
    received = Received()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: UdpSink(received), local_addr=("127.0.0.1", 0))
    return transport, received, transport.get_extra_info("sockname")[1]


async def read_rfc4571(reader: asyncio.StreamReader, received: Received) -> None:
    deframer = TcpDeframer()
    while data := await reader.read(65536):
        for packet in deframer.feed(data):
            received.add(packet)


async def serve_rfc4571(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, received: Received) -> None:
    await read_rfc4571(reader, received)
    writer.close()


def check_stream(received: Received, f: Footage, elapsed: float, speed: float = 1.0) -> None:
    units, pictures = received.decode()
    expected = f.fps * elapsed * speed
    assert 0.7 * expected <= len(units) <= 1.2 * expected + 2
    assert units[0].keyframe and units[0].codec == "h264"
    assert len(pictures) >= len(units) - 1  # every frame decodes (the decoder may hold the last)
    assert {(p.width, p.height) for p in pictures} == {(f.width, f.height)}
    stamps = [parse_rtp(p).timestamp for p in received.packets]
    assert all(0 <= (b - a) % 2**32 < 2**31 for a, b in zip(stamps, stamps[1:]))  # never backwards


async def test_udp_and_both_tcp_set_ups_are_paced_and_decode(footage: Footage) -> None:
    await asyncio.gather(udp_stream(footage), tcp_connect_stream(footage), tcp_listen_stream(footage))


async def udp_stream(footage: Footage) -> None:
    transport, received, port = await udp_sink()
    sender = PsRtpSender(footage, 0xFEDCBA98, host="127.0.0.1", port=port)
    await sender.start()
    await asyncio.sleep(1.5)
    await sender.stop()
    await sender.stop()  # idempotent
    transport.close()
    check_stream(received, footage, 1.5)
    assert sender.frames_sent == len(received.decode()[0]) and sender.packets_sent == len(received.packets)
    assert sender.bytes_sent == sum(map(len, received.packets)) and sender.error is None


async def tcp_connect_stream(footage: Footage) -> None:
    """The platform offered a=setup:passive: it listens, the camera connects."""
    received = Received()
    server = await asyncio.start_server(lambda r, w: serve_rfc4571(r, w, received), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = PsRtpSender(footage, 1, mode="tcp-connect", host="127.0.0.1", port=port)
    await sender.start()
    await asyncio.sleep(1.5)
    await sender.stop()
    server.close()
    await asyncio.sleep(0.05)  # let the reader take the last bytes
    check_stream(received, footage, 1.5)


async def tcp_listen_stream(footage: Footage) -> None:
    """The platform offered a=setup:active: the camera listens, the platform connects."""
    sender = PsRtpSender(footage, 2, mode="tcp-listen")
    port = await sender.listen("127.0.0.1")
    await sender.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = Received()
    reading = asyncio.create_task(read_rfc4571(reader, received))
    await asyncio.sleep(1.5)
    await sender.stop()
    await asyncio.wait_for(reading, 1)  # the sender closed the connection
    writer.close()
    check_stream(received, footage, 1.5)
    with pytest.raises(OSError):  # one connection per stream: the port is closed
        await asyncio.open_connection("127.0.0.1", port)


async def test_speed_and_pause(footage: Footage) -> None:
    sinks = [await udp_sink() for _ in range(3)]
    normal, fast, paused = (PsRtpSender(footage, i, host="127.0.0.1", port=port)
                            for i, (_, _, port) in enumerate(sinks))
    fast.speed = 4
    paused.pause()
    for s in (normal, fast, paused):
        await s.start()
    await asyncio.sleep(0.8)
    await normal.stop()
    await fast.stop()
    assert 3 * normal.frames_sent <= fast.frames_sent <= 5 * normal.frames_sent and paused.frames_sent == 0
    check_stream(sinks[1][1], footage, 0.8, speed=4)  # looped: 2 s of footage in 3.2 s of media time
    paused.resume()
    await asyncio.sleep(0.2)
    paused.pause()
    await asyncio.sleep(0.05)
    count = paused.frames_sent
    await asyncio.sleep(0.25)
    assert count > 0 and paused.frames_sent == count and paused.paused and paused.running
    await paused.stop()
    for transport, _, _ in sinks:
        transport.close()


async def test_end_after_calls_on_end(footage: Footage) -> None:
    transport, received, port = await udp_sink()
    ended = asyncio.Event()

    async def on_end() -> None:
        await sender.stop()  # what a camera may do from its callback
        ended.set()

    sender = PsRtpSender(footage, 3, host="127.0.0.1", port=port, speed=4, end_after_s=0.4, on_end=on_end)
    t0 = time.monotonic()
    await sender.start()
    await asyncio.wait_for(ended.wait(), 2)
    assert 0.08 <= time.monotonic() - t0 < 0.5
    assert sender.frames_sent == 10 and not sender.running and sender.error is None
    with pytest.raises(RuntimeError, match="stopped"):
        await sender.start()
    transport.close()
    with pytest.raises(RuntimeError, match="listen"):
        await PsRtpSender(footage, 3, mode="tcp-listen").start()


async def test_udp_without_a_listener_keeps_sending(footage: Footage) -> None:
    transport, _, port = await udp_sink()
    transport.close()  # nobody listens there now: ICMP port unreachable
    await asyncio.sleep(0)
    sender = PsRtpSender(footage, 4, host="127.0.0.1", port=port, speed=8)
    await sender.start()
    await asyncio.sleep(0.3)
    assert sender.running and sender.send_errors > 0 and sender.frames_sent > 10
    await sender.stop()


async def test_tcp_peer_going_away_ends_the_stream(footage: Footage) -> None:
    errors: list[str] = []
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = PsRtpSender(footage, 5, mode="tcp-connect", host="127.0.0.1", port=port, on_error=errors.append)
    await sender.start()
    await asyncio.wait_for(sender.wait(), 2)
    assert sender.error and errors == [sender.error] and not sender.running
    server.close()
    await sender.stop()


async def test_tcp_failures_to_connect(footage: Footage) -> None:
    listen = PsRtpSender(footage, 6, mode="tcp-listen", connect_timeout_s=0.1)
    await listen.listen("127.0.0.1")
    await listen.start()
    await asyncio.wait_for(listen.wait(), 2)
    assert "did not connect" in listen.error
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    connect = PsRtpSender(footage, 7, mode="tcp-connect", host="127.0.0.1", port=port)
    await connect.start()
    await asyncio.wait_for(connect.wait(), 2)
    assert "ConnectionRefused" in connect.error


def test_bad_arguments(footage: Footage) -> None:
    with pytest.raises(ValueError, match="mode"):
        PsRtpSender(footage, 1, mode="sctp", host="h", port=1)
    with pytest.raises(ValueError, match="host and port"):
        PsRtpSender(footage, 1)
    with pytest.raises(ValueError, match="mtu_payload"):
        PsRtpSender(footage, 1, mode="tcp-connect", host="h", port=1, mtu_payload=70_000)
    with pytest.raises(ValueError, match="speed"):
        PsRtpSender(footage, 1, host="h", port=1, speed=0)
    no_key = Footage("h264", 2, 2, 25, [f._replace(keyframe=False) for f in footage.frames[1:3]], 0.08)
    with pytest.raises(ValueError, match="key frame"):
        PsRtpSender(no_key, 1, host="h", port=1)
