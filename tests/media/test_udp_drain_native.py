"""The native UdpDrain (camgrid.media.ingest.UdpDrain: every ready UDP stream socket read with
recvmmsg and its in-order run demuxed in C, in one call per wake-up) against the pure-Python path
(PythonPsDemuxer, on_packet for each datagram in arrival order): the same access units, key-frame
announcements and counters for each stream after every round, over real loopback sockets, whatever
arrives (loss, duplicates, reordering, device restarts, padding, extensions, CSRCs, payload-type
changes, empty, cut, short and oversized datagrams, garbage); and the faults of a socket set:
sockets closed or removed between and during drains, a closed number reused, re-entry, misuse."""

from __future__ import annotations

import asyncio
import os
import random
import socket

import pytest
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from camgrid.media import fastpath, ingest, ps
from camgrid.media.ps import VIDEO_ID, PythonPsDemuxer, mux_ps
from camgrid.media.rtp import RtpPacket
from camgrid.media.stream import MediaStream, StreamSpec
from rtp_faults import footage_packets, spoil_datagrams

pytestmark = pytest.mark.skipif(fastpath.UdpDrain is None, reason=f"native UdpDrain not available: {fastpath.REASON}")

SSRC, OTHER = 0x4321, 0x8765
AUDIO_BY_GOP = ["g711a", None, "g711u", "aac"]  # each key frame's map lists another audio codec (or none)


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    """2 s of footage (50 frames, 5 key frames) in RTP packets; the sequence numbers wrap."""
    return footage_packets(SSRC, 65_500, AUDIO_BY_GOP)


def spoil(packets: list[bytes], rng: random.Random, rate: float, ssrc: int, restart: bool) -> list[bytes]:
    return spoil_datagrams(packets, rng, rate, ssrc, OTHER, restart)


def _state(stream: MediaStream) -> tuple:
    jb = stream.jitter
    d = stream.demuxer
    return (stream.stats(), sorted(stream.payload_types), (jb._next, jb.held, jb.delivered, jb.lost, jb.late, jb.duplicates),
            (d.resyncs, d.dropped_bytes, d.packs, dict(d.codecs)),
            (stream.live.frames, stream.live.keyframes, stream.live._announced))


def _watch(stream: MediaStream) -> list:
    got: list = []
    stream.consumers.append(lambda u: got.append(("unit", u.stream_id, u.codec, u.pts, u.dts, u.data, u.keyframe)))
    announce = stream.live.announce_audio

    def announced(codec: str | None) -> None:
        got.append(("announce", codec))
        announce(codec)

    stream.live.announce_audio = announced  # type: ignore[method-assign]
    return got


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def drain_all(drain: ingest.UdpDrain, now: float) -> int:
    """Drain until no socket has anything (loopback queues a datagram before sendto returns)."""
    rounds = 0
    while drain.drain(now):
        rounds += 1
    return rounds


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.002, 0.01, 0.05]), streams=st.integers(1, 4),
       ssrc=st.sampled_from([SSRC, None]), strict=st.booleans(), restart=st.booleans())
@example(seed=7, rate=0.0, streams=3, ssrc=SSRC, strict=False, restart=False)
def test_the_drain_gives_what_the_python_path_gives(packets, seed, rate, streams, ssrc, strict, restart):
    _drain_matches_python(packets, seed, rate, streams, ssrc, strict, restart)


@pytest.fixture(scope="module")
def mixed_packets() -> list[bytes]:
    """The footage in H.264, then in H.265 (a codec change at a key frame), AAC and G.711 by GOP."""
    return footage_packets(SSRC, 65_450, ["aac", "g711a", None, "g711u"], copies=2, video_by_copy=("h264", "h265"))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.01, 0.05]), streams=st.integers(1, 3),
       restart=st.booleans())
def test_the_drain_gives_what_the_python_path_gives_across_a_codec_change(mixed_packets, seed, rate, streams, restart):
    _drain_matches_python(mixed_packets, seed, rate, streams, SSRC, False, restart)


def _drain_matches_python(packets, seed, rate, streams, ssrc, strict, restart):
    rng = random.Random(seed)
    drain = ingest.UdpDrain()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    socks, lanes, taken = [], [], [0]
    try:
        for k in range(streams):
            spec = dict(stream_id=f"s{k}", ssrc=None if ssrc is None else ssrc + k, ssrc_strict=strict)
            native, python = MediaStream(StreamSpec(**spec), created_at=0.0), MediaStream(StreamSpec(**spec), created_at=0.0)
            assert type(native.demuxer) is ps.NativePsDemuxer
            python.demuxer = PythonPsDemuxer()
            on_run = native.on_run

            def counted(units, count, *rest, on_run=on_run):  # noqa: ANN001, ANN002, ANN202
                taken[0] += count
                return on_run(units, count, *rest)

            native.on_run = counted  # type: ignore[method-assign]
            sock = _udp_socket()
            drain.add(sock, native)
            socks.append(sock)
            lanes.append((sock.getsockname(), spoil(packets, rng, rate, SSRC + k, restart), native, python,
                          _watch(native), _watch(python)))
        sent, now = [0] * streams, 1.0
        while any(sent[k] < len(lane[1]) for k, lane in enumerate(lanes)):
            for k, (addr, datagrams, _, python, _, _) in enumerate(lanes):
                chunk = datagrams[sent[k]:sent[k] + rng.choice([1, 5, 40, 150])]
                sent[k] += len(chunk)
                for data in chunk:
                    tx.sendto(data, addr)
                    python.on_packet(data, now)
            drain_all(drain, now)
            for addr, _, native, python, got_n, got_p in lanes:
                assert got_n == got_p
                assert _state(native) == _state(python)
                got_n.clear(), got_p.clear()
            now += 0.07
            for _, _, native, python, got_n, got_p in lanes:
                native.poll(now)
                python.poll(now)
                assert got_n == got_p and _state(native) == _state(python)
        for k, (_, datagrams, native, python, _, _) in enumerate(lanes):
            assert native.packets == python.packets == len(datagrams)  # nothing was lost on the way
        if rate == 0.0 and not restart:
            assert taken[0] > streams * len(packets) // 2  # the run in C took most of them
    finally:
        drain.close()
        tx.close()
        for sock in socks:
            sock.close()


def test_a_clean_stream_takes_one_row_per_ready_socket(packets):
    """Untouched packets: after a first datagram (which Python judges), every datagram of a
    socket's batch is demuxed in C; no datagram comes back as bytes except at key frames."""
    drain, tx = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    socks, streams = [_udp_socket() for _ in range(3)], []
    try:
        for k, sock in enumerate(socks):
            stream = MediaStream(StreamSpec(f"s{k}", ssrc=SSRC), created_at=0.0)
            drain.add(sock, stream)
            streams.append(stream)
        for i in range(0, len(packets), 60):
            for sock in socks:
                for data in packets[i:i + 60]:
                    tx.sendto(data, sock.getsockname())
            rows = drain._native.drain()
            assert sorted(row[0].spec.stream_id for row in rows) == ["s0", "s1", "s2"]  # one row per socket
            for stream, units, count, pt, last_ssrc, wire, rest in rows:
                assert count + (0 if rest is None else len(rest)) == len(packets[i:i + 60])
                if count:
                    assert pt == 96 and last_ssrc == SSRC and wire == sum(map(len, packets[i:i + count]))
                    stream.on_run(units, count, pt, last_ssrc, wire, 1.0)
                if rest is not None:
                    assert i == 0 or any(u.keyframe for u in units)  # the run stops only after a key frame
                    stream.on_datagrams(rest, 1.0)
            assert drain._native.drain() == []
        for stream in streams:
            assert stream.packets == len(packets) and stream.video_frames == 50 and stream.lost_packets == 0
            assert stream.live.keyframes == 5 and stream.bad_packets == 0
    finally:
        drain.close()
        tx.close()
        for sock in socks:
            sock.close()


def test_short_cut_empty_and_oversized_datagrams(packets):
    """Faults inside one socket's batch: each is judged by Python as on_packet would, and the
    stream goes on; the counters match the reference."""
    bad = [b"", b"\x80", packets[3][:11], packets[4][:12], packets[5][:40],
           packets[6][:12] + os.urandom(65_507 - 12), b"\x80\x60" + os.urandom(65_505)]
    stream_packets = packets[:20] + bad + packets[20:]
    drain, tx, sock = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM), _udp_socket()
    native = MediaStream(StreamSpec("s", ssrc=SSRC), created_at=0.0)
    python = MediaStream(StreamSpec("s", ssrc=SSRC), created_at=0.0)
    python.demuxer = PythonPsDemuxer()
    got_n, got_p = _watch(native), _watch(python)
    try:
        drain.add(sock, native)
        for data in stream_packets:
            tx.sendto(data, sock.getsockname())
            python.on_packet(data, 1.0)
        drain_all(drain, 1.0)
        native.poll(9.0)
        python.poll(9.0)
        assert got_n == got_p and _state(native) == _state(python)
        assert native.packets == len(stream_packets) and native.bad_packets == 3  # the three shorter than a header
        assert native.video_frames > 40
    finally:
        drain.close()
        tx.close()
        sock.close()


def test_sockets_closed_between_and_during_drains(packets):
    drain, tx = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    socks = [_udp_socket() for _ in range(4)]
    streams = [MediaStream(StreamSpec(f"s{k}", ssrc=SSRC), created_at=0.0) for k in range(4)]
    sent = [0] * 4
    try:
        for sock, stream in zip(socks, streams):
            drain.add(sock, stream)
        assert drain._native.registered() == 4

        def send(count: int, which: list[int]) -> None:
            for k in which:
                for data in packets[sent[k]:sent[k] + count]:
                    tx.sendto(data, socks[k].getsockname())
                sent[k] += count

        # removed, then closed (what StreamSocket.close does): its queued datagrams are never read
        send(10, [0, 1, 2, 3])
        drain.remove(socks[0])
        socks[0].close()
        drain_all(drain, 1.0)
        assert streams[0].packets == 0 and [s.packets for s in streams[1:]] == [10, 10, 10]
        # closed without remove(): the kernel takes it out of the epoll set; the drain skips it
        send(5, [1, 2, 3])
        fd1 = socks[1].detach()
        os.close(fd1)
        drain_all(drain, 1.0)
        assert [s.packets for s in streams[1:]] == [10, 15, 15] and drain.errors == 0
        # its number, reused by a new socket, is taken over by that socket's stream
        reused = _udp_socket()
        socks.append(reused)
        if reused.fileno() == fd1:
            newcomer = MediaStream(StreamSpec("new", ssrc=SSRC), created_at=0.0)
            drain._native.add(fd1, newcomer)
            for data in packets[:7]:
                tx.sendto(data, reused.getsockname())
            drain_all(drain, 1.0)
            assert newcomer.packets == 7 and streams[1].packets == 10
            with pytest.raises(ValueError, match="already registered"):
                drain._native.add(fd1, newcomer)
        # a consumer closes both remaining streams' sockets while the rows of one drain are handed
        # out: what was read already is delivered, nothing after it
        send(len(packets) - 15, [2, 3])

        def close_both(unit) -> None:  # noqa: ANN001
            for k in (2, 3):
                if socks[k].fileno() >= 0:
                    drain.remove(socks[k])
                    socks[k].close()

        streams[2].consumers.append(close_both)
        streams[3].consumers.append(close_both)
        drain_all(drain, 1.0)
        read = [s.packets for s in streams[2:]]
        assert all(15 < n < len(packets) for n in read), read  # each had one batch read, not all
        assert drain._native.registered() == 1  # the stale number, or the newcomer
    finally:
        drain.close()
        tx.close()
        for sock in socks:
            sock.close()


def test_a_failing_consumer_costs_only_its_own_stream(packets, caplog):
    """The rows of one drain were read from every socket already: a stream whose consumer raises
    is logged, and the others get their frames (as with one callback per socket)."""
    drain, tx = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    socks = [_udp_socket() for _ in range(3)]
    streams = [MediaStream(StreamSpec(f"s{k}", ssrc=SSRC), created_at=0.0) for k in range(3)]

    def broken(unit) -> None:  # noqa: ANN001
        raise RuntimeError("a consumer's bug")

    streams[1].consumers.append(broken)
    try:
        for sock, stream in zip(socks, streams):
            drain.add(sock, stream)
        for data in packets:
            for sock in socks:
                tx.sendto(data, sock.getsockname())
        drain_all(drain, 1.0)
        assert streams[0].video_frames == streams[2].video_frames == 50
        assert streams[0].packets == streams[2].packets == len(packets)
        assert "stream s1: handling its packets failed" in caplog.text
    finally:
        drain.close()
        tx.close()
        for sock in socks:
            sock.close()


def test_a_broken_stream_object_goes_to_the_python_path_alone(packets, caplog):
    """A stream whose state C cannot read (a demuxer whose __init__ never ran, a missing
    attribute) is handed to Python as it came, where the same fault is raised and logged for it
    alone: no drain fails for every stream (the set is level-triggered and would loop)."""
    drain, tx = ingest.UdpDrain(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    socks = [_udp_socket() for _ in range(3)]
    good = MediaStream(StreamSpec("good", ssrc=SSRC), created_at=0.0)
    bare = MediaStream(StreamSpec("bare", ssrc=SSRC), created_at=0.0)
    bare.demuxer = ps.NativePsDemuxer.__new__(ps.NativePsDemuxer)  # __init__ never ran
    odd = MediaStream(StreamSpec("odd", ssrc=SSRC), created_at=0.0)
    del odd.jitter
    try:
        for sock, stream in zip(socks, (good, bare, odd)):
            drain.add(sock, stream)
        for data in packets[:80]:
            for sock in socks:
                tx.sendto(data, sock.getsockname())
        rounds = drain_all(drain, 1.0)
        assert rounds >= 2 and good.packets == 80 and good.video_frames > 0
        assert "stream bare: handling its packets failed" in caplog.text
        assert "stream odd: handling its packets failed" in caplog.text
    finally:
        drain.close()
        tx.close()
        for sock in socks:
            sock.close()


def test_misuse_raises_and_never_crashes(tmp_path):
    native = fastpath.UdpDrain()
    sock = _udp_socket()
    stream = MediaStream(StreamSpec("s"), created_at=0.0)
    try:
        with pytest.raises(ValueError):
            native.add(-1, stream)
        with pytest.raises(OSError):
            native.add(1_000_000, stream)  # no such descriptor
        with open(tmp_path / "f", "w") as f:
            with pytest.raises(OSError):
                native.add(f.fileno(), stream)  # a regular file cannot be polled
        assert native.remove(sock.fileno()) is False
        native.add(sock.fileno(), stream)
        with pytest.raises(ValueError, match="already registered"):
            native.add(sock.fileno(), stream)
        assert native.registered() == 1 and native.drain() == []
        for bad in (dict(batch=0), dict(batch=5000), dict(size=4), dict(max_events=0)):
            with pytest.raises(ValueError):
                fastpath.UdpDrain(**bad)
        native.close()
        for call in (native.drain, native.fileno, lambda: native.add(sock.fileno(), stream)):
            with pytest.raises(ValueError):
                call()
        native.close()  # twice is fine
        # a stream that is not one: Python's path judges its datagrams (no demuxer to run in C)
        other = fastpath.UdpDrain()
        plain = MediaStream(StreamSpec("p", ssrc=SSRC), created_at=0.0)
        plain.demuxer = PythonPsDemuxer()
        other.add(sock.fileno(), plain)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(RtpPacket(96, 1, 0, SSRC, b"x").to_bytes(), sock.getsockname())
        ((row_stream, units, count, pt, last_ssrc, wire, rest),) = other.drain()
        assert row_stream is plain and count == 0 and units == [] and len(rest) == 1
        other.close()
    finally:
        native.close()
        sock.close()


def test_the_drain_refuses_reentry_from_make_unit():
    """make_unit runs Python code in the middle of a drain: it must not drain, add, remove or close."""
    native = fastpath.UdpDrain()
    sock, tx = _udp_socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inside: list[int] = []

    def reenter(codecs, sid, pts, dts, data):  # noqa: ANN001, ANN202
        if inside:
            for call in (native.drain, lambda: native.add(tx.fileno(), stream), lambda: native.remove(sock.fileno()),
                         native.close):
                with pytest.raises(RuntimeError):
                    call()
            inside.append(pts)
        return ps.make_unit(codecs, sid, pts, dts, data)

    stream = MediaStream(StreamSpec("s", ssrc=SSRC), created_at=0.0)
    stream.demuxer = ps._native.PsDemuxer(reenter, ps.STREAM_TYPES, ps.MAX_BUFFER)
    frame = mux_ps(VIDEO_ID, b"\x00\x00\x00\x01\x41" + bytes(100), 9000, streams={VIDEO_ID: "h264"}, keyframe=True)  # a P frame
    try:
        native.add(sock.fileno(), stream)
        stream.on_packet(RtpPacket(96, 0, 0, SSRC, frame, marker=True).to_bytes(), 1.0)  # the first is Python's
        for seq in (1, 2):
            tx.sendto(RtpPacket(96, seq, 0, SSRC, frame, marker=True).to_bytes(), sock.getsockname())
        inside.append(-1)
        ((_, units, count, pt, last_ssrc, wire, rest),) = native.drain()
        assert count == 2 and rest is None and len(units) == 2 and inside == [-1, 9000, 9000]
        stream.on_run(units, count, pt, last_ssrc, wire, 1.0)
        assert stream.video_frames == 3 and stream.packets == 3
    finally:
        native.close()
        sock.close()
        tx.close()


async def test_stream_sockets_share_one_drain_per_loop(packets):
    """StreamSocket (udp) registers with the loop's drain; frames arrive through the event loop;
    the last socket to close closes the set and takes its reader off the loop."""
    loop = asyncio.get_running_loop()
    ports = ingest.PortRange(0, 0)
    opened = []
    for k in range(3):
        stream = MediaStream(StreamSpec(f"s{k}", ssrc=SSRC), created_at=0.0)
        sock = ingest.StreamSocket(stream, ports, "127.0.0.1")
        opened.append((stream, sock, await sock.open()))
    drain = ingest.UdpDrain._by_loop[loop]
    assert drain._native.registered() == 3
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in packets:
            for _, _, port in opened:
                tx.sendto(data, ("127.0.0.1", port))
            await asyncio.sleep(0)
        for _ in range(100):
            if all(s.packets == len(packets) for s, _, _ in opened):
                break
            await asyncio.sleep(0.01)
        assert [s.video_frames for s, _, _ in opened] == [50, 50, 50]
        assert [s.lost_packets for s, _, _ in opened] == [0, 0, 0]
        fd = drain._native.fileno()
        for _, sock, _ in opened:
            await sock.close()
        assert loop not in ingest.UdpDrain._by_loop
        with pytest.raises(ValueError):
            drain._native.fileno()
        assert not loop.remove_reader(fd)  # already off the loop
    finally:
        tx.close()


def test_a_drain_keeps_freed_heap_for_reuse(monkeypatch):
    """The node's UDP ingest asks glibc to keep freed heap (frames come and go all the time; giving
    the heap back made the node fault in fresh pages); elsewhere the call changes nothing."""
    import platform

    assert fastpath.native.keep_freed_heap() is (platform.libc_ver()[0] == "glibc")
    calls: list[bool] = []
    real = fastpath.native.keep_freed_heap
    monkeypatch.setattr(fastpath.native, "keep_freed_heap", lambda: calls.append(real()) or calls[-1])
    drain = ingest.UdpDrain()
    drain.close()
    assert len(calls) == 1
