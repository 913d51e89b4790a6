"""Shared pieces of the media benchmarks (bench/media_ingest.py, bench/media_remux.py,
bench/media_profile.py): the 1080p footage they all use, its RTP/PS packets, and /proc readers.

Footage: the shared road clip (768x432, 12.5 fps, 30 s) upscaled to 1920x1080, brought to 25 fps
with FFmpeg's `framerate` filter (blended in-between frames, so every frame carries real change
rather than being a duplicate that costs nothing), and encoded as a camera does: libx264,
no B-frames, a key frame every second with SPS/PPS in front of it, and a 4 Mbit/s VBV cap
(maxrate = bufsize = bitrate, i.e. near-CBR). Encoding takes a minute on 2 cores, so the
result is cached (default ~/.cache/camgrid-bench) keyed by the source file and the options.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from camgrid.media.ps import VIDEO_ID, mux_ps  # noqa: E402
from camgrid.sim.rtp_sender import packetize  # noqa: E402
from camgrid.sim.video import CLOCK_HZ, Footage, FootageFrame  # noqa: E402

DEFAULT_FOOTAGE = ROOT.parent / "shared" / "footage" / "road-car-detection.mp4"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "camgrid-bench"
RESULTS = ROOT / "bench" / "results"
_MAGIC = b"CGBENCH1"
_FRAME = struct.Struct(">QBI")  # pts (90 kHz), key frame, length
MTU_PAYLOAD = 1400  # RTP payload bytes per packet, as camgrid.sim.rtp_sender.packetize cuts by default


# -- footage ----------------------------------------------------------------------------------
def bench_footage(source: Path = DEFAULT_FOOTAGE, *, size: tuple[int, int] = (1920, 1080), fps: int = 25,
                  bitrate: int = 4_000_000, gop_s: float = 1.0, cache_dir: Path | None = DEFAULT_CACHE,
                  log=print) -> Footage:  # noqa: ANN001
    """The source re-encoded at size/fps/bitrate, H.264 as a camera sends it (see the module doc)."""
    source = Path(source)
    st = source.stat()
    key = json.dumps([str(source.resolve()), st.st_size, st.st_mtime_ns, list(size), fps, bitrate, gop_s, _MAGIC.decode()])
    cache = Path(cache_dir) / f"{source.stem}-{size[0]}x{size[1]}-{fps}-{bitrate}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.frames" \
        if cache_dir else None
    if cache is not None and cache.is_file():
        footage = _read(cache)
        if footage is not None:
            return footage
    log(f"encoding {source.name} to {size[0]}x{size[1]} {fps} fps {bitrate / 1e6:g} Mbit/s H.264 (once; cached in {cache_dir}) ...")
    t0 = time.monotonic()
    footage = _encode(source, size, fps, bitrate, gop_s)
    log(f"  {len(footage.frames)} frames, {sum(len(f.data) for f in footage.frames) * 8 / footage.duration_s / 1e6:.2f} Mbit/s, "
        f"{time.monotonic() - t0:.0f} s")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            header = json.dumps({"width": footage.width, "height": footage.height, "fps": footage.fps,
                                 "frames": len(footage.frames)}).encode()
            out.write(_MAGIC + struct.pack(">I", len(header)) + header)
            for f in footage.frames:
                out.write(_FRAME.pack(f.pts, f.keyframe, len(f.data)) + f.data)
        os.replace(tmp, cache)
    return footage


def _read(path: Path) -> Footage | None:
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        return None
    pos = len(_MAGIC)
    (n,) = struct.unpack_from(">I", data, pos)
    header = json.loads(data[pos + 4:pos + 4 + n])
    pos += 4 + n
    frames = []
    for _ in range(header["frames"]):
        pts, key, length = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        frames.append(FootageFrame(data[pos:pos + length], pts, bool(key)))
        pos += length
    return Footage("h264", header["width"], header["height"], header["fps"], frames, len(frames) / header["fps"])


def _encode(source: Path, size: tuple[int, int], fps: int, bitrate: int, gop_s: float) -> Footage:
    keyint = max(1, round(gop_s * fps))
    kbps = bitrate // 1000
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        graph = av.filter.Graph()
        src = graph.add_buffer(template=stream)
        chain = [src, graph.add("scale", f"{size[0]}:{size[1]}:flags=bicubic"), graph.add("framerate", f"fps={fps}"),
                 graph.add("format", "yuv420p"), graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
        enc.time_base, enc.framerate = Fraction(1, fps), Fraction(fps)
        enc.bit_rate = bitrate
        enc.options = {"preset": "veryfast", "tune": "zerolatency",
                       "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:"
                                      f"vbv-maxrate={kbps}:vbv-bufsize={kbps}"}
        packets: list[av.Packet] = []
        count = 0

        def drain() -> None:
            nonlocal count
            while True:
                try:
                    out = graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                out.pts, out.time_base = count, enc.time_base
                out.pict_type = av.video.frame.PictureType.NONE
                packets.extend(enc.encode(out))
                count += 1

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
        packets.extend(enc.encode(None))
    frames = [FootageFrame(bytes(p), round(p.pts * CLOCK_HZ / fps), p.is_keyframe) for p in packets]
    return Footage("h264", size[0], size[1], float(fps), frames, len(frames) / fps)


# -- PS and RTP -------------------------------------------------------------------------------
def ps_frames(footage: Footage, seconds: float | None = None):  # noqa: ANN201
    """(pts, keyframe, PS bytes of one frame) from the first key frame on, as a camera muxes
    them; with `seconds`, the footage is looped (timestamps keep increasing) to that length."""
    frames = footage.frames[next(i for i, f in enumerate(footage.frames) if f.keyframe):]
    period = footage.frame_period
    loop_ticks = frames[-1].pts - frames[0].pts + period
    streams = {VIDEO_ID: "h264"}
    total = len(frames) if seconds is None else round(seconds * footage.fps)
    for i in range(total):
        f = frames[i % len(frames)]
        pts = f.pts - frames[0].pts + (i // len(frames)) * loop_ticks
        yield pts, f.keyframe, mux_ps(VIDEO_ID, f.data, pts, streams=streams, keyframe=f.keyframe)


def rtp_template(footage: Footage) -> tuple[list[tuple[int, int, bool, bytes]], int]:
    """One loop of the footage as RTP payloads: [(due µs from the loop start, RTP timestamp,
    marker, payload)], and the loop's length in µs. Senders add their own header."""
    out = []
    loop_ticks = 0
    for pts, _key, ps in ps_frames(footage):
        due = pts * 1_000_000 // CLOCK_HZ
        for pkt in packetize(ps, ssrc=0, seq=0, timestamp=pts, mtu_payload=MTU_PAYLOAD):
            out.append((due, pts, bool(pkt[1] & 0x80), pkt[12:]))
        loop_ticks = pts + footage.frame_period
    return out, loop_ticks * 1_000_000 // CLOCK_HZ


def write_template(path: Path, footage: Footage) -> dict:
    """The template in the format bench/sink/rtp_sender.c reads (see there); returns its figures."""
    packets, loop_us = rtp_template(footage)
    loop_ticks = loop_us * CLOCK_HZ // 1_000_000
    with open(path, "wb") as out:
        out.write(b"CGRTPT01" + struct.pack("<III", len(packets), loop_us, loop_ticks))
        for due, ts, marker, payload in packets:
            out.write(struct.pack("<IIHBB", due, ts, len(payload), marker, 0) + payload)
    wire = sum(len(p[3]) + 12 for p in packets)
    return {"packets": len(packets), "loop_s": loop_us / 1e6, "pps_per_stream": len(packets) / (loop_us / 1e6),
            "wire_bits_per_s_per_stream": wire * 8 / (loop_us / 1e6), "frames": len(footage.frames),
            "mean_payload": wire / len(packets) - 12}


# -- /proc ------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def udp_sockets(ports: set[int]) -> dict[str, int]:
    """Sum over the IPv4 UDP sockets bound to `ports`: bytes waiting in their receive queues and
    datagrams the kernel dropped because a queue was full (/proc/net/udp `drops`)."""
    queued = drops = found = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            port = int(parts[1].split(":")[1], 16)
            if port in ports:
                found += 1
                queued += int(parts[4].split(":")[1], 16)
                drops += int(parts[12])
    return {"sockets": found, "rx_queue_bytes": queued, "drops": drops}


def snmp_udp() -> dict[str, int]:
    """The host's UDP counters (/proc/net/snmp): InDatagrams, RcvbufErrors, ... (all sockets)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}


# -- processes --------------------------------------------------------------------------------
class Procs:
    """Processes started by a benchmark; all are stopped (their process groups) on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], **kw) -> subprocess.Popen:  # noqa: ANN003
        proc = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, timeout=3.0)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.close()


def on_signals_exit() -> None:
    """SIGTERM/SIGHUP raise KeyboardInterrupt like ctrl-c does, so `with Procs()` cleans up."""
    def handler(signum, frame):  # noqa: ANN001
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
