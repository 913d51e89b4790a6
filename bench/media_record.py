"""Recording throughput: N channels written by camgrid's recorder against dd on the same disk.

    .venv/bin/python bench/media_record.py [--channels 200] [--seconds 20] [--dir PATH] [--rounds 3]

What is measured, side by side and alternating (`--rounds` times, medians):
- dd: `dd if=/dev/zero of=DIR/dd.bin bs=1M count=M conv=fsync` — the disk's sequential write
  rate with the data made durable, M sized to about what the recorder wrote;
- camgrid: N `Recorder`s (the code the media node runs: fMP4 parts of `--part-s`, each written
  and fsynced by a worker thread before the index hears of it, parts that queued up written
  together with one fsync; segments of 60 s; one SQLite index with batched writes), fed the 1080p 4 Mbit/s bench footage (bench/_media_common.py)
  round-robin as fast as the recorders take it, for `--seconds` of wall time. Throughput =
  bytes durably written / wall time, counted from the recorders' own figures.

The ratio camgrid/dd is the figure that counts (target ≥ 0.7, issue 3). The native fast path
(camgrid.media.fastpath) is used when built; CAMGRID_NATIVE=0 runs the same bench on pure Python. Also printed: how many
channels of 4 Mbit/s that throughput sustains, and parts dropped (a disk that cannot keep up
makes the recorder drop parts rather than queue without bound). Files are written under --dir
(default: a temporary directory on the same filesystem as the repository) and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _media_common import ROOT, bench_footage  # noqa: E402

from camgrid.media.ps import VIDEO_ID, AccessUnit  # noqa: E402
from camgrid.media.recorder import Recorder  # noqa: E402
from camgrid.media.recording_index import RecordingIndex  # noqa: E402
from camgrid.store.engine import make_engine, migrate  # noqa: E402


def run_dd(directory: Path, megabytes: int) -> float:
    target = directory / "dd.bin"
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={megabytes}", "conv=fsync"],
                   check=True, capture_output=True)
    elapsed = time.monotonic() - t0
    target.unlink()
    return megabytes * 1048576 / elapsed


async def run_recorders(directory: Path, footage, channels: int, seconds: float, part_s: float) -> dict:
    engine = make_engine(f"sqlite:///{directory / 'index.db'}")
    migrate(engine)
    index = RecordingIndex(engine, flush_interval_s=1.0)
    await index.start()
    recorders = []
    for n in range(channels):
        clock_box = [time.time()]
        rec = Recorder(channel_id=f"3402000000131{n:07d}", device_id="34020000001320000001", root=directory / "rec",
                       index=index, node_id="bench", part_s=part_s, segment_s=60, clock=lambda box=clock_box: box[0])
        rec.start()
        recorders.append((rec, clock_box))
    frames = footage.frames
    period = 1 / footage.fps
    loop = asyncio.get_running_loop()
    start = loop.time()
    i = 0
    # Frames go to every channel in turn; each channel's clock runs at the footage's rate, so its
    # parts are part_s of media each, however fast they are fed.
    while loop.time() - start < seconds:
        frame = frames[i % len(frames)]
        pts = i * round(90_000 * period)
        for rec, box in recorders:
            rec.push(AccessUnit(VIDEO_ID, "h264", pts, pts, frame.data, frame.keyframe))
            box[0] += period
        i += 1
        if i % 5 == 0:
            await asyncio.sleep(0)  # let the write workers run
    fed_s = loop.time() - start
    for rec, _ in recorders:
        await rec.stop()
    elapsed = loop.time() - start
    await index.stop()
    engine.dispose()
    written = sum(rec.bytes_written for rec, _ in recorders)
    dropped = sum(rec.parts_dropped for rec, _ in recorders)
    parts = sum(rec.parts_written for rec, _ in recorders)
    return {"bytes": written, "elapsed_s": elapsed, "fed_s": fed_s, "parts": parts, "dropped": dropped,
            "media_s_per_channel": i * period, "rate": written / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--part-s", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir beside the repository)")
    args = ap.parse_args()

    footage = bench_footage()
    bitrate = sum(len(f.data) for f in footage.frames) * 8 / footage.duration_s
    base = args.dir or ROOT.parent
    cam_rates, dd_rates, rows = [], [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="camgrid-rec-bench-", dir=base) as tmp:
            result = asyncio.run(run_recorders(Path(tmp), footage, args.channels, args.seconds, args.part_s))
            megabytes = max(64, int(result["bytes"] / 1048576))
            shutil.rmtree(Path(tmp) / "rec", ignore_errors=True)
            dd = run_dd(Path(tmp), megabytes)
        cam_rates.append(result["rate"])
        dd_rates.append(dd)
        rows.append(result)
        print(f"round {r + 1}: camgrid {result['rate'] / 1e6:7.1f} MB/s ({result['parts']} parts, {result['dropped']} dropped, "
              f"{result['media_s_per_channel']:.1f} s of media per channel in {result['elapsed_s']:.1f} s)   "
              f"dd {dd / 1e6:7.1f} MB/s ({megabytes} MiB, conv=fsync)", flush=True)
    cam, dd = statistics.median(cam_rates), statistics.median(dd_rates)
    print(f"\n{args.channels} channels, parts of {args.part_s:g} s, footage {footage.width}x{footage.height} "
          f"{bitrate / 1e6:.2f} Mbit/s, on {base}:")
    print(f"  camgrid {cam / 1e6:.1f} MB/s, dd {dd / 1e6:.1f} MB/s -> ratio {cam / dd:.2f} (target >= 0.70: "
          f"{'MET' if cam / dd >= 0.7 else 'NOT MET'})")
    print(f"  that throughput sustains about {cam * 8 / bitrate:.0f} channels of {bitrate / 1e6:.1f} Mbit/s; "
          f"parts dropped: {sum(r['dropped'] for r in rows)}")


if __name__ == "__main__":
    main()
