"""UdpDrain with RTP datagrams of every size (valid ones, not only garbage): below, at and just over
2 KiB, and up to the largest UDP datagram, each frame cut at another size; over real loopback
sockets they give what the pure-Python path gives, and the long ones go through the native run
too, not only through Python."""

from __future__ import annotations

import socket

import pytest

from camgrid.media import fastpath, ingest
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, PythonPsDemuxer, mux_ps
from camgrid.media.stream import MediaStream, StreamSpec
from camgrid.sim.rtp_sender import packetize
from camgrid.sim.video import synthetic_footage

pytestmark = pytest.mark.skipif(fastpath.UdpDrain is None, reason=f"native UdpDrain not available: {fastpath.REASON}")

SSRC = 0x5151
RTP_HEADER = 12
# Payload sizes that put the datagram below, at and just over 2 KiB, and far over it.
PAYLOADS = [1388, 2048 - RTP_HEADER, 2049 - RTP_HEADER, 2100, 9000, 30_000, 65_507 - RTP_HEADER]


@pytest.fixture(scope="module")
def frames() -> list[list[bytes]]:
    """Each frame's RTP datagrams: 2 s of 640x360 video (large key frames) with G.711 audio, each
    frame cut at another of PAYLOADS."""
    footage = synthetic_footage("h264", 640, 360, 25, 2, gop_s=0.4)
    out, seq = [], 1
    for i, frame in enumerate(footage.frames):
        data = mux_ps(VIDEO_ID, frame.data, frame.pts, streams={VIDEO_ID: "h264", AUDIO_ID: "g711a"},
                      keyframe=frame.keyframe)
        data += mux_ps(AUDIO_ID, bytes([0xD5 ^ (i & 0xFF)]) * 320, frame.pts + 1800)
        packets = packetize(data, ssrc=SSRC, seq=seq, timestamp=frame.pts, mtu_payload=PAYLOADS[i % len(PAYLOADS)])
        out.append(packets)
        seq += len(packets)
    return out


def test_datagrams_of_every_size_give_what_the_python_path_gives(frames):
    drain, tx = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    native = MediaStream(StreamSpec("native", ssrc=SSRC), created_at=0.0)
    python = MediaStream(StreamSpec("python", ssrc=SSRC), created_at=0.0)
    python.demuxer = PythonPsDemuxer()
    got_native, got_python = [], []
    native.consumers.append(lambda u: got_native.append((u.stream_id, u.codec, u.pts, u.dts, u.data, u.keyframe)))
    python.consumers.append(lambda u: got_python.append((u.stream_id, u.codec, u.pts, u.dts, u.data, u.keyframe)))
    taken_long = 0
    try:
        drain.add(rx, native)
        for packets in frames:
            for data in packets:
                tx.sendto(data, rx.getsockname())
                python.on_packet(data, 1.0)
            while rows := drain._native.drain():
                for stream, units, count, pt, ssrc, wire, rest in rows:
                    if count:
                        taken_long += wire > count * 2048  # the run in C held a datagram over 2 KiB
                        stream.on_run(units, count, pt, ssrc, wire, 1.0)
                    if rest is not None:
                        stream.on_datagrams(rest, 1.0)
        assert got_native == got_python
        assert len(got_native) > 75  # 50 frames and their audio
        assert native.packets == python.packets == sum(map(len, frames))
        assert (native.bytes, native.bad_packets, native.lost_packets) == (python.bytes, 0, 0)
        assert taken_long > 5
    finally:
        drain.close()
        tx.close()
        rx.close()
