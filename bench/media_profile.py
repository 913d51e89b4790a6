"""Where camgrid's per-packet ingest time goes: stage timings and a cProfile of MediaStream.on_packet.

    .venv/bin/python bench/media_profile.py [--loops 3] [--top 25] [--footage FILE]
    .venv/bin/python bench/media_profile.py --drain-streams 300 [--drain-seconds 1] [--repeat 3]

No sockets, no event loop: one stream's RTP packets (the 1080p 25 fps 4 Mbit/s footage of
bench/_media_common.py, cut into 1400-byte RTP payloads as a camera sends them) are fed to the
pipeline in a loop in this process, so the figures are the pure Python cost per packet. Each
stage is timed alone on its own input (best of --repeat, CPU time), then the whole
`MediaStream.on_packet` (parse → SSRC → jitter → demux → live fMP4), the same datagrams in
batches of 64 through `MediaStream.on_datagrams` (what the node does with each recvmmsg batch;
in-order runs go through the native module when it is loaded, see camgrid.media.fastpath), then
on_packet under cProfile for the functions that cost most.

How to read it: "µs/packet" of the whole path gives the most packets one core could take,
1e6 / µs; the live node also pays for the socket (one recvfrom per datagram) and the event
loop on top, which bench/media_ingest.py measures (its "node CPU µs/packet"); the difference
between the two is that overhead. cProfile's own overhead inflates small, frequent functions:
read its table for the ranking, the stage timings for the size.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media_common import DEFAULT_FOOTAGE, bench_footage, rtp_template  # noqa: E402

from camgrid.media import fastpath  # noqa: E402
from camgrid.media.jitter import JitterBuffer  # noqa: E402
from camgrid.media.live import LiveFeed  # noqa: E402
from camgrid.media.ps import PsDemuxer  # noqa: E402
from camgrid.media.rtp import RtpPacket, parse_rtp  # noqa: E402
from camgrid.media.stream import MediaStream, StreamSpec  # noqa: E402

SSRC = 0x10000001


def build_packets(footage, loops: int) -> list[bytes]:  # noqa: ANN001
    """One stream's RTP datagrams: the footage `loops` times, sequence numbers and timestamps running on."""
    template, loop_us = rtp_template(footage)
    loop_ticks = loop_us * 90 // 1000
    out, seq = [], 4321
    for n in range(loops):
        for _due, ts, marker, payload in template:
            out.append(RtpPacket(96, seq & 0xFFFF, (1000 + ts + n * loop_ticks) & 0xFFFFFFFF, SSRC, payload, marker).to_bytes())
            seq += 1
    return out


def best_cpu(fn, repeat: int) -> float:  # noqa: ANN001
    """The least CPU seconds fn() took over `repeat` runs (each run gets fresh state from fn)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def drain_sockets(packets: list[bytes], streams: int, seconds: float, repeat: int) -> list[float]:
    """CPU µs per packet of the node's UDP read and demux (camgrid.media.ingest.UdpDrain) over
    `streams` loopback sockets, each holding the first `seconds` of the stream when the drain
    starts: as the backlog phase of bench/media_ingest.py, with the sender's work kept out of the
    clock (the queues are filled first). Fresh sockets and streams each run; each run's figure."""
    import socket

    from camgrid.media import ingest

    if ingest.fastpath.UdpDrain is None:
        return []
    first = packets[:round(seconds * 371)]  # 371 packets/s: the bench footage
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = []
    try:
        for _ in range(repeat):
            drain, socks = ingest.UdpDrain(), []
            try:
                for k in range(streams):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ingest.UDP_RECEIVE_BUFFER)
                    sock.bind(("127.0.0.1", 0))
                    sock.setblocking(False)
                    drain.add(sock, MediaStream(StreamSpec(f"s{k}", "udp", SSRC), created_at=0.0))
                    socks.append(sock)
                for sock in socks:
                    address = sock.getsockname()
                    for data in first:
                        tx.sendto(data, address)
                gc.collect()
                t0 = time.process_time()
                while drain.drain(1.0):
                    pass
                out.append((time.process_time() - t0) / (len(first) * streams) * 1e6)
            finally:
                drain.close()
                for sock in socks:
                    sock.close()
    finally:
        tx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    ap.add_argument("--loops", type=int, default=3, help="times the 30 s footage is fed per run (default 3)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per stage; the best counts (default 3)")
    ap.add_argument("--top", type=int, default=25, help="rows of the cProfile table (default 25)")
    ap.add_argument("--drain-streams", type=int, default=0,
                    help="only time UdpDrain over this many loopback sockets, each queued with --drain-seconds")
    ap.add_argument("--drain-seconds", type=float, default=1.0, help="of the stream queued per socket (default 1)")
    args = ap.parse_args()
    if args.drain_streams:
        figures = drain_sockets(build_packets(bench_footage(args.footage), 1), args.drain_streams, args.drain_seconds,
                                args.repeat)
        print(f"UdpDrain over {args.drain_streams} queued loopback sockets ({fastpath.describe()}): CPU µs/packet "
              + ", ".join(f"{f:.3f}" for f in figures))
        return

    footage = bench_footage(args.footage)
    packets = build_packets(footage, args.loops)
    n = len(packets)
    nbytes = sum(map(len, packets))
    parsed = [parse_rtp(p) for p in packets]
    units = []
    demux = PsDemuxer()
    for p in parsed:
        units += demux.feed(p.payload)
        if p.marker:
            units += demux.flush()
    video = [u for u in units if u.is_video]
    print(f"input: {n} RTP packets ({nbytes / 1e6:.1f} MB, {args.loops} x {footage.duration_s:.1f} s of "
          f"{footage.width}x{footage.height} {footage.fps:g} fps), {len(video)} video frames; Python {sys.version.split()[0]}")

    def parse_only() -> None:
        for p in packets:
            parse_rtp(p)

    def jitter_only() -> None:
        jb = JitterBuffer()
        for i, p in enumerate(parsed):
            jb.push(p, i * 1e-4)

    def demux_only() -> None:
        d = PsDemuxer()
        for p in parsed:
            d.feed(p.payload)
            if p.marker:
                d.flush()

    def live_only() -> None:
        feed = LiveFeed()
        for u in video:
            feed.push(u)

    def whole() -> None:
        stream = MediaStream(StreamSpec("bench", "udp", SSRC), created_at=0.0)
        for i, p in enumerate(packets):
            stream.on_packet(p, i * 1e-4)
        assert stream.video_frames == len(video), (stream.video_frames, len(video))

    def batched() -> None:
        stream = MediaStream(StreamSpec("bench", "udp", SSRC), created_at=0.0)
        for i in range(0, n, 64):  # as the node reads them: up to 64 datagrams per readiness event
            stream.on_datagrams(packets[i:i + 64], i * 1e-4)
        assert stream.video_frames == len(video), (stream.video_frames, len(video))

    rows = [
        ("parse_rtp", parse_only, n, "packet"),
        ("JitterBuffer.push (in order)", jitter_only, n, "packet"),
        ("PsDemuxer.feed + flush at marker", demux_only, n, "packet"),
        ("LiveFeed.push (fMP4 fragment per frame)", live_only, len(video), "frame"),
    ]
    print("\nstage timings (CPU, best of %d):" % args.repeat)
    total_stages = 0.0
    for name, fn, count, unit in rows:
        t = best_cpu(fn, args.repeat)
        per_packet = t / n * 1e6
        total_stages += per_packet
        extra = f"  ({t / count * 1e6:8.1f} µs/{unit})" if unit != "packet" else ""
        print(f"  {name:42s} {per_packet:7.2f} µs/packet {nbytes / t / 1e6:9.1f} MB/s{extra}")
    t = best_cpu(whole, args.repeat)
    us = t / n * 1e6
    print(f"  {'sum of the stages':42s} {total_stages:7.2f} µs/packet")
    print(f"  {'MediaStream.on_packet (whole path)':42s} {us:7.2f} µs/packet {nbytes / t / 1e6:9.1f} MB/s"
          f"  → at most {1e6 / us:,.0f} packets/s = {1e6 / us / (n / (args.loops * footage.duration_s)):,.0f} "
          f"streams of this footage per core, before socket and event-loop costs")
    t = best_cpu(batched, args.repeat)
    print(f"  {'MediaStream.on_datagrams (batches of 64)':42s} {t / n * 1e6:7.2f} µs/packet {nbytes / t / 1e6:9.1f} MB/s"
          f"  ({fastpath.describe()})")

    prof = cProfile.Profile()
    gc.collect()
    prof.enable()
    whole()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    total = stats.total_tt
    print(f"\ncProfile of MediaStream.on_packet over {n} packets (total {total:.2f} s under the profiler, "
          f"{total / n * 1e6:.1f} µs/packet); by own time:")
    print(f"  {'own s':>7s} {'own %':>6s} {'calls':>9s} {'µs/call':>8s} {'cum s':>7s}  function")
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:args.top]
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in entries:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"  {tottime:7.3f} {tottime / total * 100:5.1f}% {ncalls:9d} {tottime / ncalls * 1e6:8.2f} {cumtime:7.3f}  {func} ({where})")


if __name__ == "__main__":
    main()
