"""VQD-Bench clip generator: clean footage with faults injected, re-encoded with x264.

Seeded and deterministic: a clip is fully described by its `ClipSpec` (source, offset, size,
fault, severity 1..3, onset, seed), so the same seed gives the same clips. Faults are injected
at the source's own resolution (cheap), except noise, which is added after scaling to the
target resolution as a sensor would; then every frame is encoded with x264 (veryfast, CRF 21-28,
no B-frames, 1-2 s GOP), so the detectors see real compression.

Footage licences (keep these lines wherever clips made from the footage are shipped):
- road-car-detection.mp4, indoor-bottles.mp4: CC BY 4.0, Intel Corporation, "IoT devkit sample videos"
- street-640x360.avi, highway-cctv-osd-320x240.avi, traffic-320x240.avi: MIT,
  Copyright (c) 2012-2024 Andrews Cordolino Sobral (bgslibrary)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = Fraction(25, 2)  # a typical sub-stream frame rate
CLIP_S = 12.0
WINDOW = 0.86  # every clip shows an 86 % window of its source, so a moved camera has room to move
SOURCES = ["road-car-detection.mp4", "indoor-bottles.mp4", "street-640x360.avi",
           "highway-cctv-osd-320x240.avi", "traffic-320x240.avi"]
FAULTS = ["signal_loss", "black_screen", "solid_colour", "freeze", "blur", "too_dark", "too_bright", "low_contrast",
          "colour_cast", "colourless", "noise", "stripe", "occlusion", "scene_change", "jitter", "ptz_unresponsive"]
NEGATIVES = ["clean", "night", "greyscale", "vehicle", "lights_on", "static_corridor", "rain_snow", "ptz_tour"]
GRADUAL = {"blur", "too_dark", "too_bright", "low_contrast", "colour_cast", "colourless", "noise", "stripe",
           "occlusion", "scene_change", "black_screen"}  # faults that can also creep in over seconds
RAMP_S = 4.0

# A 5x7 bitmap font for on-screen text (clocks, "NO VIDEO"): rows as bit strings.
_FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000", "-": "00000 00000 00000 11111 00000 00000 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000", "N": "10001 11001 10101 10011 10001 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "I": "01110 00100 00100 00100 00100 00100 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
}


@dataclass(frozen=True)
class ClipSpec:
    name: str
    label: str  # the fault injected, or "normal"
    kind: str  # the fault, or the hard negative (clean, night, ...)
    source: str
    offset_s: float
    size: tuple[int, int]  # (width, height) encoded
    severity: int = 0  # 1 (mild) .. 3 (gross); 0 for negatives
    onset: str = "sudden"  # sudden | gradual
    onset_s: float = 2.0
    seed: int = 0
    ptz_at: float | None = None  # when a PTZ command was sent (ptz clips)
    variant: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)
    seconds: float = CLIP_S  # how long the clip is (longer for the false-alarm mode's clean streams)


def text(img: np.ndarray, s: str, x: int, y: int, scale: int, colour=(235, 235, 235)) -> None:
    """Draw `s` into an H x W x 3 float image at (x, y) with the bitmap font."""
    for i, ch in enumerate(s):
        rows = _FONT.get(ch, _FONT[" "]).split()
        for r, bits in enumerate(rows):
            for c, bit in enumerate(bits):
                if bit == "1":
                    y0, x0 = y + r * scale, x + (i * 6 + c) * scale
                    img[y0:y0 + scale, x0:x0 + scale] = colour


def clock(img: np.ndarray, t: float, base_s: int) -> None:
    """A camera's on-screen date and time (top left), ticking once per second."""
    s = base_s + int(t)
    scale = max(1, img.shape[1] // 320)
    text(img, f"2026-05-14 {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}", 4 * scale, 4 * scale, scale)


def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return img
    r = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            acc += w * p.take(range(i, i + out.shape[axis]), axis=axis)
        out = acc
    return out


def lowfreq(rng: np.random.Generator, h: int, w: int, cells: int = 6) -> np.ndarray:
    """Smooth random field 0..1 (a cloth, a hand, a vehicle's paint under uneven light)."""
    g = rng.random((cells + 1, cells + 1))
    yi, xi = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(yi.astype(int), cells - 1), np.minimum(xi.astype(int), cells - 1)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bot = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


class Source:
    """Frames of a footage file at the clip's frame rate, as float32 RGB at source resolution."""

    def __init__(self, path: Path, offset_s: float):
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        self.frames = self.container.decode(self.stream)
        self.offset = offset_s
        self.last: np.ndarray | None = None
        self.last_t = -1.0

    def at(self, t: float) -> np.ndarray:
        """The source frame shown at clip time t (t only grows)."""
        want = self.offset + t
        while self.last is None or self.last_t + 1e-6 < want:
            try:
                frame = next(self.frames)
            except StopIteration:
                break
            ft = float(frame.time) if frame.time is not None else self.last_t + 0.04
            if ft + 0.05 < want and self.last is not None:
                self.last_t = ft
                continue
            self.last = frame.to_ndarray(format="rgb24").astype(np.float32)
            self.last_t = ft
        assert self.last is not None, "source has no frames"
        return self.last

    def close(self) -> None:
        self.container.close()


def window(img: np.ndarray, dx: float = 0.0, dy: float = 0.0, zoom: float = 1.0) -> np.ndarray:
    """The WINDOW-size crop, moved by (dx, dy) in fractions of the width/height, optionally zoomed."""
    h, w = img.shape[:2]
    ch, cw = int(h * WINDOW / zoom), int(w * WINDOW / zoom)
    cy = int(round((h - ch) / 2 + dy * h))
    cx = int(round((w - cw) / 2 + dx * w))
    cy, cx = min(max(cy, 0), h - ch), min(max(cx, 0), w - cw)
    return img[cy:cy + ch, cx:cx + cw]


def _ramp(spec: ClipSpec, t: float) -> float:
    """How far the fault has come at clip time t: 0 before the onset, 1 once established."""
    if t < spec.onset_s:
        return 0.0
    if spec.onset == "gradual":
        return min(1.0, (t - spec.onset_s) / RAMP_S)
    return 1.0


class Injector:
    """Applies one clip's fault or hard negative, frame by frame (state: particles, masks, ...)."""

    def __init__(self, spec: ClipSpec, shape: tuple[int, int]):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        h, w = shape
        self.h, self.w = h, w
        s = spec.severity
        r = self.rng
        self.frozen: np.ndarray | None = None
        self.clock_base = int(r.integers(0, 86400))
        self.with_clock = spec.variant == "clock"
        if spec.kind == "occlusion":
            self.cover = self._cover_mask({1: 0.3, 2: 0.55, 3: float(r.choice([0.8, 1.0]))}[s])
            shade = lowfreq(r, h, w, 4)
            base = r.uniform(15, 70)
            tint = np.array([1.0, r.uniform(0.85, 1.05), r.uniform(0.75, 1.0)], np.float32)
            self.cover_img = ((base + 25 * shade)[:, :, None] * tint).astype(np.float32)
        if spec.kind in ("rain_snow",):
            n = int(r.integers(250, 700))
            self.particles = np.stack([r.uniform(0, h, n), r.uniform(0, w, n), r.uniform(0.6, 1.4, n)], 1)
            self.snow = r.random() < 0.5
        if spec.kind == "vehicle":
            self.vehicle_t = r.uniform(3.0, CLIP_S - 6.0)
            paint = np.array(r.choice([[200, 200, 205], [180, 30, 30], [30, 60, 160], [240, 240, 240], [40, 40, 40]]), np.float32)
            tex = lowfreq(r, int(h * 0.95), int(w * 1.2), 8)[:, :, None]
            self.vehicle_img = np.clip(paint * (0.75 + 0.5 * tex), 0, 255)
            for i in range(3):  # windows and panel lines: a vehicle has detail
                y0 = int(h * (0.1 + 0.25 * i))
                self.vehicle_img[y0:y0 + max(2, h // 60)] *= 0.4
            self.vehicle_img[: int(h * 0.3), ::max(8, w // 10)] = 30
        if spec.kind == "colour_cast":
            direction = r.choice([[0.75, 0.95, 1.35], [1.3, 1.1, 0.65], [0.8, 1.25, 0.8], [1.3, 0.75, 1.2], [1.35, 0.9, 0.8]])
            k = {1: 0.55, 2: 1.0, 3: 1.6}[s]
            self.gains = np.clip(1 + (np.array(direction, np.float32) - 1) * k, 0.2, 3)
        if spec.kind == "stripe":
            self.period = r.uniform(0.04, 0.12) * h
            self.vertical = r.random() < 0.3
            self.roll = r.uniform(0.5, 3.0) if r.random() < 0.7 else 0.0
        if spec.kind == "jitter":
            self.amp = {1: 0.006, 2: 0.012, 3: 0.024}[s]
        if spec.kind == "scene_change":
            ang = r.uniform(0, 2 * np.pi)
            mag = {1: 0.04, 2: 0.07, 3: 0.12}[s]
            self.move = (float(np.cos(ang) * mag), float(np.sin(ang) * mag * 0.6), 1.0 if s < 3 else 1.15)
        if spec.kind == "ptz_tour":
            self.stops = [(r.uniform(-0.07, 0.07), r.uniform(-0.07, 0.07)) for _ in range(4)]
        if spec.kind == "lights_on":
            self.switch_t = r.uniform(2.0, 8.0)
        if spec.kind == "static_corridor":
            self.sensor = r.uniform(1.5, 3.0)
        self.night_lamps = [(r.uniform(0.1, 0.9) * w, r.uniform(0.05, 0.5) * h, r.uniform(0.01, 0.03) * w) for _ in range(int(r.integers(2, 6)))]

    def _cover_mask(self, frac: float) -> np.ndarray:
        h, w = self.h, self.w
        if frac >= 0.999:
            return np.ones((h, w), np.float32)
        side = self.rng.integers(0, 4)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        coord = [xx / w, 1 - xx / w, yy / h, 1 - yy / h][side]
        other = [yy / h, yy / h, xx / w, xx / w][side]
        wave = 0.05 * np.sin(other * np.pi * self.rng.uniform(1, 3) + self.rng.uniform(0, 6))
        mask = (coord < frac + wave).astype(np.float32)
        return np.clip(gaussian(mask, max(1.0, w * 0.01)), 0, 1)

    def view(self, t: float) -> tuple[float, float, float]:
        """Where the camera points (dx, dy, zoom) at clip time t."""
        k, s = self.spec.kind, self.spec
        if k == "clean" and "view" in s.extra:  # the false-alarm mode's clean streams: a camera position of their own
            return tuple(s.extra["view"])
        if k == "scene_change":
            a = _ramp(s, t)
            return self.move[0] * a, self.move[1] * a, 1 + (self.move[2] - 1) * a
        if k == "jitter" and _ramp(s, t) > 0:
            return (float(self.rng.normal(0, self.amp)), float(self.rng.normal(0, self.amp * 0.7)), 1.0)
        if k == "ptz_tour":  # move between presets: 1.5 s travel, 1.5 s dwell
            i = int(t // 3.0)
            a, b = self.stops[i % 4], self.stops[(i + 1) % 4]
            f = min(1.0, (t % 3.0) / 1.5)
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, 1.0
        if k == "ptz_ok" and s.ptz_at is not None and t > s.ptz_at + 0.4:
            f = min(1.0, (t - s.ptz_at - 0.4) / 2.0)
            return 0.06 * f, 0.0, 1.0
        return 0.0, 0.0, 1.0

    def final_view(self) -> tuple[float, float, float]:
        if self.spec.kind == "clean" and "view" in self.spec.extra:
            return tuple(self.spec.extra["view"])
        return self.view(CLIP_S - 1e-3) if self.spec.kind in ("ptz_tour", "ptz_ok") else (0.0, 0.0, 1.0)

    def apply(self, img: np.ndarray, t: float) -> np.ndarray:
        """Fault or hard negative on a source-resolution RGB float frame (already windowed)."""
        s, k, a = self.spec, self.spec.kind, _ramp(self.spec, t)
        h, w = img.shape[:2]
        if k == "black_screen" and a > 0:
            black = np.full_like(img, 2.0 if s.severity < 3 else 0.0)
            if s.severity == 1:
                text(black, "NO VIDEO", w // 3, h // 2, max(1, w // 200))
            img = img * (1 - a) + black * a
        elif k == "solid_colour" and a > 0:
            colour = {"blue": (16, 40, 200), "grey": (128, 128, 128), "green": (0, 135, 0), "white": (240, 240, 240)}[s.variant]
            flat = np.empty_like(img)
            flat[:] = colour
            if s.severity == 1:
                text(flat, "NO VIDEO", w // 3, h // 2, max(1, w // 200))
            img = flat
        elif k == "freeze":
            if t >= s.onset_s:
                if self.frozen is None:
                    self.frozen = img.copy()
                img = self.frozen.copy()
        elif k == "blur" and a > 0:
            img = gaussian(img, a * {1: 0.004, 2: 0.008, 3: 0.016}[s.severity] * w / WINDOW)
        elif k == "too_dark" and a > 0:
            img = img * (1 - a + a * {1: 0.3, 2: 0.2, 3: 0.1}[s.severity])
        elif k == "too_bright" and a > 0:
            g = {1: 1.8, 2: 2.4, 3: 3.2}[s.severity]
            img = img * (1 + a * (g - 1)) + a * 30
        elif k == "low_contrast" and a > 0:
            c = 1 - a * (1 - {1: 0.35, 2: 0.22, 3: 0.12}[s.severity])
            img = 165 + (img - img.mean()) * c + (img.mean() - 165) * c
        elif k == "colour_cast" and a > 0:
            img = img * (1 + a * (self.gains - 1))
        elif k in ("colourless", "greyscale") and (a > 0 or k == "greyscale"):
            keep = {1: 0.35, 2: 0.2, 3: 0.1}.get(s.severity, 0.0) if k == "colourless" else 0.0
            keep = 1 - a * (1 - keep) if k == "colourless" else 0.0
            grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
            img = grey[:, :, None] + (img - grey[:, :, None]) * keep
        elif k == "stripe" and a > 0:
            amp = {1: 5.0, 2: 10.0, 3: 20.0}[s.severity] * a
            coord = np.arange(w if self.vertical else h, dtype=np.float32) * (h / w if self.vertical else 1.0)
            band = amp * np.sin(2 * np.pi * (coord / self.period + self.roll * t))
            img = img + (band[None, :, None] if self.vertical else band[:, None, None])
        elif k == "occlusion" and a > 0:
            m = (self.cover * a)[:, :, None]
            img = img * (1 - m) + self.cover_img * m
        elif k == "night":
            lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
            img = (lum[:, :, None] * 0.5 + img * 0.5) * 0.22
            img *= np.array([0.9, 0.95, 1.1], np.float32)
            yy, xx = np.mgrid[0:h, 0:w]
            for lx, ly, lr in self.night_lamps:
                d2 = ((xx - lx) ** 2 + (yy - ly) ** 2) / (lr * lr)
                img += (np.array([255, 220, 150], np.float32) * np.exp(-d2)[:, :, None])
                img += (np.array([60, 50, 30], np.float32) * np.exp(-d2 / 30)[:, :, None])
        elif k == "vehicle":
            p = (t - self.vehicle_t) / 3.0  # crosses the view in 3 s
            if 0 <= p <= 1:
                vh, vw = self.vehicle_img.shape[:2]
                x0 = int(-vw + p * (w + vw))
                xa, xb = max(0, x0), min(w, x0 + vw)
                if xb > xa:
                    img = img.copy()
                    img[h - min(vh, h):, xa:xb] = self.vehicle_img[:min(vh, h), xa - x0:xb - x0]
        elif k == "lights_on":
            if t < self.switch_t:
                img = img * 0.12
        elif k == "static_corridor":
            if self.frozen is None:
                self.frozen = img.copy()
            flicker = 1 + 0.01 * np.sin(2 * np.pi * 0.7 * t)
            img = self.frozen * flicker + self.rng.normal(0, self.sensor, img.shape[:2])[:, :, None].astype(np.float32)
        elif k == "rain_snow":
            img = img.copy()
            p = self.particles
            p[:, 0] = (p[:, 0] + p[:, 2] * h * (0.04 if self.snow else 0.25)) % h
            ys, xs = p[:, 0].astype(int), p[:, 1].astype(int) % w
            length = 1 if self.snow else max(2, h // 40)
            for dy in range(length + (1 if self.snow else 0)):
                yy = np.clip(ys + dy, 0, h - 1)
                img[yy, xs] = img[yy, xs] * 0.45 + 0.55 * (235 if self.snow else 200)
                if self.snow:
                    img[yy, np.clip(xs + 1, 0, w - 1)] = 230
        if self.with_clock:
            img = img.copy() if img is self.frozen else img
            clock(img, t, self.clock_base)
        return img

    def sensor_noise(self, t: float) -> float:
        """Gaussian noise sigma to add at the target resolution (luma, grey levels)."""
        k, s = self.spec.kind, self.spec
        if k == "noise":
            return _ramp(s, t) * {1: 7.0, 2: 14.0, 3: 24.0}[s.severity]
        if k == "night":
            return 4.0
        return 0.0


def _encoder(out: av.container.OutputContainer, spec: ClipSpec, rng: random.Random) -> av.VideoStream:
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height = spec.size
    stream.pix_fmt = "yuv420p"
    keyint = rng.choice([12, 25])  # ~1 s or 2 s GOP, fixed as cameras do
    stream.options = {"preset": "veryfast", "crf": str(rng.randint(21, 28)),
                      "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"}
    return stream


def render(spec: ClipSpec, footage: Path, out_dir: Path) -> tuple[Path, Path | None]:
    """Write the clip (and its channel's reference picture, PNG) into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / f"{spec.name}.mp4"
    ref = out_dir / f"{spec.name}.ref.png"
    rng = random.Random(spec.seed)
    if spec.kind == "signal_loss":
        return _signal_loss(spec, footage, clip, rng), None
    src = Source(footage / spec.source, spec.offset_s)
    first = window(src.at(0.0))
    inj = Injector(spec, first.shape[:2])
    nrng = np.random.default_rng(spec.seed + 1)
    w, h = spec.size
    bank = [nrng.normal(0, 1, (h + 16, w + 16)).astype(np.float32) for _ in range(3)]
    n = int(spec.seconds * FPS)
    ref_views: list[np.ndarray] = []
    part = clip.with_suffix(".part.mp4")  # renamed when complete: an interrupted run leaves no half clip
    try:
        with av.open(str(part), "w") as out:
            stream = _encoder(out, spec, rng)
            for i in range(n):
                t = i / float(FPS)
                raw = src.at(t)
                if i % int(2 * FPS) == int(FPS):  # the channel's reference: median of clean views, 2 s apart
                    ref_views.append(window(raw, *inj.final_view()).copy())
                img = inj.apply(window(raw, *inj.view(t)), t)
                rgb = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=w, height=h, format="yuv420p")
                sigma = inj.sensor_noise(t)
                if sigma > 0:
                    planes = frame.to_ndarray().astype(np.float32)
                    noise = bank[i % 3]
                    oy, ox = nrng.integers(0, 16, 2)
                    planes[:h] += sigma * noise[oy:oy + h, ox:ox + w]
                    planes[h:] += 0.3 * sigma * noise[oy:oy + h // 2, ox:ox + w]  # U and V rows, packed
                    frame = av.VideoFrame.from_ndarray(np.clip(planes, 0, 255).astype(np.uint8), format="yuv420p")
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    finally:
        src.close()
    _write_png(ref, np.median(np.stack(ref_views), axis=0), spec.size)
    part.rename(clip)
    return clip, ref


def _write_png(path: Path, img: np.ndarray, size: tuple[int, int]) -> None:
    rgb = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=size[0], height=size[1])
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = size[0], size[1], "rgb24"
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def _signal_loss(spec: ClipSpec, footage: Path, clip: Path, rng: random.Random) -> Path:
    """Inputs that open but give no picture: garbage payloads, a video stream without packets,
    audio only."""
    if spec.variant == "audio_only":
        clip = clip.with_suffix(".ts")
        with av.open(str(clip), "w", format="mpegts") as out:
            a = out.add_stream("mp2", rate=48000)
            for i in range(int(CLIP_S * 48000 / 1152)):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152 * 2), np.int16), format="s16", layout="stereo")
                frame.sample_rate, frame.pts = 48000, i * 1152
                for p in a.encode(frame):
                    out.mux(p)
        return clip
    clip = clip.with_suffix(".ts" if spec.variant == "garbage" else ".mkv")
    with av.open(str(clip), "w") as out:
        v = _encoder(out, spec, rng)
        out.start_encoding()  # the header, with its video track, even when no packet follows
        if spec.variant == "garbage":  # start codes and NAL headers, then noise: the decoder finds no picture
            for i in range(int(CLIP_S * FPS)):
                size = rng.randint(200, 4000)
                p = av.Packet(b"\x00\x00\x00\x01" + bytes([rng.choice([0x65, 0x41, 0x67])])
                              + rng.randbytes(size))
                p.stream, p.pts, p.dts, p.time_base = v, i, i, Fraction(1) / FPS
                out.mux(p)
    return clip


def _duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return float(c.duration or 0) / 1e6


def plan(seed: int, footage: Path, *, quick: bool = False) -> list[ClipSpec]:
    """The clips of one bench run: every fault at every severity and onset, the hard negatives,
    clean footage; sources, offsets, sizes (720p or 1080p), onsets and seeds drawn from `seed`."""
    r = random.Random(seed)
    durations = {s: _duration(footage / s) for s in SOURCES if (footage / s).is_file()}
    if not durations:
        raise FileNotFoundError(f"no footage in {footage} (expected {', '.join(SOURCES)})")
    names = sorted(durations)
    specs: list[ClipSpec] = []

    def add(kind: str, label: str, severity: int = 0, onset: str = "sudden", variant: str = "",
            onset_s: float | None = None, ptz_at: float | None = None) -> None:
        src = r.choice(names)
        off = r.uniform(0.0, max(0.0, durations[src] - CLIP_S - 0.4))
        size = (1920, 1080) if r.random() < 1 / 3 else (1280, 720)
        name = f"{len(specs):04d}-{kind}{'-' + variant if variant else ''}-s{severity}-{onset}"
        specs.append(ClipSpec(name, label, kind, src, round(off, 2), size, severity, onset,
                              round(onset_s if onset_s is not None else r.uniform(1.0, 3.0), 2),
                              r.randrange(1 << 30), ptz_at, variant))

    per = 1 if quick else 2
    for fault in FAULTS:
        if fault == "signal_loss":
            for v in ("garbage", "empty", "audio_only"):
                for _ in range(per):
                    add(fault, fault, 3, variant=v)
            continue
        for sev in (1, 2, 3):
            onsets = ("sudden", "gradual") if fault in GRADUAL else ("sudden",)
            for onset in onsets:
                for i in range(per * (2 if len(onsets) == 1 else 1)):
                    variant, onset_s = "", None
                    if fault == "solid_colour":
                        variant = r.choice(["blue", "grey", "green", "white"])
                    if fault == "freeze":
                        variant, onset_s = ("clock" if i % 2 == 0 else ""), {1: 6.0, 2: 4.0, 3: 1.5}[sev]
                    ptz = round(r.uniform(2.0, 6.0), 2) if fault == "ptz_unresponsive" else None
                    add(fault, fault, sev, onset, variant, onset_s, ptz)
    for _ in range(10 if quick else 40):
        add("clean", "normal", variant="clock" if r.random() < 0.3 else "")
    for kind in NEGATIVES[1:]:
        for _ in range(2 if quick else 8):
            add(kind, "normal")
    for _ in range(per * 3):
        add("ptz_ok", "normal", ptz_at=round(r.uniform(2.0, 6.0), 2))
    return specs


def clean_streams(seed: int, footage: Path) -> list[ClipSpec]:
    """Clean footage for the false-alarm mode (bench/vqd_bench.py --clean-windows): each footage
    file whole (less half a second, so the source never runs out and repeats its last frame), as
    one camera would send it: a view of its own (shifted up to 6 % of the width and height), a
    size (720p, or 1080p one time in three), x264 settings and, one time in three, an on-screen
    clock, all drawn from `seed`. Its reference is the median of views 2 s apart over the stream."""
    r = random.Random(f"clean-streams-{seed}")
    specs = []
    for src in SOURCES:
        if not (footage / src).is_file():
            continue
        seconds = int((_duration(footage / src) - 0.5) * float(FPS)) / float(FPS)
        if seconds < 8.0:  # the street is 12 s long: one window of 11.4 s
            continue
        size = (1920, 1080) if r.random() < 1 / 3 else (1280, 720)
        view = (round(r.uniform(-0.06, 0.06), 3), round(r.uniform(-0.06, 0.06), 3), 1.0)
        variant = "clock" if r.random() < 1 / 3 else ""
        specs.append(ClipSpec(f"stream-s{seed}-{Path(src).stem}{'-clock' if variant else ''}", "normal", "clean", src, 0.0,
                              size, seed=r.randrange(1 << 30), variant=variant, extra={"view": view}, seconds=seconds))
    return specs

