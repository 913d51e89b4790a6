"""MediaStream.on_datagrams (a socket read's batch; in-order runs through the native module)
against on_packet for each datagram: the same units, the same counters, whatever arrives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from camgrid.media import fastpath
from camgrid.media.ps import VIDEO_ID, mux_ps
from camgrid.media.rtp import RtpPacket
from camgrid.media.stream import MediaStream, StreamSpec
from camgrid.sim.video import synthetic_footage
from camgrid.sim.rtp_sender import packetize

SSRC = 0x1234


@pytest.fixture(scope="module")
def datagrams():
    footage = synthetic_footage("h264", 320, 240, 25, 2, gop_s=0.5)
    out, seq = [], 65_500  # sequence numbers wrap during the stream
    for i, frame in enumerate(footage.frames):
        ps = mux_ps(VIDEO_ID, frame.data, frame.pts, streams={VIDEO_ID: "h264"}, keyframe=frame.keyframe)
        packets = packetize(ps, ssrc=SSRC, seq=seq, timestamp=frame.pts, mtu_payload=300 + 97 * (i % 5))
        out += packets
        seq = (seq + len(packets)) & 0xFFFF
    return out


def _spoil(packets: list[bytes], rng: random.Random, rate: float) -> list[bytes]:
    """Loss, duplicates, reordering, foreign SSRCs, padded/extended headers, garbage."""
    out = []
    for p in packets:
        r = rng.random()
        if r < rate:
            continue  # lost
        if r < 2 * rate:
            out += [p, p]  # duplicated
        elif r < 3 * rate and out:
            out.insert(len(out) - 1, p)  # swapped with the one before
        elif r < 3.5 * rate:
            out += [p[:8] + b"\x00\x00\x99\x99" + p[12:], p]  # a foreign SSRC first
        elif r < 4 * rate:
            pkt = RtpPacket(p[1] & 0x7F, int.from_bytes(p[2:4], "big"), 0, SSRC, p[12:], bool(p[1] & 0x80),
                            extension=(0xBEDE, b"\x00" * 4))
            out.append(pkt.to_bytes())  # the same packet with a header extension
        elif r < 4.3 * rate:
            out += [bytes(rng.randrange(256) for _ in range(rng.randrange(20))), p]  # garbage first
        else:
            out.append(p)
    return out


def _run(packets: list[bytes], batches: list[int], spec: StreamSpec, batched: bool) -> tuple[dict, list]:
    stream = MediaStream(spec, created_at=0.0)
    units = []
    stream.consumers.append(lambda u: units.append((u.codec, u.pts, u.dts, u.data, u.keyframe)))
    pos, now = 0, 1.0
    for size in batches:
        batch = packets[pos:pos + size]
        pos += size
        if batched:
            stream.on_datagrams(batch, now)
        else:
            for data in batch:
                stream.on_packet(data, now)
        now += 0.07
        stream.poll(now)
    now += 1.0
    stream.poll(now)
    stats = stream.stats()
    stats["payload_types"] = sorted(stream.payload_types)
    stats["jitter"] = (stream.jitter.delivered, stream.jitter.lost, stream.jitter.late, stream.jitter.duplicates)
    stats["demux"] = (stream.demuxer.resyncs, stream.demuxer.dropped_bytes, stream.demuxer.packs)
    stats["live"] = (stream.live.frames, stream.live.keyframes, stream.live.bad_frames)
    return stats, units


@pytest.mark.skipif(fastpath.native is None, reason=f"native module not loaded: {fastpath.REASON}")
@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.002, 0.02, 0.1]),
       ssrc=st.sampled_from([SSRC, None]), strict=st.booleans())
def test_batches_give_what_packets_one_by_one_give(datagrams, seed, rate, ssrc, strict):
    rng = random.Random(seed)
    packets = _spoil(datagrams, rng, rate)
    batches, left = [], len(packets)
    while left > 0:
        batches.append(min(left, rng.choice([1, 2, 7, 64, 64, 200])))
        left -= batches[-1]
    spec = StreamSpec("s", ssrc=ssrc, ssrc_strict=strict)
    one_by_one, batched = _run(packets, batches, spec, False), _run(packets, batches, spec, True)
    assert batched[0] == one_by_one[0]
    assert batched[1] == one_by_one[1]
    if rate == 0.0:
        assert len(one_by_one[1]) == 50 and one_by_one[0]["lost_packets"] == 0


def test_batches_without_the_native_module_take_each_packet(datagrams, monkeypatch):
    import camgrid.media.stream as stream_module
    monkeypatch.setattr(stream_module, "_native", None)
    spec = StreamSpec("s", ssrc=SSRC)
    batches = [64] * (len(datagrams) // 64 + 1)
    assert _run(datagrams, batches, spec, True) == _run(datagrams, batches, spec, False)
