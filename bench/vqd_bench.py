"""VQD-Bench: how well camgrid's video quality diagnosis finds faults, and how fast.

    python bench/vqd_bench.py [--quick] [--seed N] [--footage DIR] [--out DIR] [--jobs N]

1. Generates clips (bench/vqd_gen.py): every fault at three severities (and, where a fault can
   creep in, sudden and gradual onsets), hard negatives labelled normal (night, greyscale, a
   vehicle filling the view, lights switched on, a static corridor, rain or snow, a PTZ tour,
   a PTZ that does respond) and clean footage; x264-encoded at 720p or 1080p, 12.5 fps, 12 s.
   Each clip comes with its channel's reference picture (median of clean views of the same
   camera position), as a patrol would keep it.
2. Diagnoses each clip exactly as `camgrid vqd diagnose CLIP --reference REF [--ptz-at T]`
   does (in process, one decoder thread), and again without the reference.
3. Reports per fault type precision and recall with Wilson 95 % intervals, recall per severity
   and per onset, the false-alarm rate on clean footage and on each hard negative, and
   throughput: channel-diagnoses per second per CPU core at 1080p and 720p (25 fps, 2 s GOP
   H.264, decode included, CPU time of this one process).

    python bench/vqd_bench.py --seeds 1,3-8 [--no-throughput]

pools the clips of several seeds (each seed's clips as above) into one report, then per seed
the faults found and every miss and false report by clip.

Clips are cached under --out (default: a folder in the system's temporary directory), keyed
by seed and mode; the same seed gives the same clips and the same figures.

    python bench/vqd_bench.py --clean-windows [--seeds 1-12] [--stride 1.0]

False alarms on clean footage in numbers a 40-clip run cannot give: for each seed, each footage
file is rendered whole as one camera's clean stream (a view, size, x264 settings and on-screen
clock of its own, bench/vqd_gen.py `clean_streams`), every frame is decoded once, and every
12 s window starting `--stride` seconds apart is diagnosed on the pictures `open_sample` would
pick for it (key frames spread over the window, a 16-frame burst from the last key frame that
has 16 after it), with the stream's reference and without. Reports the diagnoses, the false
alarms, what they were, and Wilson 95 % intervals, for all windows and for the windows that do
not overlap (what the interval's independence assumption needs).
Footage licences: see bench/vqd_gen.py (keep the attribution lines with any clip shipped).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vqd_gen as gen  # noqa: E402

from camgrid.ops.vqd.diagnose import diagnose, diagnose_pictures  # noqa: E402
from camgrid.ops.vqd.frames import Picture, _pick, load_image, open_sample, picture_from_frame  # noqa: E402
from camgrid.ops.vqd.reference import make_reference  # noqa: E402

GROSS = {"signal_loss": None, "black_screen": None, "solid_colour": None, "freeze": 3, "occlusion": 3, "scene_change": None}
# the gross faults and the severity that makes them gross (freeze >= 10 s is severity 3, cover >= 75 % too)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def fmt(k: int, n: int) -> str:
    if n == 0:
        return "n/a"
    lo, hi = wilson(k, n)
    return f"{k / n:.3f} [{lo:.2f}, {hi:.2f}] ({k}/{n})"


def _render(args: tuple[gen.ClipSpec, Path, Path]) -> tuple[str, str, str | None]:
    spec, footage, out = args
    clip, ref = gen.render(spec, footage, out)
    return spec.name, str(clip), str(ref) if ref else None


def _existing(spec: gen.ClipSpec, out: Path) -> tuple[str, str, str | None] | None:
    for suffix in (".mp4", ".ts", ".mkv"):
        clip = out / f"{spec.name}{suffix}"
        if clip.is_file():
            ref = out / f"{spec.name}.ref.png"
            return spec.name, str(clip), str(ref) if ref.is_file() else None
    return None


def generate(specs: list[gen.ClipSpec], footage: Path, out: Path, jobs: int) -> dict[str, tuple[str, str | None]]:
    out.mkdir(parents=True, exist_ok=True)
    done = {s.name: e for s in specs if (e := _existing(s, out))}
    todo = [s for s in specs if s.name not in done]
    if todo:
        print(f"generating {len(todo)} clips into {out} ({jobs} processes) ...", file=sys.stderr, flush=True)
        with ProcessPoolExecutor(jobs) as pool:
            for i, res in enumerate(pool.map(_render, [(s, footage, out) for s in todo]), 1):
                done[res[0]] = res
                if i % 20 == 0:
                    print(f"  {i}/{len(todo)}", file=sys.stderr, flush=True)
    return {name: (clip, ref) for name, clip, ref in done.values()}


def run(specs: list[gen.ClipSpec], files: dict[str, tuple[str, str | None]], with_reference: bool = True,
        seed: int | None = None) -> list[dict]:
    rows = []
    for spec in specs:
        clip, ref_path = files[spec.name]
        ref = make_reference([load_image(ref_path)]) if ref_path and with_reference else None
        t = time.process_time()
        d = diagnose(open_sample(clip), None, ref, [spec.ptz_at] if spec.ptz_at is not None else [])
        rows.append({"name": spec.name, "seed": seed, "source": spec.source, "label": spec.label, "kind": spec.kind,
                     "severity": spec.severity,
                     "onset": spec.onset, "size": list(spec.size), "found": d.types(),
                     "cpu_s": round(time.process_time() - t, 4)})
    return rows


def report(rows: list[dict], skip: tuple[str, ...] = ()) -> str:
    lines = []
    types = [f for f in gen.FAULTS if f not in skip]
    lines.append("| fault | precision [95 % CI] | recall [95 % CI] | recall s1 / s2 / s3 | recall sudden / gradual |")
    lines.append("|---|---|---|---|---|")
    for f in types:
        pos = [r for r in rows if r["label"] == f]
        tp = sum(f in r["found"] for r in pos)
        fp = sum(f in r["found"] for r in rows if r["label"] != f)
        sev = " / ".join(f"{sum(f in r['found'] for r in pos if r['severity'] == s)}/{sum(r['severity'] == s for r in pos)}"
                         for s in (1, 2, 3))
        ons = " / ".join(f"{sum(f in r['found'] for r in pos if r['onset'] == o)}/{sum(r['onset'] == o for r in pos)}"
                         for o in ("sudden", "gradual"))
        lines.append(f"| {f} | {fmt(tp, tp + fp)} | {fmt(tp, len(pos))} | {sev} | {ons} |")
    lines.append("")
    lines.append("Gross faults (signal loss, black and solid screens, freeze >= 10 s, cover >= 75 %, camera moved):")
    lines.append("")
    lines.append("| gross fault | precision | recall | footage files (scenes) |")
    lines.append("|---|---|---|---|")
    for f, sev in GROSS.items():
        if f in skip:
            continue
        pos = [r for r in rows if r["label"] == f and (sev is None or r["severity"] == sev)]
        tp = sum(f in r["found"] for r in pos)
        fp = sum(f in r["found"] for r in rows if r["label"] != f)
        scenes = len({r["source"] for r in pos if r["kind"] != "signal_loss"}) or "-"
        lines.append(f"| {f}{' (severity 3)' if sev else ''} | {fmt(tp, tp + fp)} | {fmt(tp, len(pos))} | {scenes} |")
    lines.append("")
    lines.append("Normal footage: share of diagnoses with any fault reported (false alarms):")
    lines.append("")
    lines.append("| footage | false alarms | what was reported |")
    lines.append("|---|---|---|")
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["label"] == "normal":
            by_kind[r["kind"]].append(r)
    allneg = [r for r in rows if r["label"] == "normal"]
    for kind in gen.NEGATIVES + ["ptz_ok"]:
        rs = by_kind.get(kind, [])
        bad = [r for r in rs if r["found"]]
        what = ", ".join(sorted({t for r in bad for t in r["found"]}))
        lines.append(f"| {kind} | {fmt(len(bad), len(rs))} | {what or '-'} |")
    bad = [r for r in allneg if r["found"]]
    lines.append(f"| all normal | {fmt(len(bad), len(allneg))} | |")
    return "\n".join(lines)


def report_seeds(rows: list[dict]) -> str:
    """Per seed: gross faults found, other faults found, false reports of a type on clips without
    it, and normal clips with any report; then every miss and false report, to look into."""
    lines = ["| seed | gross faults found | other faults found | false reports of a type | normal clips with a report |",
             "|---|---|---|---|---|"]
    for seed in sorted({r["seed"] for r in rows}):
        rs = [r for r in rows if r["seed"] == seed]
        gross = [r for r in rs if r["label"] in GROSS and (GROSS[r["label"]] is None or r["severity"] == GROSS[r["label"]])]
        other = [r for r in rs if r["label"] != "normal" and r not in gross]
        false = sum(t != r["label"] for r in rs for t in r["found"])
        normal = [r for r in rs if r["label"] == "normal"]
        lines.append(f"| {seed} | {sum(r['label'] in r['found'] for r in gross)}/{len(gross)} | "
                     f"{sum(r['label'] in r['found'] for r in other)}/{len(other)} | {false} | "
                     f"{sum(bool(r['found']) for r in normal)}/{len(normal)} |")
    lines += ["", "Misses and false reports (seed, clip, footage: what was found):", ""]
    for r in rows:
        missed = r["label"] != "normal" and r["label"] not in r["found"]
        extra = [t for t in r["found"] if t != r["label"]]
        if missed or extra:
            lines.append(f"- seed {r['seed']} {r['name']} ({Path(r['source']).stem}, {r['size'][1]}p): "
                         f"{'missed ' + r['label'] + '; ' if missed else ''}found {', '.join(r['found']) or 'nothing'}")
    return "\n".join(lines)


def _throughput_clip(footage: Path, source: str, size: tuple[int, int], out: Path) -> Path:
    """12 s of a footage file at `size`, 25 fps, 2 s GOP, H.264 CRF 23 (a camera's main stream)."""
    path = out / f"tp-{Path(source).stem}-{size[1]}p.mp4"
    if path.is_file():
        return path
    part = path.with_suffix(".part.mp4")  # renamed when complete: an interrupted run leaves no half clip
    with av.open(str(footage / source)) as src, av.open(str(part), "w") as dst:
        s = dst.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "x264-params": "keyint=50:min-keyint=50:scenecut=0:bframes=0"}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= 300:
                break
            f = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            f.pts, f.time_base, f.pict_type = i, Fraction(1, 25), av.video.frame.PictureType.NONE
            for p in s.encode(f):
                dst.mux(p)
        for p in s.encode(None):
            dst.mux(p)
    part.rename(path)
    return path


def throughput(footage: Path, out: Path, reps: int) -> dict[str, dict[str, float]]:
    result = {}
    for size in ((1920, 1080), (1280, 720)):
        clips = [_throughput_clip(footage, src, size, out) for src in ("road-car-detection.mp4", "traffic-320x240.avi")
                 if (footage / src).is_file()]
        cpu = wall = 0.0
        n = 0
        for _ in range(reps):
            for clip in clips:
                t, w = time.process_time(), time.perf_counter()
                diagnose(open_sample(clip, threads=1))
                cpu += time.process_time() - t
                wall += time.perf_counter() - w
                n += 1
        result[f"{size[1]}p"] = {"diagnoses": n, "per_cpu_s": round(n / cpu, 2), "per_wall_s": round(n / wall, 2),
                                 "ms_cpu_each": round(1000 * cpu / n, 1)}
    return result


def decode_stream(path: str) -> tuple[list[tuple[float, bool, Picture]], tuple[int, int], str]:
    """Every frame of a clip decoded once (one thread): (time, key frame?, picture); key frames in
    colour with the native-resolution crop, the others luma only, as open_sample makes them."""
    out = []
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = 1
        size, codec = (stream.codec_context.width, stream.codec_context.height), stream.codec_context.name
        for frame in c.decode(stream):
            t = float(frame.time)
            key = bool(frame.key_frame)
            out.append((t, key, picture_from_frame(frame, t, colour=key, detail=key)))
    return out, size, codec


def windows(frames: list[tuple[float, bool, Picture]], seconds: float = 12.0, stride: float = 1.0,
            burst_frames: int = 16, max_spaced: int = 8):
    """(start, spaced, burst) for every window `stride` apart: the pictures open_sample would pick
    from a window of the stream starting there (frames.py `_decode_sample`), times from its start."""
    end = frames[-1][0] + (frames[-1][0] - frames[0][0]) / max(1, len(frames) - 1)
    start = 0.0
    while start == 0.0 or start + seconds <= end + 1e-6:
        win = [f for f in frames if start <= f[0] < start + seconds]
        keys = [i for i, f in enumerate(win) if f[1]]
        if len(keys) >= 3:
            t0 = win[0][0]
            enough = [k for k in keys if len(win) - k >= burst_frames]
            first_burst = enough[-1] if enough else keys[0]
            spaced_keys = _pick([k for k in keys if k < first_burst], max(0, max_spaced - 1))
            spaced = [replace(win[k][2], t=win[k][0] - t0, detail=win[k][2].detail if n >= len(spaced_keys) - 2 else None)
                      for n, k in enumerate(spaced_keys)]
            burst = [replace(win[i][2], t=win[i][0] - t0) for i in range(first_burst, min(len(win), first_burst + burst_frames))]
            yield start, spaced + burst[:1], burst
        start = round(start + stride, 6)


def _clean_stream(args: tuple[gen.ClipSpec, str, str | None, float]) -> list[dict]:
    spec, clip, ref_path, stride = args
    frames, size, codec = decode_stream(clip)
    ref = make_reference([load_image(ref_path)]) if ref_path else None
    rows = []
    for start, spaced, burst in windows(frames, stride=stride):
        for with_ref in (True, False):
            d = diagnose_pictures(spaced, burst, None, ref if with_ref else None, resolution=size, codec=codec)
            rows.append({"stream": spec.name, "source": spec.source, "seed": spec.seed, "start": start,
                         "reference": with_ref, "found": d.types(), "faults": d.faults})
    return rows


def clean_windows(seeds: list[int], footage: Path, out: Path, jobs: int, stride: float,
                  footage_only: str | None = None) -> list[dict]:
    specs = [s for seed in seeds for s in gen.clean_streams(seed, footage) if not footage_only or footage_only in s.source]
    files = generate(specs, footage, out / "clean-streams", jobs)
    rows: list[dict] = []
    with ProcessPoolExecutor(jobs) as pool:
        for res in pool.map(_clean_stream, [(s, *files[s.name], stride) for s in specs]):
            rows += res
    return rows


def fmt_rate(k: int, n: int) -> str:
    """A small rate in percent with its Wilson 95 % interval (fmt's two decimals hide it)."""
    if n == 0:
        return "n/a"
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}] ({k}/{n})"


def report_clean(rows: list[dict], seconds: float = 12.0) -> str:
    lines = ["| diagnoses | windows | false alarms [95 % CI] | what was reported |", "|---|---|---|---|"]
    for with_ref in (True, False):
        rs = [r for r in rows if r["reference"] == with_ref]
        apart = [r for r in rs if abs(r["start"] / seconds - round(r["start"] / seconds)) < 1e-6]
        for label, sel in (("all windows", rs), (f"windows {seconds:g} s apart (no overlap)", apart)):
            bad = [r for r in sel if r["found"]]
            what = Counter(t for r in bad for t in r["found"])
            lines.append(f"| {'with' if with_ref else 'without'} the reference | {label} | {fmt_rate(len(bad), len(sel))} | "
                         f"{', '.join(f'{k} {v}' for k, v in sorted(what.items())) or '-'} |")
    lines += ["", "| footage | streams | windows (with the reference) | false alarms with / without |", "|---|---|---|---|"]
    for src in sorted({r["source"] for r in rows}):
        rs = [r for r in rows if r["source"] == src]
        withr = [r for r in rs if r["reference"]]
        lines.append(f"| {src} | {len({r['stream'] for r in rs})} | {len(withr)} | "
                     f"{sum(bool(r['found']) for r in withr)} / {sum(bool(r['found']) for r in rs if not r['reference'])} |")
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips (about 120 instead of about 290)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--footage", type=Path, default=root.parent / "shared" / "footage")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "camgrid-vqd-bench")
    ap.add_argument("--jobs", type=int, default=2, help="processes generating clips")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each throughput clip")
    ap.add_argument("--json", type=Path, help="also write every clip's result here")
    ap.add_argument("--clean-windows", action="store_true", help="false alarms on many clean windows instead (see above)")
    ap.add_argument("--seeds", help="several seeds pooled (e.g. 1-12 or 1,3,5): the fault clips of each, or with "
                    "--clean-windows the clean streams (default there 1-12)")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput measurement")
    ap.add_argument("--stride", type=float, default=1.0, help="--clean-windows: seconds between window starts")
    ap.add_argument("--only", help="fault clips: only the clips labelled with these (e.g. stripe or stripe,normal)")
    ap.add_argument("--footage-only", help="--clean-windows: only the streams of footage files whose name contains this")
    a = ap.parse_args()
    if a.clean_windows:
        a.seeds = a.seeds or "1-12"
        seeds = _seeds(a.seeds)
        rows = clean_windows(seeds, a.footage, a.out, a.jobs, a.stride, a.footage_only)
        print(f"VQD-Bench clean windows: seeds {a.seeds}, {len({r['stream'] for r in rows})} clean streams, "
              f"12 s windows {a.stride:g} s apart: `python bench/vqd_bench.py --clean-windows --seeds {a.seeds} "
              f"--stride {a.stride:g}{' --footage-only ' + a.footage_only if a.footage_only else ''}`\n")
        print(report_clean(rows))
        alarms = [r for r in rows if r["found"]]
        if alarms:
            print("\nFalse alarms (stream, window start, with the reference?: what was reported):\n")
            for r in alarms:
                print(f"- {r['stream']} {r['start']:g} s, {'with' if r['reference'] else 'without'}: {r['faults']}")
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1))
        return
    seeds = _seeds(a.seeds) if a.seeds else [a.seed]
    rows, bare = [], []
    for seed in seeds:
        specs = gen.plan(seed, a.footage, quick=a.quick)
        if a.only:
            specs = [s for s in specs if s.label in a.only.split(",")]
        files = generate(specs, a.footage, a.out / f"seed{seed}-{'quick' if a.quick else 'full'}", a.jobs)
        rows += run(specs, files, seed=seed)
        bare += run(specs, files, with_reference=False, seed=seed)
    tp = {} if a.no_throughput else throughput(a.footage, a.out, a.reps)
    which = f"--seeds {a.seeds}" if a.seeds else f"--seed {a.seed}"
    cmd = "python bench/vqd_bench.py" + (" --quick" if a.quick else "") + f" {which}" + (f" --only {a.only}" if a.only else "")
    print(f"VQD-Bench: {len(rows)} clips, {'seeds ' + a.seeds if a.seeds else f'seed {a.seed}'}{' (quick)' if a.quick else ''}"
          f": `{cmd}`\n")
    print("With the channel's reference picture (as a patrol runs it):\n")
    print(report(rows))
    print("\nWithout a reference (`camgrid vqd diagnose CLIP` alone; scene_change needs one):\n")
    print(report(bare, skip=("scene_change",)))
    if len(seeds) > 1:
        print("\nBy seed, with the reference:\n")
        print(report_seeds(rows))
    if tp:
        print("\nThroughput (one process, one decoder thread, decode included; CPU time):\n")
        print("| stream | diagnoses per CPU-second | per wall-second | CPU ms each |")
        print("|---|---|---|---|")
        for k, v in tp.items():
            print(f"| {k} H.264 25 fps, 2 s GOP | {v['per_cpu_s']} | {v['per_wall_s']} | {v['ms_cpu_each']} |")
    bench_cpu = sorted(r["cpu_s"] for r in rows)
    print(f"\nBench clips (12.5 fps): median {1000 * bench_cpu[len(bench_cpu) // 2]:.0f} ms CPU per diagnosis.")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "without_reference": bare, "throughput": tp}, indent=1))


if __name__ == "__main__":
    main()
