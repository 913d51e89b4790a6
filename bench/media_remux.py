"""PS → fragmented MP4 remux: camgrid's demuxer and live fMP4 writer against FFmpeg's own, same input.

    .venv/bin/python bench/media_remux.py [--seconds 60] [--repeat 11] [--every-frame]

Input: the 1080p 25 fps 4 Mbit/s H.264 footage of bench/_media_common.py looped to --seconds
(timestamps running on), muxed per frame with camgrid.media.ps.mux_ps as a camera does (pack
header; system header and stream map before key frames; PES packets of at most 65,400
bytes), written to one PS file in a temp dir (~30 MB for 60 s).

- ffmpeg: PyAV (libavformat) opens the PS file with the `mpeg` demuxer and stream-copies the
  video into the `mp4` muxer with movflags frag_keyframe+empty_moov+default_base_moof (one
  fragment per GOP), written to /dev/null. With --every-frame, a second FFmpeg variant adds
  frag_every_frame: one fragment per frame, which is what camgrid's live feed produces.
- camgrid: the same PS bytes, cut per frame into 1400-byte pieces as RTP payloads would be (cut
  before timing), fed to PsDemuxer (flush at each frame's end, as at an RTP marker bit), each
  video unit pushed to LiveFeed (init segment + one moof/mdat fragment per frame) with one
  viewer attached, all in memory. This is MediaStream's path minus RTP parsing and the
  reorder buffer (see bench/media_profile.py for those).

Both run alternately --repeat times in this process (pinned to --core); each run's CPU time
(process_time) and wall time are taken and the median is reported, as MB/s of PS input. Before
timing, each output is checked once: PyAV must read back as many video frames as went in.
How to read it: the ratio camgrid/ffmpeg of MB/s (CPU) is the figure; target (issue 3) >= 0.5.
Absolute MB/s move with the machine's load. Results also go to bench/results/media-remux-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media_common import DEFAULT_CACHE, DEFAULT_FOOTAGE, MTU_PAYLOAD, RESULTS, ROOT, bench_footage, ps_frames  # noqa: E402

from camgrid.media.live import LiveFeed  # noqa: E402
from camgrid.media.ps import PsDemuxer  # noqa: E402

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def ffmpeg_remux(ps_path: Path, out, movflags: str) -> int:  # noqa: ANN001
    """Stream copy PS → fMP4 with libavformat; returns the packets muxed."""
    count = 0
    with av.open(str(ps_path), format="mpeg") as inp:
        src = inp.streams.video[0]
        with av.open(out, "w", format="mp4", options={"movflags": movflags}) as dst:
            ost = dst.add_stream_from_template(src)
            for pkt in inp.demux(src):
                if pkt.dts is None:  # the demuxer's end-of-stream packet
                    continue
                pkt.stream = ost
                dst.mux(pkt)
                count += 1
    return count


def camgrid_remux(pieces: list[list[bytes]]) -> tuple[LiveFeed, object, int]:
    """PsDemuxer + LiveFeed over pre-cut pieces (one list per frame); returns the feed, its viewer, frames."""
    demux = PsDemuxer()
    feed = LiveFeed(max_queue_bytes=1 << 40)  # the viewer keeps everything: nothing is skipped
    viewer = feed.add_viewer()
    frames = 0
    for frame in pieces:
        for piece in frame:
            for unit in demux.feed(piece):
                if unit.is_video:
                    feed.push(unit)
                    frames += 1
        for unit in demux.flush():  # the RTP marker bit ends the frame
            if unit.is_video:
                feed.push(unit)
                frames += 1
    return feed, viewer, frames


def collect(feed: LiveFeed, viewer) -> bytes:  # noqa: ANN001
    feed.remove_viewer(viewer)

    async def drain() -> list[bytes]:
        out = []
        while (chunk := await viewer.get()) is not None:
            out.append(chunk.data)
        return out

    return b"".join(asyncio.run(drain()))


def count_frames(mp4: bytes) -> int:
    with av.open(io.BytesIO(mp4), format="mp4") as c:
        return sum(1 for p in c.demux(video=0) if p.size)


def timed(fn) -> tuple[float, float]:  # noqa: ANN001
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the PS input (default 60; the 30 s footage loops)")
    ap.add_argument("--repeat", type=int, default=11, help="runs of each, alternating (default 11)")
    ap.add_argument("--every-frame", action="store_true", help="also time FFmpeg with a fragment per frame")
    ap.add_argument("--core", type=int, default=1, help="CPU to pin this process to (-1: no pinning; default 1)")
    ap.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    if args.core >= 0 and hasattr(os, "sched_setaffinity") and args.core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {args.core})

    footage = bench_footage(args.footage, cache_dir=args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="camgrid-remux-") as tmp:
        ps_path = Path(tmp) / "input.ps"
        pieces: list[list[bytes]] = []
        size = frames_in = 0
        with open(ps_path, "wb") as out:
            for _pts, _key, ps in ps_frames(footage, args.seconds):
                out.write(ps)
                size += len(ps)
                frames_in += 1
                pieces.append([ps[i:i + MTU_PAYLOAD] for i in range(0, len(ps), MTU_PAYLOAD)])
        mb = size / 1e6
        print(f"input: {mb:.1f} MB of PS, {frames_in} frames ({args.seconds:g} s of {footage.width}x{footage.height} "
              f"{footage.fps:g} fps, {size * 8 / args.seconds / 1e6:.2f} Mbit/s), {sum(map(len, pieces))} pieces of "
              f"<= {MTU_PAYLOAD} B; PyAV {av.__version__} (FFmpeg {av.library_versions['libavformat']}); pinned to core "
              f"{args.core if args.core >= 0 else '-'}", flush=True)

        variants = {"ffmpeg": MOVFLAGS}
        if args.every_frame:
            variants["ffmpeg/frame"] = MOVFLAGS + "+frag_every_frame"
        # Check each output once (not timed): every frame must come back out.
        checks = {}
        for name, flags in variants.items():
            buf = io.BytesIO()
            muxed = ffmpeg_remux(ps_path, buf, flags)
            checks[name] = {"packets_muxed": muxed, "output_bytes": len(buf.getvalue()),
                            "frames_read_back": count_frames(buf.getvalue())}
        feed, viewer, pushed = camgrid_remux(pieces)
        mp4 = collect(feed, viewer)
        checks["camgrid"] = {"units_pushed": pushed, "fragments": feed.frames, "output_bytes": len(mp4),
                             "frames_read_back": count_frames(mp4)}
        del feed, viewer, mp4
        for name, c in checks.items():
            ok = c["frames_read_back"] == frames_in
            print(f"  check {name:12s}: {c['output_bytes'] / 1e6:6.1f} MB out, {c['frames_read_back']} of {frames_in} frames read back"
                  f"{'' if ok else '  ← MISMATCH'}")

        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in [*variants, "camgrid"]}
        for r in range(args.repeat):
            order = [*variants, "camgrid"] if r % 2 == 0 else ["camgrid", *variants]
            for name in order:
                if name == "camgrid":
                    runs[name].append(timed(lambda: camgrid_remux(pieces)))
                else:
                    runs[name].append(timed(lambda f=variants[name]: ffmpeg_remux(ps_path, os.devnull, f)))
            print(f"  run {r + 1}/{args.repeat}: " + ", ".join(f"{n} {runs[n][-1][0]:.3f} s CPU" for n in runs), flush=True)

        print(f"\nMB/s of PS input (median of {args.repeat}; best in brackets):")
        res = {}
        for name, vals in runs.items():
            cpu = statistics.median(v[0] for v in vals)
            wall = statistics.median(v[1] for v in vals)
            res[name] = {"cpu_s": cpu, "wall_s": wall, "mb_per_s_cpu": mb / cpu, "mb_per_s_wall": mb / wall,
                         "best_mb_per_s_cpu": mb / min(v[0] for v in vals), "runs": vals}
            print(f"  {name:12s}: {mb / cpu:8.1f} MB/s CPU ({mb / min(v[0] for v in vals):.1f}), {mb / wall:8.1f} MB/s wall, "
                  f"{cpu / frames_in * 1e6:7.1f} µs/frame")
        ratio = res["camgrid"]["mb_per_s_cpu"] / res["ffmpeg"]["mb_per_s_cpu"]
        ratio_wall = res["camgrid"]["mb_per_s_wall"] / res["ffmpeg"]["mb_per_s_wall"]
        print(f"\nratio camgrid/ffmpeg (frag_keyframe): {ratio:.3f} CPU, {ratio_wall:.3f} wall; target >= 0.5: "
              f"{'MET' if ratio >= 0.5 else 'NOT MET'}")
        summary = {"ratio_cpu": ratio, "ratio_wall": ratio_wall}
        if "ffmpeg/frame" in res:
            r2 = res["camgrid"]["mb_per_s_cpu"] / res["ffmpeg/frame"]["mb_per_s_cpu"]
            print(f"ratio camgrid/ffmpeg (frag_every_frame, same fragmenting as camgrid): {r2:.3f} CPU")
            summary["ratio_cpu_every_frame"] = r2
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"media-remux-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps({"time": dt.datetime.now().isoformat(timespec="seconds"), "input_mb": mb,
                                    "frames": frames_in, "checks": checks, "results": res, "summary": summary,
                                    "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
        print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
