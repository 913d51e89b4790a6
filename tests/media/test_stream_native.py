"""MediaStream.on_datagrams with the native demuxer's combined call (NativePsDemuxer.feed_rtp: a
run of in-order RTP datagrams checked and demuxed in one call) against the pure-Python path
(PythonPsDemuxer, on_packet for each datagram): the same access units, the same key-frame audio
announcements, the same stream, reorder-buffer and demuxer counters and the same RTP state after
every batch, whatever arrives (loss, duplicates, reordering, SSRC changes, padding, extensions,
CSRCs, payload-type changes, empty payloads, garbage), over UDP and TCP."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from camgrid.media import fastpath, ps
from camgrid.media.ps import VIDEO_ID, PythonPsDemuxer, mux_ps
from camgrid.media.rtp import RtpPacket
from camgrid.media.stream import MediaStream, StreamSpec
from rtp_faults import footage_packets, padded, rewrite, spoil_stream

NativePsDemuxer = ps.NativePsDemuxer
pytestmark = pytest.mark.skipif(NativePsDemuxer is None, reason=f"native module not loaded: {fastpath.REASON}")

SSRC, OTHER = 0x1234, 0x5678
# The map at each key frame lists another audio codec (or none), so a key frame handled with the
# codecs of a later map would announce the wrong one.
AUDIO_BY_GOP = ["g711a", "g711u", None, "g711a", "aac"]


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    """2 s of footage twice (100 frames, 10 key frames) in RTP packets; the sequence numbers wrap."""
    return footage_packets(SSRC, 65_480, AUDIO_BY_GOP, copies=2)


def spoil(packets: list[bytes], rng: random.Random, rate: float, restart: bool = False) -> list[bytes]:
    return spoil_stream(packets, rng, rate, SSRC, OTHER, restart)


def _stats(stream: MediaStream) -> tuple:
    s = stream.stats()
    jb = stream.jitter
    return (s, sorted(stream.payload_types),
            None if jb is None else (jb._next, jb.held, jb.delivered, jb.lost, jb.late, jb.duplicates),
            (stream.demuxer.resyncs, stream.demuxer.dropped_bytes, stream.demuxer.packs, dict(stream.demuxer.codecs)),
            (stream.live.frames, stream.live.keyframes, stream.live.bad_frames, stream.live._announced))


def run(packets: list[bytes], batches: list[int], spec: StreamSpec, native: bool) -> tuple[list, dict]:
    """What the stream gave after each batch: units, announcements, counters; and how often each
    path ran (on_packet calls, feed_rtp calls) on the native side."""
    stream = MediaStream(spec, created_at=0.0)
    calls = {"on_packet": 0, "feed_rtp": 0}
    if native:
        assert type(stream.demuxer) is NativePsDemuxer

        class Counting(NativePsDemuxer):
            __slots__ = ()

            def feed_rtp(self, *args):  # noqa: ANN002, ANN202
                calls["feed_rtp"] += 1
                return super().feed_rtp(*args)

        stream.demuxer = Counting()
        on_packet = stream.on_packet

        def counted(data: bytes, now: float) -> None:
            calls["on_packet"] += 1
            on_packet(data, now)

        stream.on_packet = counted  # type: ignore[method-assign]
    else:
        stream.demuxer = PythonPsDemuxer()
    got: list = []
    stream.consumers.append(lambda u: got.append(("unit", u.stream_id, u.codec, u.pts, u.dts, u.data, u.keyframe)))
    announce = stream.live.announce_audio

    def announced(codec: str | None) -> None:
        got.append(("announce", codec))
        announce(codec)

    stream.live.announce_audio = announced  # type: ignore[method-assign]
    trace, pos, now = [], 0, 1.0
    for size in batches:
        batch = packets[pos:pos + size]
        pos += size
        if native:
            stream.on_datagrams(batch, now)
        else:
            for data in batch:
                stream.on_packet(data, now)
        trace.append((list(got), _stats(stream)))
        got.clear()
        now += 0.07
        stream.poll(now)
        trace.append((list(got), _stats(stream)))
        got.clear()
    stream.poll(now + 5.0)
    trace.append((list(got), _stats(stream)))
    return trace, calls


def assert_same(packets: list[bytes], batches: list[int], spec: StreamSpec) -> dict:
    native, calls = run(packets, batches, spec, True)
    python, _ = run(packets, batches, spec, False)
    assert len(native) == len(python)
    for i, (n, p) in enumerate(zip(native, python)):
        assert n[0] == p[0], f"step {i}: units"
        assert n[1] == p[1], f"step {i}: counters"
    return calls


def _batches(rng: random.Random, total: int) -> list[int]:
    out = []
    while total > 0:
        out.append(min(total, rng.choice([1, 3, 16, 64, 64, 200])))
        total -= out[-1]
    return out


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.001, 0.005, 0.02, 0.08]),
       ssrc=st.sampled_from([SSRC, None]), strict=st.booleans(), transport=st.sampled_from(["udp", "udp", "tcp-passive"]),
       restart=st.booleans())
@example(seed=192050, rate=0.0, ssrc=SSRC, strict=True, transport="udp", restart=True)  # restarts at once: no run to take
def test_the_combined_call_gives_what_the_python_path_gives(packets, seed, rate, ssrc, strict, transport, restart):
    rng = random.Random(seed)
    spoiled = spoil(packets, rng, rate, restart)
    batches = _batches(rng, len(spoiled))
    calls = assert_same(spoiled, batches, StreamSpec("s", transport, ssrc=ssrc, ssrc_strict=strict))
    if rate == 0.0 and not restart and max(batches) > 1:
        # Untouched packets in batches: the combined call must have run. (A device that restarts
        # at its first packet under a strict SSRC check sends nothing the call may take.)
        assert calls["feed_rtp"] > 0


@pytest.fixture(scope="module")
def mixed_packets() -> list[bytes]:
    """The footage in H.264, then in H.265 (the codec changes at a key frame, with its map), with
    AAC and G.711 audio by GOP."""
    return footage_packets(SSRC, 65_400, ["aac", "g711u", None, "g711a", "aac"], copies=2, video_by_copy=("h264", "h265"))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.005, 0.02, 0.08]),
       transport=st.sampled_from(["udp", "udp", "tcp-passive"]), restart=st.booleans())
def test_the_combined_call_gives_what_the_python_path_gives_across_a_codec_change(mixed_packets, seed, rate, transport,
                                                                                 restart):
    """H.264 then H.265 with AAC and G.711, under loss, reordering, duplicates and restarts: the
    units built in C (codec, key frames) and everything the stream counts, as in Python."""
    rng = random.Random(seed)
    spoiled = spoil(mixed_packets, rng, rate, restart)
    assert_same(spoiled, _batches(rng, len(spoiled)), StreamSpec("s", transport, ssrc=SSRC))


def test_a_codec_change_comes_out_as_the_python_path_gives_it(mixed_packets):
    assert_same(mixed_packets, [64] * (len(mixed_packets) // 64 + 1), StreamSpec("s", "udp", ssrc=SSRC))
    stream = MediaStream(StreamSpec("s", "udp", ssrc=SSRC), created_at=0.0)
    video: list = []
    stream.consumers.append(lambda u: video.append((u.codec, u.keyframe)) if u.is_video else None)
    stream.on_datagrams(mixed_packets, 1.0)
    assert [codec for codec, _ in video] == ["h264"] * 50 + ["h265"] * 50
    assert sum(key for _, key in video) == 10 and stream.video_frames == 100


@pytest.mark.parametrize("transport", ["udp", "tcp-passive"])
@pytest.mark.parametrize("batch", [1, 64, 100_000])
def test_a_clean_stream_goes_through_the_combined_call(packets, transport, batch):
    """Only the first packet takes on_packet; every unit and announcement comes out as in Python."""
    spec = StreamSpec("s", transport, ssrc=SSRC)
    calls = assert_same(packets, [batch] * (len(packets) // batch + 1), spec)
    assert calls["on_packet"] == 1
    stream = MediaStream(spec, created_at=0.0)
    stream.on_datagrams(packets, 1.0)
    assert stream.video_frames == 100 and stream.lost_packets == 0 and stream.packets == len(packets)
    assert stream.audio_units > 0 and stream.live.keyframes == 10


def test_a_key_frame_ends_the_run_so_it_is_announced_with_its_own_map(packets):
    """One batch holding several GOPs, whose maps list different audio codecs: each key frame
    announces the codec of the maps up to its own (a map without audio leaves the codec it had),
    not that of a later map in the batch."""
    spec = StreamSpec("s", ssrc=SSRC)
    trace, calls = run(packets, [len(packets)], spec, True)
    announced = [codec for kind, *rest in trace[0][0] if kind == "announce" for codec in rest]
    assert announced == ["g711a", "g711u", "g711u", "g711a", "aac"] * 2
    assert [codec for kind, *rest in run(packets, [len(packets)], spec, False)[0][0][0] if kind == "announce"
            for codec in rest] == announced
    assert calls["on_packet"] == 1 and calls["feed_rtp"] == 1 + 2 * len(AUDIO_BY_GOP)


def test_feed_rtp_takes_the_run_and_stops_where_python_must_take_over(packets):
    d = NativePsDemuxer()
    first = packets[:40]
    seq0 = int.from_bytes(first[0][2:4], "big")
    # the first key frame ends the run after the datagram that completed it
    units, count, pt, last_ssrc, wire = d.feed_rtp(first, 0, SSRC, seq0)
    assert count >= 1 and pt == 96 and last_ssrc == SSRC and wire == sum(map(len, first[:count]))
    assert units and units[-1].keyframe and first[count - 1][1] & 0x80
    reference, expect = PythonPsDemuxer(), []
    for p in first[:count]:
        expect += reference.feed(p[12:])
        if p[1] & 0x80:
            expect += reference.flush()
    assert [(u.stream_id, u.pts, u.data, u.keyframe) for u in units] == [(u.stream_id, u.pts, u.data, u.keyframe) for u in expect]
    nxt = (seq0 + count) & 0xFFFF
    assert d.feed_rtp(first, count, SSRC, (nxt + 1) & 0xFFFF)[1:] == (0, -1, -1, 0)  # the wrong number
    assert d.feed_rtp(first, count, OTHER, nxt)[1:] == (0, -1, -1, 0)  # another SSRC
    assert d.feed_rtp([bytearray(first[count])], 0, SSRC, nxt)[1] == 0  # not bytes
    assert d.feed_rtp([padded(first[count], 4)], 0, SSRC, nxt)[1] == 0
    assert d.feed_rtp([first[count][:11]], 0, SSRC, nxt)[1] == 0
    assert d.feed_rtp(first, len(first), SSRC, nxt) == ([], 0, -1, -1, 0)  # nothing left
    mixed = [first[count], rewrite(first[count + 1], payload_type=8)]
    assert d.feed_rtp(mixed, 0, -1, nxt)[1:3] == (1, 96)  # the run keeps one payload type
    assert d.feed_rtp(mixed, 1, -1, -1)[1:3] == (1, 8)  # any SSRC, any number (TCP)
    for bad in ((first, -1, SSRC, nxt), (first, 41, SSRC, nxt), (first, 0, 1 << 32, nxt), (first, 0, SSRC, 1 << 16),
                (tuple(first), 0, SSRC, nxt)):
        with pytest.raises((ValueError, TypeError)):
            d.feed_rtp(*bad)


def test_feed_rtp_is_refused_inside_make_unit():
    """make_unit runs Python code; a demuxer fed from inside it would corrupt its own state."""
    def reenter(codecs, sid, pts, dts, data):  # noqa: ANN001, ANN202
        with pytest.raises(RuntimeError):
            d.feed_rtp([RtpPacket(96, 1, 0, SSRC, b"").to_bytes()], 0, SSRC, 1)
        return ps.make_unit(codecs, sid, pts, dts, data)

    d = ps._native.PsDemuxer(reenter, ps.STREAM_TYPES, ps.MAX_BUFFER)
    data = mux_ps(VIDEO_ID, b"\x00\x00\x00\x01\x41" + bytes(100), 9000)
    units, count, *_ = d.feed_rtp([RtpPacket(96, 0, 0, SSRC, data, marker=True).to_bytes()], 0, SSRC, 0)
    assert count == 1 and len(units) == 1 and units[0].pts == 9000
