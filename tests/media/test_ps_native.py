"""The C PS demuxer (camgrid.media.ps.NativePsDemuxer) against the Python reference
(PythonPsDemuxer): the same units (stream id, codec, PTS/DTS, bytes, key frame), the same
counters and codecs after every call, on valid, corrupted, cut and lost-packet streams; and
the ps tests once more in a process with the native module off."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from camgrid.media import fastpath, ps
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, AccessUnit, PythonPsDemuxer, mux_ps
from camgrid.sim.video import synthetic_footage
from camgrid.sim.rtp_sender import packetize

NativePsDemuxer = ps.NativePsDemuxer
needs_native = pytest.mark.skipif(NativePsDemuxer is None, reason=f"native module not loaded: {fastpath.REASON}")

SPS, PPS = b"\x00\x00\x00\x01\x67\x42\x00\x1e\xab", b"\x00\x00\x00\x01\x68\xce\x3c\x80"
IDR, P = b"\x00\x00\x00\x01\x65", b"\x00\x00\x00\x01\x41"
H265_VPS, H265_IDR, H265_P = b"\x00\x00\x00\x01\x40\x01\x0c", b"\x00\x00\x00\x01\x26\x01", b"\x00\x00\x01\x02\x01"


def _unit(u: AccessUnit) -> tuple:
    assert type(u) is AccessUnit
    return (u.stream_id, u.codec, u.pts, u.dts, u.data, u.keyframe)


def _state(d) -> tuple:  # noqa: ANN001
    return (d.resyncs, d.dropped_bytes, d.packs, dict(d.codecs))


def replay(demuxer, ops: list) -> list:  # noqa: ANN001
    """What the demuxer returns for each call, and its counters after it."""
    trace = []
    for op in ops:
        if op == "flush":
            out = demuxer.flush()
        elif op == "lost":
            out = demuxer.lost()
            out = [] if out is None else out
        else:
            out = demuxer.feed(op)
        trace.append(([_unit(u) for u in out], _state(demuxer)))
    return trace


def assert_same(ops: list) -> list:
    native, python = replay(NativePsDemuxer(), ops), replay(PythonPsDemuxer(), ops)
    for i, (n, p) in enumerate(zip(native, python)):
        assert n == p, f"call {i} ({ops[i] if isinstance(ops[i], str) else f'feed {len(ops[i])} bytes'})"
    return python


# -- streams --------------------------------------------------------------------------------------
_video_body = st.lists(st.one_of(st.sampled_from([SPS, PPS, IDR, P, H265_VPS, H265_IDR, H265_P, b"\x00\x00\x01\xba"]),
                                 st.binary(max_size=300)), max_size=6).map(b"".join)
_audio_id = st.sampled_from([AUDIO_ID, 0xC1, 0xCF, 0xDF])
_codec_of = {"video": st.sampled_from(["h264", "h265"]), "audio": st.sampled_from(["g711a", "g711u", "aac"])}


@st.composite
def ps_stream(draw) -> bytes:
    """Video and audio units as devices mux them (map before key frames, or none), PTS with and
    without DTS, units larger than one PES, padding and program ends between them."""
    audio_id = draw(_audio_id)
    streams = {VIDEO_ID: draw(_codec_of["video"]), audio_id: draw(_codec_of["audio"])}
    with_map = draw(st.booleans())
    out, pts = [], draw(st.integers(0, (1 << 33) - 1))
    for _ in range(draw(st.integers(1, 8))):
        pts = (pts + draw(st.integers(0, 7200))) & ((1 << 33) - 1)
        if draw(st.booleans()):
            body = draw(_video_body)
            if draw(st.integers(0, 9)) == 0:
                body += bytes(draw(st.integers(60_000, 140_000)))  # several PES packets
            dts = pts - draw(st.integers(0, 7200)) if draw(st.booleans()) else None
            out.append(mux_ps(VIDEO_ID, body, pts, dts, streams=streams if with_map else None,
                              keyframe=draw(st.booleans())))
        else:
            out.append(mux_ps(audio_id, draw(st.binary(max_size=700)), pts))
        extra = draw(st.sampled_from([b"", b"", b"\x00\x00\x01\xb9", b"\x00\x00\x01\xbe\x00\x04\xff\xff\xff\xff"]))
        out.append(extra)
    return b"".join(out)


@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """Bytes flipped, ranges cut out (a lost packet nobody noticed), garbage put in."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "garbage"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 3000))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
    return bytes(data)


@st.composite
def calls(draw, data: bytes, losing: bool = True) -> list:
    """The stream cut into RTP-sized pieces, with flush (a marker bit) and lost (a sequence gap,
    its piece gone) between some of them."""
    ops, pos = [], 0
    while pos < len(data):
        size = draw(st.sampled_from([1, 7, 188, 1400, 1400, 1400, 4000, 70_000]))
        piece, pos = data[pos:pos + size], pos + size
        event = draw(st.integers(0, 19))
        if event == 0 and losing:
            ops.append("lost")
            continue
        ops.append(piece)
        if event <= 3:
            ops.append("flush")
    ops.append("flush")
    return ops


@needs_native
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_native_demuxer_matches_the_reference_on_damaged_streams(data):
    stream = data.draw(ps_stream())
    if data.draw(st.booleans()):
        stream = data.draw(corrupted(stream))
    assert_same(data.draw(calls(stream)))


@needs_native
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_audio_comes_out_as_the_reference_gives_it(data):
    """Audio only (G.711/AAC per the map, or no map): every chunk a unit of its own."""
    audio_id = data.draw(_audio_id)
    codec = data.draw(_codec_of["audio"])
    payloads = data.draw(st.lists(st.binary(min_size=1, max_size=1200), min_size=1, max_size=10))
    first = mux_ps(VIDEO_ID, SPS + PPS + IDR, 1000, streams={VIDEO_ID: "h264", audio_id: codec}, keyframe=True)
    stream = (first if data.draw(st.booleans()) else b"") + b"".join(
        mux_ps(audio_id, p, 3600 * (i + 1)) for i, p in enumerate(payloads))
    trace = assert_same(data.draw(calls(stream, losing=False)))
    audio = [u for units, _ in trace for u in units if u[0] == audio_id]
    assert [u[4] for u in audio] == payloads and all(u[5] for u in audio)


_pieces = st.one_of(st.sampled_from([b"\x00\x00\x01\xba", b"\x00\x00\x01\xe0", b"\x00\x00\x01\xc0", b"\x00\x00\x01\xbc",
                                     b"\x00\x00\x01\xb9", b"\x00\x00\x01\xbd", b"\x00\x00\x01", b"\x00\x00", b"\x44",
                                     b"\x80\xc0\x0a", b"\x80\x80\x05", b"\x00\x10", b"\xff\xff"]),
                    st.binary(max_size=24))


@needs_native
@hsettings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.lists(_pieces, max_size=12).map(b"".join), st.sampled_from(["flush", "lost"])), max_size=12))
def test_native_demuxer_matches_the_reference_on_ps_like_noise(ops):
    assert_same(ops)


@needs_native
def test_real_footage_with_lost_packets():
    footage = synthetic_footage("h264", 320, 240, 25, 2, gop_s=0.5)
    streams = {VIDEO_ID: "h264", AUDIO_ID: "g711a"}
    packets = []
    for i, frame in enumerate(footage.frames):
        ps_bytes = mux_ps(VIDEO_ID, frame.data, frame.pts, streams=streams, keyframe=frame.keyframe)
        ps_bytes += mux_ps(AUDIO_ID, bytes([i]) * 320, frame.pts)
        packets += [(p[12:], bool(p[1] & 0x80)) for p in packetize(ps_bytes, ssrc=1, seq=0, timestamp=frame.pts)]
    rng = random.Random(7)
    for loss in (0.0, 0.02, 0.1):
        ops = []
        for payload, marker in packets:
            if rng.random() < loss:
                ops.append("lost")
                continue
            ops.append(payload)
            if marker:
                ops.append("flush")
        trace = assert_same(ops)
        units = [u for out, _ in trace for u in out]
        if loss == 0:
            video = [u for u in units if u[0] == VIDEO_ID]
            assert [u[4] for u in video] == [f.data for f in footage.frames]
            assert [u[5] for u in video] == [f.keyframe for f in footage.frames]


@needs_native
@hsettings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_flushes_losses_and_cuts_while_a_video_pes_is_still_arriving(data):
    """While a video PES arrives piece by piece, its payload goes from each piece straight into
    the unit it will join (the native demuxer's spill). A flush there (the unit before it
    finishes; the PES goes on into the next), a loss, a pack header cutting it (also one split
    across pieces, and one right after its header), a cut-out range, pieces of any size and
    frames of one or several PES (with and without PTS in the later ones) give what the reference gives."""
    rng = random.Random(data.draw(st.integers(0, 1 << 30)))
    streams = {VIDEO_ID: data.draw(st.sampled_from(["h264", "h265"])), AUDIO_ID: "aac"}
    stream = b""
    for i in range(data.draw(st.integers(1, 4))):
        size = data.draw(st.sampled_from([0, 1, 5, 300, 1400, 3000, 65_400, 65_401, 140_000]))
        body = (IDR if i == 0 else P) + rng.randbytes(size)
        pts = 3600 * (i + 1)
        stream += mux_ps(VIDEO_ID, body, pts, pts - 1800 if i % 2 else None, streams=streams, keyframe=i == 0)
        if data.draw(st.booleans()):  # a later PES of the same frame without, or with the same, PTS
            extra = rng.randbytes(data.draw(st.sampled_from([1, 700, 2900])))
            header = bytes([0x80, 0x00, 0]) if data.draw(st.booleans()) else mux_ps(VIDEO_ID, b"", pts)[14 + 6:14 + 14]
            stream += b"\x00\x00\x01\xe0" + (len(header) + len(extra)).to_bytes(2, "big") + header + extra
        if data.draw(st.booleans()):
            stream += mux_ps(AUDIO_ID, rng.randbytes(200), pts)
    if data.draw(st.booleans()):  # a lost packet nobody noticed: the next pack header cuts a PES
        at = data.draw(st.integers(0, len(stream)))
        stream = stream[:at] + stream[at + data.draw(st.integers(0, 2000)):]
    ops, at = [], 0
    while at < len(stream):
        size = data.draw(st.sampled_from([1, 2, 3, 4, 7, 600, 1388, 1400, 5000]))
        ops.append(stream[at:at + size])
        at += size
        event = data.draw(st.sampled_from([None] * 6 + ["flush", "lost"]))
        if event:
            ops.append(event)
    assert_same(ops + ["flush"])


def _small_stream() -> bytes:
    """A key frame with the map, audio, a frame with DTS in two PES packets, audio, a frame: ~1.2 kB."""
    streams = {VIDEO_ID: "h264", AUDIO_ID: "aac"}
    continued = b"\x00\x00\x01\xe0\x00\x60\x80\x00\x00" + bytes(range(93))  # a second PES, no PTS
    return (mux_ps(VIDEO_ID, SPS + PPS + IDR + b"\x11" * 300, 90000, streams=streams, keyframe=True)
            + mux_ps(AUDIO_ID, b"\xd5" * 160, 90000)
            + mux_ps(VIDEO_ID, P + bytes(range(200)), 93600, 90000) + continued
            + mux_ps(AUDIO_ID, b"\xd5" * 160, 93600) + mux_ps(VIDEO_ID, P + b"\x22" * 50, 97200))


@needs_native
def test_every_cut_out_range_of_a_small_stream():
    """A lost packet nobody noticed, at every offset: the lost-pack rule's edges (a PES cut right
    after its flags byte, inside its PTS) are reached exactly here."""
    data = _small_stream()
    for at in range(len(data)):
        for size in (1, 3, 9, 17):
            assert_same([data[:at] + data[at + size:], "flush"])
        resume = data.find(b"\x00\x00\x01\xba", at + 1)  # the rest of the pack is gone too
        assert_same([data[:at] + data[resume:] if resume > 0 else data[:at], "flush"])


@needs_native
def test_every_split_of_a_damaged_stream():
    """Two feeds at every split point: a pack header that straddles two payloads inside an
    incomplete video PES is found by the incremental search as by a full one."""
    data = _small_stream()
    cut = data.find(b"\x00\x00\x01\xe0", 400)
    damaged = data[:cut + 40] + data[data.find(b"\x00\x00\x01\xba", cut):]
    for at in range(len(damaged) + 1):
        assert_same([damaged[:at], damaged[at:], "flush"])
        assert_same([damaged[:at // 2], damaged[at // 2:at], damaged[at:], "flush"])


@needs_native
def test_a_pack_header_at_every_offset_of_a_video_pes():
    """The lost-packet search (memchr for each BA, then the 00 00 01 before it): a pack header (or
    only its 01 BA, or 00 01 BA) at every offset of video PES bodies of many lengths, in one feed
    and split in two, is found where the reference finds it, and no false one is."""
    pack = mux_ps(VIDEO_ID, P + b"\x33" * 30, 7200)[:14]
    rng = random.Random(5)
    for length in (1, 2, 3, 4, 15, 16, 17, 18, 19, 20, 31, 32, 33, 34, 35, 36, 47, 63, 64, 65, 66, 67, 100, 131):
        body = bytes(rng.choice([0, 1, 0xBA, 0x41, 0xFF]) for _ in range(length))
        for at in range(length + 1):
            for marker in (b"\x00\x00\x01\xba", b"\x01\xba", b"\x00\x01\xba", b"\x00\x00\x01"):
                pes = mux_ps(VIDEO_ID, P + body[:at] + marker + body[at:], 3600)
                data = pes + pack + mux_ps(VIDEO_ID, P + b"\x44" * 20, 10800)
                assert_same([data, "flush"])
                assert_same([data[:len(pes) // 2], data[len(pes) // 2:], "flush"])


@needs_native
def test_a_pack_header_cutting_a_spilling_pes_at_every_offset_and_split():
    """A video PES still arriving is searched piece by piece across the pieces' edges (the last 3
    bytes of what came before, then the new piece): a pack header at every offset of its payload,
    including in its first bytes, with the pieces split at every position around it, in pieces
    of 1, 2, 3, 5 and 1400 bytes, is found where the reference finds it. Also PES headers whose
    PTS flag is set without room for a PTS (the cut unit then finishes as the reference decides)."""
    pack = mux_ps(VIDEO_ID, P + b"\x33" * 30, 7200)[:14]
    after = mux_ps(VIDEO_ID, P + b"\x44" * 20, 10800)
    rng = random.Random(11)
    body = bytes(rng.choice([0, 1, 0xBA, 0x41, 0xFF]) for _ in range(90))
    heads = [bytes([0x80, 0x80, 5]) + mux_ps(VIDEO_ID, b"", 3600)[14 + 9:14 + 14],  # with a PTS
             bytes([0x80, 0x00, 0]), bytes([0x80, 0x80, 0]), bytes([0x80, 0x80, 2, 0xFF, 0xFF])]
    for head in heads:
        for at in range(40):
            payload = body[:at] + b"\x00\x00\x01\xba" + body[at:]
            pes = b"\x00\x00\x01\xe0" + (len(head) + len(payload)).to_bytes(2, "big") + head + payload
            lead = mux_ps(VIDEO_ID, IDR + b"\x55" * 10, 3600)  # a unit being gathered when the PES comes
            data = lead + pack + pes + pack + after
            start = len(lead) + len(pack) + 6 + len(head)  # where the payload begins
            for first in range(start - 1, start + at + 6):
                for size in (1, 2, 3, 5, 1400):
                    ops = [data[:first]] + [data[i:i + size] for i in range(first, len(data), size)]
                    assert_same(ops + ["flush"])


@needs_native
@hsettings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([b"\x00", b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x67", b"\x68", b"\x40",
                                           b"\x42", b"\x44", b"\x65", b"\x26", b"\x01"]), st.binary(max_size=4)), max_size=12)
       .map(b"".join))
def test_the_codec_is_guessed_from_native_nal_bounds_as_from_the_python_scan(data):
    """guess_video_codec reads the NAL headers through the C scan when it is loaded; the Python
    scan (the reference) sees also units of nothing but zeros, which name no parameter set."""
    native = ps.guess_video_codec(data)
    saved, ps._native = ps._native, None
    try:
        assert ps.guess_video_codec(data) == native
    finally:
        ps._native = saved


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_a_stream_joined_mid_gop_without_a_map_is_never_taken_for_the_other_codec(codec):
    """Before the first key frame only slices arrive; an H.264 P slice's header byte (41) reads
    as an H.265 VPS by its type alone. Those frames stay "unknown" and the first key frame's
    parameter sets name the codec, in both demuxers."""
    footage = synthetic_footage(codec, 320, 240, 25, 2, gop_s=0.4)
    start = next(i for i, f in enumerate(footage.frames) if i and not f.keyframe)  # mid-GOP
    data = b"".join(mux_ps(VIDEO_ID, f.data, f.pts) for f in footage.frames[start:])  # no map at all
    for demuxer in ([NativePsDemuxer()] if NativePsDemuxer is not None else []) + [PythonPsDemuxer()]:
        units = demuxer.feed(data) + demuxer.flush()
        first_key = next(i for i, u in enumerate(units) if u.keyframe and u.codec != "unknown")
        assert first_key > 0 and {u.codec for u in units[:first_key]} == {"unknown"}
        assert {u.codec for u in units[first_key:]} == {codec}
        assert sum(u.keyframe for u in units[first_key:]) == sum(f.keyframe for f in footage.frames[start:])


# -- units built in C -------------------------------------------------------------------------------
_nal_soup = st.lists(st.one_of(st.sampled_from([SPS, PPS, IDR, P, H265_VPS, H265_IDR, H265_P, b"\x00", b"\x00\x00\x01",
                                                b"\x01", b"\x05", b"\x45", b"\x25", b"\x20", b"\x40", b"\x42", b"\x44"]),
                               st.binary(max_size=6)), max_size=10).map(b"".join)
_codecs = st.dictionaries(st.sampled_from([VIDEO_ID, 0xE1, AUDIO_ID, 0xBD]),
                          st.sampled_from(["h264", "h265", "aac", "g711a", "unknown", None]), max_size=3)
_timestamp = st.one_of(st.none(), st.integers(0, (1 << 33) - 1))


def _native_unit(codecs: dict, stream_id: int, pts, dts, data: bytes) -> AccessUnit:
    import gc
    unit = fastpath.native.make_unit(AccessUnit, codecs, stream_id, pts, dts, data)
    assert type(unit) is AccessUnit and not gc.is_tracked(unit)  # only ints, strings, bytes: no cycle possible
    return unit


@needs_native
@hsettings(max_examples=600, deadline=None)
@given(_codecs, st.sampled_from([VIDEO_ID, 0xE1, 0xEF, 0xDF, AUDIO_ID, 0xBD, 0xF0]), _timestamp, _timestamp, _nal_soup)
def test_units_built_in_c_are_those_make_unit_builds(codecs, stream_id, pts, dts, data):
    """The native demuxer builds each unit itself (_native.make_unit: codec from the map or guessed
    and kept, key-frame flag, the AccessUnit filled slot by slot): the same unit and the same
    codecs afterwards as ps.make_unit, the reference, on any bytes, for video and audio ids."""
    theirs, ours = dict(codecs), dict(codecs)
    expected = ps.make_unit(theirs, stream_id, pts, dts, data)
    got = _native_unit(ours, stream_id, pts, dts, data)
    assert got == expected and _unit(got) == _unit(expected) and ours == theirs
    assert repr(got) == repr(expected)


@needs_native
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_units_built_in_c_on_real_frames(codec):
    footage = synthetic_footage(codec, 320, 240, 25, 2, gop_s=0.4)
    for with_map in (True, False):
        theirs, ours = ({VIDEO_ID: codec} if with_map else {}), ({VIDEO_ID: codec} if with_map else {})
        for f in footage.frames:
            expected = ps.make_unit(theirs, VIDEO_ID, f.pts, f.pts, f.data)
            assert _native_unit(ours, VIDEO_ID, f.pts, f.pts, f.data) == expected
            assert expected.keyframe == f.keyframe and ours == theirs


@needs_native
def test_native_unit_builder_refuses_classes_it_cannot_fill():
    from dataclasses import dataclass

    @dataclass
    class WithDict:
        stream_id: int
        codec: str
        pts: int
        dts: int
        data: bytes
        keyframe: bool = False

    @dataclass(slots=True)
    class Short:
        stream_id: int
        codec: str

    for cls in (WithDict, Short, int, None):
        with pytest.raises((TypeError, AttributeError)):
            fastpath.native.make_unit(cls, {}, VIDEO_ID, 1, 1, IDR)
        with pytest.raises((TypeError, AttributeError)):
            fastpath.native.PsDemuxer(ps.make_unit, {}, 1 << 20, cls if cls is not None else 3)
    with pytest.raises(ValueError):
        fastpath.native.make_unit(AccessUnit, {}, 256, 1, 1, IDR)


# -- the C type itself ------------------------------------------------------------------------------
@needs_native
def test_native_demuxer_refuses_misuse_without_crashing():
    raw = fastpath.native.PsDemuxer
    bare = raw.__new__(raw)
    with pytest.raises(RuntimeError):
        bare.feed(b"\x00\x00\x01\xba")
    for args in ((), (None, {}, 0), (len, [], 0), (len, {}, -1), (len, {}, "x")):
        with pytest.raises((TypeError, ValueError)):
            raw(*args)
    d = NativePsDemuxer()
    for junk in (None, 3, "text", [b"x"]):
        with pytest.raises(TypeError):
            d.feed(junk)
    assert d.feed(bytearray(b"\x00\x00")) == [] and d.feed(memoryview(b"\x01\xb9")) == []

    def failing(*args):  # noqa: ANN002, ANN202
        raise KeyError("policy failed")
    broken = raw(failing, {}, 1 << 20)
    unit = mux_ps(AUDIO_ID, b"abc", 90000)
    assert broken.feed(unit) == []
    with pytest.raises(KeyError):
        broken.flush()

    holder: list = []

    def reentrant(*args):  # noqa: ANN002, ANN202
        holder[0].feed(unit)
        return None
    again = raw(reentrant, {}, 1 << 20)
    holder.append(again)
    again.feed(unit)
    with pytest.raises(RuntimeError, match="inside its own make_unit"):
        again.flush()


# -- native off -----------------------------------------------------------------------------------------
def test_the_ps_tests_pass_with_native_off():
    env = dict(os.environ, CAMGRID_NATIVE="0")
    here = Path(__file__).resolve().parent
    run = subprocess.run(
        [sys.executable, "-c",
         "import sys, pytest\n"
         "from camgrid.media import ps\n"
         "assert ps.PsDemuxer is ps.PythonPsDemuxer and ps.NativePsDemuxer is None\n"
         "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))",
         str(here / "test_ps.py"), str(here / "test_stream_batches.py")],
        env=env, capture_output=True, text=True, cwd=here.parents[1], timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
