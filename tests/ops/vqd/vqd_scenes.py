"""Synthetic but camera-like scenes for the VQD tests (no footage needed): a textured street
(buildings, windows, a road with lane marks, foliage), vehicles crossing it, sensor noise,
encoded with x264 through PyAV so the detectors see real compression. Faults are functions
(image, t) -> image applied from an onset time."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

W, H, FPS = 480, 270, 12.5
Fault = Callable[[np.ndarray, float], np.ndarray]


def _smooth(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    g = rng.random((cells + 1, cells + 1))
    yi, xi = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(yi.astype(int), cells - 1), np.minimum(xi.astype(int), cells - 1)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bot = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


class Scene:
    """A street seen by a fixed camera: `frame(t)` is the clean RGB float picture at time t."""

    def __init__(self, seed: int = 1, w: int = W, h: int = H, margin: int = 40):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.w, self.h, self.m = w, h, margin
        bh, bw = h + 2 * margin, w + 2 * margin
        sky = np.array([150, 175, 210], np.float32) * (0.9 + 0.2 * _smooth(rng, bh, bw, 3))[:, :, None]
        img = sky
        horizon = int(bh * 0.45)
        x = 0
        while x < bw:  # buildings with windows
            bwid = int(rng.integers(30, 90))
            top = int(rng.integers(int(bh * 0.1), horizon - 10))
            colour = rng.uniform(60, 200, 3).astype(np.float32)
            img[top:horizon, x:x + bwid] = colour
            for wy in range(top + 6, horizon - 8, 14):
                for wx in range(x + 5, x + bwid - 8, 12):
                    img[wy:wy + 7, wx:wx + 6] = colour * rng.uniform(0.3, 0.6)
            x += bwid + int(rng.integers(0, 12))
        road = (95 + 20 * _smooth(rng, bh - horizon, bw, 12))[:, :, None] * np.ones(3, np.float32)
        road += rng.normal(0, 6, road.shape[:2])[:, :, None]
        img[horizon:] = road
        for lane in (0.62, 0.8):
            y = int(bh * lane)
            for lx in range(0, bw, 40):
                img[y:y + 3, lx:lx + 22] = 225
        for _ in range(6):  # trees
            cx, cy, r = rng.integers(0, bw), rng.integers(horizon - 30, horizon + 10), rng.integers(10, 25)
            yy, xx = np.ogrid[:bh, :bw]
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            leaves = np.stack([40 + 40 * rng.random(blob.sum()), 90 + 60 * rng.random(blob.sum()), 30 + 30 * rng.random(blob.sum())], 1)
            img[blob] = leaves
        self.base = np.clip(img, 0, 255).astype(np.float32)
        self.cars = [(rng.uniform(0, bw), rng.uniform(horizon + 10, bh - 30), rng.uniform(25, 60) * rng.choice([-1, 1]),
                      rng.uniform(40, 220, 3)) for _ in range(3)]

    def frame(self, t: float, dx: float = 0.0, dy: float = 0.0, noise: float = 2.0) -> np.ndarray:
        img = self.base.copy()
        bh, bw = img.shape[:2]
        for x0, y0, v, colour in self.cars:
            x = int((x0 + v * t) % (bw + 60)) - 60
            y = int(y0)
            img[y:y + 22, max(0, x):max(0, x + 50)] = colour
            img[y + 3:y + 10, max(0, x + 8):max(0, x + 42)] = (40, 50, 60)
        oy, ox = int(round(self.m + dy)), int(round(self.m + dx))
        oy, ox = min(max(oy, 0), 2 * self.m), min(max(ox, 0), 2 * self.m)
        img = img[oy:oy + self.h, ox:ox + self.w]
        if noise:
            img = img + self.rng.normal(0, noise, img.shape[:2])[:, :, None]
        return img


def encode(path: Path, frames, *, fps: float = FPS, gop: int = 12, crf: int = 23) -> Path:
    """Encode RGB frames (an iterable of H x W x 3 arrays) with libx264 into an MP4."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(crf),
                          "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"}
        for i, img in enumerate(frames):
            rgb = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
            if i == 0:
                stream.height, stream.width = rgb.shape[:2]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return path


def clip(path: Path, scene: Scene, fault: Fault | None = None, *, seconds: float = 6.0, onset: float = 1.5,
         view=None, noise: float = 2.0) -> Path:
    """A clip of `scene` with `fault` from `onset` on; `view(t) -> (dx, dy)` moves the camera."""
    n = int(seconds * FPS)

    def frames():
        for i in range(n):
            t = i / FPS
            dx, dy = view(t) if view else (0.0, 0.0)
            img = scene.frame(t, dx, dy, noise)
            yield fault(img, t) if fault is not None and t >= onset else img

    return encode(path, frames())


def reference_png(path: Path, scene: Scene, t: float = 5.0) -> Path:
    rgb = np.ascontiguousarray(np.clip(scene.frame(t), 0, 255).astype(np.uint8))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path
