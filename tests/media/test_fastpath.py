"""The native media loops (camgrid/media/_native.c) against their pure-Python references.

Byte-identical output on random and real Annex B, the same errors, crash-free on hostile
arguments; and the fallback (CAMGRID_NATIVE=0) runs the media tests in a process of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from test_h26x import STREAMS, encode

from camgrid.media import fastpath
from camgrid.media.fmp4 import FragmentWriter, Sample, read_boxes
from camgrid.media.h26x import nal_bounds, to_length_prefixed
from camgrid.media.segment_file import SegmentWriter

ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = ROOT.parent / "shared" / "footage" / "road-car-detection.mp4"

native = fastpath.native
needs_native = pytest.mark.skipif(native is None, reason=f"native module not loaded: {fastpath.REASON}")


def python_lp(data: bytes) -> bytes:
    return to_length_prefixed([data[a:b] for a, b in nal_bounds(data)])


# -- random Annex B -----------------------------------------------------------------------------
START_CODES = [b"\x00\x00\x01", b"\x00\x00\x00\x01"]
_pieces = st.one_of(
    st.sampled_from(START_CODES + [b"\x00", b"\x00\x00", b"\x01", b"\x00\x00\x03", b"\x00\x00\x00", b"\x65", b"\x67\x42"]),
    st.binary(max_size=40),
)
annexb_like = st.lists(_pieces, max_size=40).map(b"".join)


@st.composite
def annexb_frames(draw) -> bytes:
    """NAL payloads behind 3- or 4-byte start codes, maybe garbage in front, trailing zeros
    between units and at the end, maybe cut short anywhere."""
    out = [draw(st.binary(max_size=6))] if draw(st.booleans()) else []
    for payload in draw(st.lists(st.binary(max_size=64), max_size=8)):
        out += [draw(st.sampled_from(START_CODES)), payload, b"\x00" * draw(st.integers(0, 3))]
    data = b"".join(out)
    if data and draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]  # truncated
    return data


@needs_native
@hsettings(max_examples=600, deadline=None)
@given(st.one_of(annexb_frames(), annexb_like, st.binary(max_size=300)))
def test_native_annexb_matches_the_python_reference(data):
    assert native.nal_bounds(data) == nal_bounds(data)
    assert native.annexb_to_length_prefixed(data) == python_lp(data)
    assert native.length_prefixed_sizes([data]) == [len(python_lp(data))]
    assert native.nal_bounds(bytearray(data)) == native.nal_bounds(memoryview(data)) == nal_bounds(data)


@needs_native
def test_native_annexb_edge_cases():
    for data in (b"", b"\x65\x88", b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00\x00\x01\x00\x00\x01\x41",
                 b"\x00\x00\x01\x41\x00", b"\x00\x00\x01\x41\x00\x00\x00\x00", b"\x00\x00\x01\x41\x00\x00\x03\x00\x00\x01",
                 b"\x00" * 100, b"\x01" * 100, b"\x00\x00\x01" * 50, b"\x00\x00"):
        assert native.nal_bounds(data) == nal_bounds(data), data
        assert native.annexb_to_length_prefixed(data) == python_lp(data), data
    # emulation prevention bytes are payload: copied untouched
    assert native.annexb_to_length_prefixed(b"\x00\x00\x01\x65\x00\x00\x03\x01") == b"\x00\x00\x00\x05\x65\x00\x00\x03\x01"


@needs_native
@hsettings(max_examples=200, deadline=None)
@given(st.lists(annexb_frames(), max_size=6), st.binary(max_size=64))
def test_native_join_matches_the_python_reference(frames, head):
    sizes = native.length_prefixed_sizes(frames)
    assert sizes == [len(python_lp(f)) for f in frames]
    assert native.join_length_prefixed(head, frames, sum(sizes)) == head + b"".join(python_lp(f) for f in frames)
    with pytest.raises(ValueError):
        native.join_length_prefixed(head, frames, sum(sizes) + 1)
    if sum(sizes):
        with pytest.raises(ValueError):
            native.join_length_prefixed(head, frames, sum(sizes) - 1)


# -- real frames: fragments byte for byte --------------------------------------------------------
def _fragments(frames: list[tuple[bytes, int, int, bool]], native_path: bool) -> list[bytes]:
    writer = FragmentWriter(native=native_path)
    samples = [Sample(data, dts + 7200, pts + 7200, 3600, key) for data, pts, dts, key in frames]
    out = [writer.fragment([s]) for s in samples]  # one per frame, as live does
    out += [writer.fragment(samples[i:i + 5]) for i in range(0, len(samples), 5)]  # parts, as the recorder does
    return out


@needs_native
@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: f"{s[0]}-{s[1]}x{s[2]}-{s[3]}")
def test_fragments_of_encoded_frames_are_identical(stream):
    codec, width, height, pix_fmt, profile = stream[:5]
    frames = list(encode(codec, width, height, 24, pix_fmt, profile))
    native_out, python_out = _fragments(frames, True), _fragments(frames, False)
    assert native_out == python_out
    assert [kind for kind, _, _ in read_boxes(native_out[0])] == ["moof", "mdat"]


@pytest.fixture(scope="module")
def road_footage(tmp_path_factory):
    if not FOOTAGE.is_file():
        pytest.skip(f"{FOOTAGE} not present")
    from camgrid.sim.video import load_footage
    return load_footage(FOOTAGE, max_seconds=2, size=(640, 360), cache_dir=tmp_path_factory.mktemp("footage"))


@needs_native
def test_fragments_of_the_road_footage_are_identical(road_footage):
    frames = [(f.data, f.pts, f.pts, f.keyframe) for f in road_footage.frames]
    assert _fragments(frames, True) == _fragments(frames, False)
    for f in road_footage.frames:
        assert native.nal_bounds(f.data) == nal_bounds(f.data)


@needs_native
@pytest.mark.parametrize("samples, message", [
    ([b"\x65\x88"], "sample 0 holds no Annex B NAL unit"),
    ([b"\x00\x00\x01\x65", b"\x00\x00\x01"], "sample 1 holds no Annex B NAL unit"),
])
def test_both_paths_refuse_the_same_frames(samples, message):
    for native_path in (True, False):
        writer = FragmentWriter(native=native_path)
        with pytest.raises(ValueError, match=message):
            writer.fragment([Sample(d, i * 3600, i * 3600, 3600, True) for i, d in enumerate(samples)])
        assert writer.sequence == 0


# -- disk ------------------------------------------------------------------------------------------
@needs_native
def test_segment_files_are_identical_and_batches_are_all_or_nothing(tmp_path):
    init, parts = b"init" * 10, [bytes([i]) * (1000 * i + 1) for i in range(1, 6)]
    sizes = []
    for native_path in (True, False):
        writer = SegmentWriter(tmp_path / f"{native_path}.mp4", init, native=native_path)
        writer.append(parts[0])
        sizes.append(writer.append_parts(parts[1:]))
        writer.close()
    assert sizes[0] == sizes[1] == len(init) + sum(map(len, parts))
    assert (tmp_path / "True.mp4").read_bytes() == (tmp_path / "False.mp4").read_bytes() == init + b"".join(parts)
    with pytest.raises(OSError):  # a closed descriptor: nothing written, nothing claimed
        native.write_parts(writer._fd if writer._fd >= 0 else 1_000_000, parts)


@needs_native
def test_write_parts_reports_errors_as_oserror(tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            native.write_parts(fd, [b"abc"])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x"


# -- UDP -------------------------------------------------------------------------------------------
@pytest.mark.skipif(fastpath.recv_many is None, reason="recvmmsg needs the native module on Linux")
def test_recv_many_reads_a_batch_in_order():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        assert fastpath.recv_many(rx.fileno(), 64, 65536) == []
        sent = [b"", b"\x80" * 12, os.urandom(1400), os.urandom(65507)] + [bytes([i]) * i for i in range(70)]
        for data in sent:
            tx.sendto(data, rx.getsockname())
        got = []
        while len(got) < len(sent):
            batch = fastpath.recv_many(rx.fileno(), 64, 65536)
            assert batch and len(batch) <= 64
            got += batch
        assert got == sent
        tx.sendto(b"abcdef", rx.getsockname())
        assert fastpath.recv_many(rx.fileno(), 1, 4) == [b"abcd"]  # cut to size, as recv(4) does
    finally:
        rx.close()
        tx.close()
    with pytest.raises(OSError):
        fastpath.recv_many(rx.fileno() if rx.fileno() >= 0 else 1_000_000)


@pytest.mark.skipif(fastpath.recv_many_from is None, reason="recvmmsg needs the native module on Linux")
def test_recv_many_from_names_each_sender():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        for tx in senders:
            tx.bind(("127.0.0.1", 0))
        assert fastpath.recv_many_from(rx.fileno(), 8, 2048) == ([], b"")
        sent = []
        for i in range(30):
            tx = senders[i % 3]
            tx.sendto(bytes([i]) * (i + 1), rx.getsockname())
            sent.append((bytes([i]) * (i + 1), tx.getsockname()))
        got = []
        while len(got) < len(sent):
            datagrams, sources = fastpath.recv_many_from(rx.fileno(), 8, 2048)
            assert datagrams and len(sources) == 6 * len(datagrams)
            got += [(d, (socket.inet_ntoa(sources[6 * i:6 * i + 4]), int.from_bytes(sources[6 * i + 4:6 * i + 6], "big")))
                    for i, d in enumerate(datagrams)]
        assert got == sent
    finally:
        rx.close()
        for tx in senders:
            tx.close()


@pytest.mark.parametrize("batched", [True, False], ids=["recv_many_from", "recvfrom"])
async def test_the_shared_port_routes_batches_by_ssrc(monkeypatch, batched):
    """Single-port mode: each stream gets its own packets of a batch, in order; others are counted
    with their sender. Both the recvmmsg read and the Python fallback."""
    import asyncio

    from camgrid.media import ingest
    from camgrid.media.ps import VIDEO_ID, mux_ps
    from camgrid.media.rtp import RtpPacket
    from camgrid.media.stream import MediaStream, StreamSpec
    from camgrid.sim.video import synthetic_footage
    from camgrid.sim.rtp_sender import packetize

    if batched and fastpath.recv_many_from is None:
        pytest.skip("recvmmsg needs the native module on Linux")
    if not batched:
        monkeypatch.setattr(ingest, "recv_many_from", None)
    footage = synthetic_footage("h264", 160, 120, 25, 1, gop_s=0.5)
    shared = ingest.SharedUdpPort("127.0.0.1", 0)
    await shared.start()
    streams = {ssrc: MediaStream(StreamSpec(f"s{ssrc}", "udp", ssrc), created_at=0.0) for ssrc in (11, 22)}
    for ssrc, stream in streams.items():
        shared.route(ssrc, stream)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        per_stream = {ssrc: [] for ssrc in streams}
        for frame in footage.frames:
            ps_bytes = mux_ps(VIDEO_ID, frame.data, frame.pts, streams={VIDEO_ID: "h264"}, keyframe=frame.keyframe)
            for ssrc in streams:
                per_stream[ssrc] += packetize(ps_bytes, ssrc=ssrc, seq=len(per_stream[ssrc]), timestamp=frame.pts)
        interleaved = [p for pair in zip(*per_stream.values()) for p in pair]
        for i, packet in enumerate(interleaved):
            tx.sendto(packet, ("127.0.0.1", shared.port))
            if i % 7 == 0:
                tx.sendto(RtpPacket(96, i, 0, 99, b"x").to_bytes(), ("127.0.0.1", shared.port))
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # let the reader drain so the socket buffer never overflows
        deadline = asyncio.get_running_loop().time() + 5
        while sum(s.packets for s in streams.values()) < len(interleaved) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
    finally:
        shared.stop()
        tx_name = tx.getsockname()
        tx.close()
    for ssrc, stream in streams.items():
        stream.poll(10.0)
        assert stream.packets == len(per_stream[ssrc]) and stream.lost_packets == 0
        assert stream.video_frames == len(footage.frames)
    assert shared.unknown == len(range(0, len(interleaved), 7))
    assert shared.unknown_ssrcs == {99: f"{tx_name[0]}:{tx_name[1]}"}


# -- hostile arguments ----------------------------------------------------------------------------
_junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(), st.lists(st.integers(), max_size=3),
                  st.binary(max_size=20), st.just(object()), st.just(bytearray(b"\x00\x00\x01\x65")),
                  st.lists(st.binary(max_size=8), max_size=3))


@needs_native
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["nal_bounds", "annexb_to_length_prefixed", "length_prefixed_sizes", "join_length_prefixed",
                        "write_parts", "recv_many", "recv_many_from", "PsDemuxer", "feed_rtp"]),
       st.lists(_junk, max_size=4))
def test_native_entry_points_raise_but_never_crash(name, args):
    from camgrid.media.ps import NativePsDemuxer
    fn = NativePsDemuxer().feed_rtp if name == "feed_rtp" else getattr(native, name, None)
    if fn is None:
        return
    if name in ("write_parts", "recv_many", "recv_many_from") and args and isinstance(args[0], int) and 0 <= args[0] < 1024:
        args[0] = -1  # never touch the test process's own descriptors (stdin, pytest's files)
    try:
        fn(*args)
    except (TypeError, ValueError, OverflowError, OSError, BufferError):
        pass


@needs_native
def test_native_entry_points_take_huge_and_empty_buffers():
    big = b"\x00\x00\x01\x65" + b"\x01\x00" * (8 << 20)  # 16 MiB, a 00 00 at every other byte
    assert native.nal_bounds(big) == nal_bounds(big)
    assert native.length_prefixed_sizes([big, b"", big]) == [len(python_lp(big)), 0, len(python_lp(big))]
    assert native.join_length_prefixed(b"", [], 0) == b""
    assert native.annexb_to_length_prefixed(b"") == b""
    zeros = bytes(32 << 20)
    assert native.nal_bounds(zeros) == [] and native.length_prefixed_sizes([zeros]) == [0]
    with pytest.raises(ValueError):
        native.join_length_prefixed(b"", [], -1)
    with pytest.raises(ValueError):
        native.join_length_prefixed(b"x", [], sys.maxsize)
    with pytest.raises(TypeError):
        native.length_prefixed_sizes([b"ok", "text"])
    with pytest.raises(TypeError):
        native.join_length_prefixed(b"", [None], 0)


@needs_native
@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=30), st.binary(min_size=12, max_size=30).map(lambda b: b"\x80" + b[1:]),
                          st.just(b"\x80\xe0\x00\x05\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x01\xba")),
                max_size=8),
       st.integers(-3, 10), st.integers(-2, 1 << 33), st.integers(-2, 70_000))
def test_feed_rtp_takes_any_datagrams(datagrams, start, ssrc, seq):
    """The run it takes is what each datagram's header allows, and the demuxer ends up as the
    Python one fed those payloads (flushed at markers)."""
    from camgrid.media.ps import NativePsDemuxer, PythonPsDemuxer
    demuxer = NativePsDemuxer()
    try:
        units, count, payload_type, last_ssrc, wire = demuxer.feed_rtp(datagrams, start, ssrc, seq)
    except (ValueError, OverflowError):
        assert not 0 <= start <= len(datagrams) or ssrc > 0xFFFFFFFF or seq > 0xFFFF
        return
    run = datagrams[start:start + count]
    assert wire == sum(map(len, run)) and all(len(d) >= 12 and d[0] == 0x80 for d in run)
    assert len({d[1] & 0x7F for d in run}) <= 1 and payload_type == (run[0][1] & 0x7F if run else -1)
    for i, d in enumerate(run):
        assert ssrc < 0 or int.from_bytes(d[8:12], "big") == ssrc
        assert seq < 0 or int.from_bytes(d[2:4], "big") == (seq + i) & 0xFFFF
    assert last_ssrc == (int.from_bytes(run[-1][8:12], "big") if run else -1)
    reference, expect = PythonPsDemuxer(), []
    for d in run:
        expect += reference.feed(d[12:])
        if d[1] & 0x80:
            expect += reference.flush()
    assert units == expect
    assert (demuxer.resyncs, demuxer.dropped_bytes, demuxer.packs) == (reference.resyncs, reference.dropped_bytes, reference.packs)


def test_a_module_built_from_other_source_is_not_used(monkeypatch):
    import types

    import camgrid.media
    monkeypatch.delenv("CAMGRID_NATIVE", raising=False)
    stale = types.ModuleType("camgrid.media._native")  # e.g. an old build without the newer entry points
    monkeypatch.setitem(sys.modules, "camgrid.media._native", stale)
    monkeypatch.setattr(camgrid.media, "_native", stale, raising=False)
    module, reason = fastpath._load()
    assert module is None and "rebuild" in reason
    stale.API_VERSION = fastpath.API_VERSION
    assert fastpath._load()[0] is stale


# -- the fallback ---------------------------------------------------------------------------------
def test_the_python_fallback_runs_the_media_tests_with_native_off():
    env = dict(os.environ, CAMGRID_NATIVE="0")
    check = subprocess.run(
        [sys.executable, "-c",
         "from camgrid.media import fastpath, fmp4, segment_file\n"
         "assert not fastpath.NATIVE and fastpath.recv_many is None, fastpath.describe()\n"
         "assert fastpath.UdpDrain is None\n"
         "assert 'CAMGRID_NATIVE=0' in fastpath.REASON\n"
         "assert fmp4.FragmentWriter()._native is None\n"
         "print(fastpath.describe())"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "python" in check.stdout
    here = Path(__file__).resolve().parent
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(str(here / name) for name in ("test_fmp4.py", "test_recorder.py", "test_live.py", "test_node_api.py",
                                         "test_stream_batches.py"))],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
