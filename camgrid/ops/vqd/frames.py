"""Pictures to diagnose: from a file or stream (PyAV), from arrays, from an image.

Diagnosis looks at few pictures, chosen so that decoding stays cheap (a patrol diagnoses every
channel of a city in rounds):

- `spaced`: key frames spread over the window (by default up to 8 over 12 s); key frames decode
  on their own, so no frame between them is decoded. They show what lasts (freeze, cover, a
  moved camera, exposure, colour).
- `burst`: consecutive frames at the end of the window (by default 16, decoded from the last key
  frame that has that many after it): what moves from frame to frame (shaking, noise, rolling
  stripes), and the camera's state now.

Every picture is scaled down early (luma ~480 px wide, swscale's area filter) because what is
measured is the picture's content, not its pixels; a native-resolution crop of the luma is kept
for a few of them, for noise, which scaling would average away. Decoding runs on one thread by
default: a patrol runs many channels side by side, and throughput is stated per core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

ANALYSIS_WIDTH = 480
DETAIL_SIZE = (270, 480)  # the native-resolution luma crop kept for noise (rows, cols)


class SourceError(Exception):
    """The input cannot be opened (missing, unreadable, not a media file, unreachable)."""


@dataclass
class Picture:
    """One decoded picture at analysis size. `u`/`v` are None for burst frames (luma only)."""

    t: float  # seconds from the start of the window
    y: np.ndarray  # luma, uint8, analysis size
    u: np.ndarray | None = None  # chroma, half the analysis size (4:2:0)
    v: np.ndarray | None = None
    detail: np.ndarray | None = None  # native-resolution luma crop (centre), for noise


@dataclass
class Sample:
    spaced: list[Picture] = field(default_factory=list)  # oldest first
    burst: list[Picture] = field(default_factory=list)  # consecutive, at the end of the window
    width: int = 0  # the stream's own resolution
    height: int = 0
    codec: str | None = None
    fps: float | None = None
    duration_s: float = 0.0  # the span the pictures cover
    note: str | None = None  # why there is no picture, when there is none

    @property
    def pictures(self) -> list[Picture]:
        """Every distinct picture in time order (the burst's first frame is the last spaced one)."""
        seen = {id(p) for p in self.spaced}
        return sorted(self.spaced + [p for p in self.burst if id(p) not in seen], key=lambda p: p.t)


def analysis_size(width: int, height: int, target: int = ANALYSIS_WIDTH) -> tuple[int, int]:
    """(width, height) to analyse at: `target` wide (never wider than the source), even sizes."""
    if width <= 0 or height <= 0:
        return 2, 2
    if width <= target:
        return max(2, width - width % 2), max(2, height - height % 2)
    h = max(2, round(height * target / width))
    return target, h - h % 2


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    p = frame.planes[index]
    rows = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)
    return rows[:, :p.width]


def picture_from_frame(frame: av.VideoFrame, t: float, *, colour: bool = True, detail: bool = False,
                       width: int = ANALYSIS_WIDTH) -> Picture:
    """A decoded frame scaled to analysis size (luma, and chroma when `colour`)."""
    w, h = analysis_size(frame.width, frame.height, width)
    crop = None
    if detail and frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"):
        full = _plane(frame, 0)
        ch, cw = min(DETAIL_SIZE[0], full.shape[0]), min(DETAIL_SIZE[1], full.shape[1])
        r0, c0 = (full.shape[0] - ch) // 2, (full.shape[1] - cw) // 2
        crop = full[r0:r0 + ch, c0:c0 + cw].copy()
    # yuv420p for luma-only pictures too: "gray" would also convert the range (16-235 to 0-255),
    # and burst pictures are compared with the colour picture that starts the burst
    small = frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
    if not colour:
        return Picture(t, _plane(small, 0).copy(), detail=crop)
    y, u, v = (_plane(small, i).copy() for i in range(3))
    if crop is None and detail:
        crop = _plane(frame.reformat(format="gray"), 0).copy()[:DETAIL_SIZE[0], :DETAIL_SIZE[1]]
    return Picture(t, y, u, v, detail=crop)


def picture_from_rgb(rgb: np.ndarray, t: float = 0.0, *, width: int = ANALYSIS_WIDTH) -> Picture:
    """A picture from an RGB (H x W x 3) or greyscale (H x W) uint8 array."""
    a = np.ascontiguousarray(np.clip(np.asarray(rgb), 0, 255).astype(np.uint8))
    if a.ndim == 2:
        a = np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    h, w = a.shape[:2]
    a = a[:h - h % 2, :w - w % 2]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24").reformat(format="yuv420p")
    return picture_from_frame(frame, t, colour=True, detail=True, width=width)


def load_image(path: str | Path, *, width: int = ANALYSIS_WIDTH) -> Picture:
    """The first picture of an image (PNG, JPEG, ...) or video file, e.g. a reference frame."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return picture_from_frame(frame, 0.0, colour=True, detail=True, width=width)
    except (av.error.FFmpegError, OSError, IndexError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read an image: {exc}") from exc
    raise SourceError(f"{path}: no picture in it")


def _decode(ctx: av.CodecContext, packets: list[av.Packet], flush: bool) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    for packet in packets:
        try:
            frames += ctx.decode(packet)
        except (av.error.FFmpegError, ValueError):
            continue  # a damaged packet: the next key frame may still decode
    if flush:
        try:
            frames += ctx.decode(None)
        except (av.error.FFmpegError, ValueError):
            pass
        ctx.flush_buffers()
    return frames


def _pick(indices: list[int], n: int) -> list[int]:
    if len(indices) <= n:
        return indices
    step = (len(indices) - 1) / max(1, n - 1)
    return sorted({indices[round(i * step)] for i in range(n)})


def open_sample(source: str | Path, *, seconds: float = 12.0, burst_frames: int = 16, max_spaced: int = 8,
                width: int = ANALYSIS_WIDTH, timeout_s: float = 10.0, threads: int = 1) -> Sample:
    """Read up to `seconds` of video from a file or URL and decode the spaced key frames and the
    final burst. Raises SourceError when the input cannot be opened; an input that opens but
    gives no decodable video returns a Sample with no pictures (the caller calls that signal loss)."""
    if isinstance(source, Path) or "://" not in str(source):
        path = Path(source)
        if not path.is_file():
            raise SourceError(f"{source}: no such file" if not path.exists() else f"{source}: not a file")
        try:
            with path.open("rb") as fh:
                if not fh.read(1):  # readable, and nothing was ever written to it
                    return Sample(note="the file is empty")
        except OSError as exc:
            raise SourceError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    try:
        container = av.open(str(source), timeout=(timeout_s, timeout_s))
    except av.error.EOFError:  # a header and nothing after it
        return Sample(note="the input ends before any video")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise SourceError(f"{source}: cannot open as video ({exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc}); check the path or URL and that it is a "
                          "media file or stream FFmpeg can read") from exc
    with container:
        sample = Sample()
        if not container.streams.video:
            sample.note = "no video stream"
            return sample
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = max(1, threads)
        sample.codec, sample.width, sample.height = ctx.name, ctx.width, ctx.height
        rate = stream.average_rate or stream.guessed_rate
        sample.fps = float(rate) if rate and 0 < rate <= 240 else None
        packets = _read_packets(container, stream, seconds, timeout_s, sample.fps)
        if not packets:
            sample.note = "no video packets"
            return sample
        _decode_sample(ctx, packets, sample, burst_frames, max_spaced, width)
        if not sample.spaced and not sample.burst:
            sample.note = "no video frame could be decoded"
    if sample.spaced or sample.burst:
        first = sample.pictures[0]
        if sample.width <= 0:
            sample.width, sample.height = first.y.shape[1], first.y.shape[0]
        period = 1.0 / sample.fps if sample.fps else 0.0
        sample.duration_s = round(sample.pictures[-1].t - first.t + period, 3)
    return sample


def _read_packets(container, stream, seconds: float, timeout_s: float, fps: float | None) -> list[tuple[float, av.Packet]]:
    """(time from the first packet, packet) for the window; damaged input ends the read early."""
    out: list[tuple[float, av.Packet]] = []
    tb = stream.time_base
    t0 = None
    deadline = time.monotonic() + seconds + timeout_s  # a live stream delivers in real time
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            t = float(stamp * tb) if stamp is not None and tb else len(out) / (fps or 25.0)
            t0 = t if t0 is None else t0
            if t - t0 >= seconds:
                break
            out.append((t - t0, packet))
            if time.monotonic() > deadline:
                break
    except (av.error.FFmpegError, ValueError, OSError):
        pass
    return out


def _decode_sample(ctx, packets, sample: Sample, burst_frames: int, max_spaced: int, width: int) -> None:
    keys = [i for i, (_, p) in enumerate(packets) if p.is_keyframe and p.size > 16]  # not AVI placeholders
    if len(keys) < 3:  # long GOPs, or no key frame flags (raw streams): decode everything once
        _decode_all(ctx, packets[keys[0] if keys else 0:], sample, burst_frames, max_spaced, width)
        return
    enough = [k for k in keys if len(packets) - k >= burst_frames]
    start = enough[-1] if enough else keys[0]
    spaced_keys = _pick([k for k in keys if k < start], max(0, max_spaced - 1))
    detail_from = len(spaced_keys) - 2  # native crops for the last spaced key frames and the burst start
    for n, k in enumerate(spaced_keys):
        frames = _decode(ctx, [packets[k][1]], flush=True)
        if frames:
            sample.spaced.append(picture_from_frame(frames[-1], packets[k][0], detail=n >= detail_from, width=width))
    burst = _decode(ctx, [p for _, p in packets[start:start + burst_frames]], flush=True)
    times = sorted(t for t, _ in packets[start:start + burst_frames])
    for i, frame in enumerate(burst):
        t = times[i] if i < len(times) else times[-1] + i * 0.04
        if i == 0:
            first = picture_from_frame(frame, t, detail=True, width=width)
            sample.spaced.append(first)
            sample.burst.append(first)
        else:
            sample.burst.append(picture_from_frame(frame, t, colour=False, width=width))


def _decode_all(ctx, packets, sample: Sample, burst_frames: int, max_spaced: int, width: int) -> None:
    """Decode every packet (the costly path, for inputs with fewer than 3 key frames in the window)."""
    frames = _decode(ctx, [p for _, p in packets], flush=True)
    times = sorted(t for t, _ in packets)[:len(frames)]
    if not frames:
        return
    start = max(0, len(frames) - burst_frames)
    for n, i in enumerate(_pick(list(range(start)), max(0, max_spaced - 1))):
        sample.spaced.append(picture_from_frame(frames[i], times[i], detail=n >= max_spaced - 3, width=width))
    for i in range(start, len(frames)):
        first = i == start
        pic = picture_from_frame(frames[i], times[i], colour=first, detail=first, width=width)
        if first:
            sample.spaced.append(pic)
        sample.burst.append(pic)
