"""Faults visible in single pictures: black or solid screens, exposure, contrast, colour, blur,
noise, stripes. Pure numpy.

Each of the latest pictures is measured once (`measure`); a fault is reported when it shows in
at least `persistence` of them (the second half of the window: the camera's state now,
so a fault that set in during the window counts, and a passing lorry or a light switched on a
few seconds ago does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camgrid.ops.vqd import features as fx
from camgrid.ops.vqd.frames import Picture
from camgrid.ops.vqd.thresholds import Thresholds

CLIPPED = 230.0  # luma at which a picture is saturated (video range white is 235)
SCENE_TOL = 8.0  # a colour cell shows the reference's scene when its brightness is this close to the fit on the reference's ...
SCENE_CHROMA = 3.0  # ... and its colour is no further from the reference's than fading could take it, plus this (features.colour_in_front) ...
SCENE_SHARE = 0.75  # ... and a picture's colour pattern is judged only when this share of its cells do (not while a vehicle or an exposure swing passes)


@dataclass
class Stats:
    t: float
    mean: float
    p2: float
    p10: float
    p98: float
    top: float  # 99.5th percentile
    clipped: float  # share at or above 228
    solid_share: float  # share of the picture within tolerance of its dominant colour
    solid_luma: float
    solid_u: float
    solid_v: float
    cast_u: float
    cast_v: float
    chroma: float  # mean chroma magnitude
    chroma_peak: float  # chroma magnitude of the most coloured 2 % (features.chroma_peak)
    blur: float  # edge blur radius, pixels at 480 wide (0: no strong edge)
    texture: float  # mean gradient, grey levels per pixel
    noise: float | None  # from the native-resolution crop, when the picture has one
    stripe: float
    colour_gain: float | None = None  # share of the reference's colour pattern kept (features.colour_gain), with one; None when the picture cannot tell


def measure(p: Picture, th: Thresholds, bands: tuple[np.ndarray, ...] = (),
            colour_cells: np.ndarray | None = None, luma_cells: np.ndarray | None = None) -> Stats:
    """Everything measured on one picture. `bands`: the reference's band profiles
    (features.band_profiles); with them, stripes are bands the reference does not have.
    `colour_cells`: the reference's colour pattern (features.chroma_cells); with it, how much of
    that pattern the picture keeps, over the cells that still show the reference's scene (their
    brightness follows the reference's `luma_cells`, features.cells_like, and their colour is one
    the reference's could fade to, features.colour_in_front); None when fewer than
    `SCENE_SHARE` of them do (a lorry or a bus over the view, a camera's exposure swinging after
    it): such a picture cannot tell a loss of the faint colour from what stands in front of it."""
    y = p.y
    mean = float(fx.as_float(y).mean()) if y.size else 0.0
    p2, p10, p98, top = fx.percentiles(y, (2, 10, 98, 99.5))
    clipped = float((np.asarray(y) >= 228).mean()) if y.size else 0.0
    share_y, med_y = fx.dominant_fraction(y, th.solid_tolerance)
    med_u = med_v = 128.0
    share = share_y
    cast_u = cast_v = chroma = peak = 0.0
    gain = None
    if p.u is not None and p.v is not None:
        share_u, med_u = fx.dominant_fraction(p.u, th.solid_tolerance)
        share_v, med_v = fx.dominant_fraction(p.v, th.solid_tolerance)
        share = min(share_y, share_u, share_v)
        cast_u, cast_v, chroma = fx.chroma_stats(p.u, p.v)
        peak = fx.chroma_peak(p.u, p.v)
        if colour_cells is not None:
            grid = colour_cells.shape[1:]
            cells = fx.chroma_cells(p.u, p.v, grid)
            scene = ~fx.colour_in_front(cells, colour_cells, SCENE_CHROMA)
            if luma_cells is not None and luma_cells.shape == grid:
                scene &= fx.cells_like(fx.cell_means(y, grid), luma_cells, SCENE_TOL)
            if scene.mean() >= SCENE_SHARE:
                gain = fx.colour_gain(cells, colour_cells, scene)
    gx, gy = fx.gradients(y)
    texture = float((gx + gy).mean()) if gx.size else 0.0
    against = fx.stripe_against(y, bands) if bands else None
    stripe = against if against is not None else max(fx.stripe_strength(y))
    noise = fx.noise_sigma(p.detail) if p.detail is not None else None
    blur = fx.edge_width(y) * 480.0 / max(y.shape[1], 1)
    return Stats(p.t, mean, p2, p10, p98, top, clipped, share, med_y, med_u, med_v, cast_u, cast_v, chroma, peak,
                 blur, texture, noise, stripe, gain)


def score(value: float, threshold: float, strong: float) -> float:
    """0.5 at the threshold, 1.0 at `strong` (either side of it), linear in between."""
    if strong == threshold:
        return 1.0
    return float(np.clip(0.5 + 0.5 * (value - threshold) / (strong - threshold), 0.0, 1.0))


def latest(items: list) -> list:
    """The pictures (or their Stats) of the second half of the window (at least one)."""
    if not items:
        return []
    t0, t1 = items[0].t, items[-1].t
    half = [s for s in items if s.t >= (t0 + t1) / 2]
    return half or items[-1:]


def persistent(stats: list[Stats], flag, th: Thresholds) -> list[Stats]:
    """The pictures that show the fault, or [] when fewer than `persistence` of them do. Give it
    the latest pictures (`latest`): the camera's state now."""
    hit = [s for s in stats if flag(s)]
    return hit if stats and len(hit) / len(stats) >= th.persistence else []


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def screens(stats: list[Stats], th: Thresholds) -> list[dict]:
    """black_screen or solid_colour (one of them): the picture is one colour (text aside)."""
    hit = persistent(stats, lambda s: s.solid_share >= th.solid_share, th)
    if not hit:
        return []
    luma = _median([s.solid_luma for s in hit])
    share = _median([s.solid_share for s in hit])
    sc = score(share, th.solid_share, 1.0) if share < 1.0 else 1.0
    detail = {"level": [round(luma), round(_median([s.solid_u for s in hit])), round(_median([s.solid_v for s in hit]))]}
    if luma >= CLIPPED:  # white at the sensor's ceiling: the camera is blown out, not showing a screen
        if th.enabled("too_bright"):
            return [{"type": "too_bright", "score": 1.0, "mean_luma": round(luma, 1)}]
        return []
    if luma <= th.black_luma and th.enabled("black_screen"):
        return [{"type": "black_screen", "score": sc, **detail}]
    if th.enabled("solid_colour"):
        return [{"type": "solid_colour", "score": sc, "colour": _colour_name(*detail["level"]), **detail}]
    return []


def _colour_name(y: float, u: float, v: float) -> str:
    du, dv = u - 128, v - 128
    if np.hypot(du, dv) < 12:
        return "white" if y > 180 else "grey" if y > 60 else "black"
    angle = np.degrees(np.arctan2(dv, du)) % 360
    # hue angles in the (U, V) plane: magenta 52, red 109, yellow 171, green 232, cyan 289, blue 351
    names = [(21, "blue"), (80, "magenta"), (140, "red"), (201, "yellow"), (260, "green"), (320, "cyan"), (361, "blue")]
    return next(name for limit, name in names if angle < limit)


def exposure(stats: list[Stats], th: Thresholds, ref_spread: float | None = None) -> list[dict]:
    """too_dark, too_bright, or else low_contrast (a dark or blown-out picture has low contrast
    as a consequence; only the cause is reported)."""
    out = []
    dark = persistent(stats, lambda s: s.mean < th.dark_mean and s.top < th.dark_top, th)
    bright = persistent(stats, lambda s: s.mean > th.bright_mean and s.clipped >= th.bright_clipped, th)
    if dark and th.enabled("too_dark"):
        out.append({"type": "too_dark", "score": score(_median([s.top for s in dark]), th.dark_top, 30.0),
                    "mean_luma": round(_median([s.mean for s in dark]), 1)})
    elif bright and th.enabled("too_bright"):
        out.append({"type": "too_bright", "score": score(_median([s.clipped for s in bright]), th.bright_clipped, 0.8),
                    "mean_luma": round(_median([s.mean for s in bright]), 1)})
    elif th.enabled("low_contrast"):
        limit = max(th.contrast_range, th.contrast_ratio * ref_spread) if ref_spread else th.contrast_range
        low = persistent(stats, lambda s: s.p98 - s.p2 < limit and s.p2 >= th.contrast_floor, th)
        if low:
            spread = _median([s.p98 - s.p2 for s in low])
            out.append({"type": "low_contrast", "score": score(spread, limit, limit / 3), "luma_spread": round(spread, 1)})
    return out


def colour(stats: list[Stats], th: Thresholds, ref_chroma: float | None = None,
           ref_peak: float | None = None, ref_pattern: float | None = None,
           ref_spread: float | None = None) -> list[dict]:
    """colour_cast (the whole picture tinted) or colourless (colour gone). Colour loss needs a
    reference to compare with: a grey street or a monochrome (IR) picture is normal.

    Colour loss is judged on the colour of the most coloured 2 % of the picture (`chroma_peak`),
    against the reference's (`ref_peak`), when the reference has colour somewhere
    (`colour_peak_min`: a yellow line on a grey road is enough); a picture with no colour anywhere
    (below `mono_peak`) is monochrome, normal unless `colour_expected`. A reference with too
    little colour for that (a grey road: its most coloured 2 % below `colour_peak_min`) but a
    faint colour pattern (`ref_pattern`, features.colour_pattern, at least `colour_pattern_min`)
    is judged by how much of that pattern the picture keeps (Stats.colour_gain below
    `colour_pattern_ratio`; measured per picture against the reference's cells, over the pictures
    that show the reference's scene: at least half of them must), in pictures
    that keep their luma contrast (at least `contrast_ratio` of the reference's `ref_spread`: fog
    and glare wash out colour and contrast together, and are low_contrast's to report). References made
    before `chroma_peak` existed are judged on the mean chroma (`ref_chroma`, `colour_min`,
    `mono_max`)."""
    coloured = [s for s in stats if s.mean >= th.dark_mean]  # colour cannot be judged in the dark
    if not coloured:
        return []

    def tint(s: Stats) -> float:
        return float(np.hypot(s.cast_u, s.cast_v))

    cast = persistent(coloured, lambda s: tint(s) > th.cast and tint(s) > th.cast_share * s.chroma, th)
    if cast:
        if not th.enabled("colour_cast"):
            return []
        u, v = _median([s.cast_u for s in cast]), _median([s.cast_v for s in cast])
        return [{"type": "colour_cast", "score": score(float(np.hypot(u, v)), th.cast, 3 * th.cast),
                 "tint": _colour_name(128, 128 + u * 4, 128 + v * 4)}]
    if not th.enabled("colourless"):
        return []
    if ref_peak and ref_peak >= th.colour_peak_min:
        floor, limit = (0.0 if th.colour_expected else th.mono_peak), th.colour_ratio * ref_peak
        pale = persistent(coloured, lambda s: floor <= s.chroma_peak < limit, th)
        if not pale:
            return []
        peak = _median([s.chroma_peak for s in pale])
        return [{"type": "colourless", "score": score(peak, limit, 0.0), "chroma": round(_median([s.chroma for s in pale]), 2),
                 "colour_peak": round(peak, 1), "reference_peak": round(ref_peak, 1)}]
    if ref_peak and ref_pattern is not None and ref_pattern >= th.colour_pattern_min:
        floor = 0.0 if th.colour_expected else th.mono_peak  # colour nowhere at all: monochrome (IR, B/W)
        contrast = th.contrast_ratio * ref_spread if ref_spread else 0.0
        told = [s for s in coloured if s.colour_gain is not None]  # pictures not hidden by traffic
        if 2 * len(told) < len(coloured):
            return []
        pale = persistent(told, lambda s: s.colour_gain < th.colour_pattern_ratio
                          and s.chroma_peak >= floor and s.p98 - s.p2 >= contrast, th)
        if not pale:
            return []
        gain = _median([s.colour_gain for s in pale])
        return [{"type": "colourless", "score": score(gain, th.colour_pattern_ratio, 0.0), "chroma": round(_median([s.chroma for s in pale]), 2),
                 "colour_kept": round(gain, 2), "reference_pattern": round(ref_pattern, 2), "judged_by": "pattern"}]
    if ref_chroma is not None and ref_chroma >= th.colour_min and not ref_peak:
        floor, limit = (0.0 if th.colour_expected else th.mono_max), th.colour_ratio * ref_chroma
    elif th.colour_expected:
        floor, limit = 0.0, th.mono_max
    else:
        return []
    pale = persistent(coloured, lambda s: floor <= s.chroma < limit, th)
    if not pale:
        return []
    chroma = _median([s.chroma for s in pale])
    return [{"type": "colourless", "score": score(chroma, limit, 0.0), "chroma": round(chroma, 2)}]


def dim(stats: list[Stats], th: Thresholds) -> bool:
    """Mostly dim pictures (a night scene): too little light to judge focus (the strongest
    edges are glowing lamps and noise)."""
    return bool(persistent(stats, lambda s: s.mean < th.dark_mean, th))


def monochrome(stats: list[Stats], th: Thresholds) -> bool:
    """The latest pictures have no colour at all (IR night mode or a B/W camera)."""
    return bool(persistent(stats, lambda s: s.chroma < th.mono_max, th))


def sharpness_noise_stripes(stats: list[Stats], th: Thresholds, ref_blur: float | None = None) -> list[dict]:
    """blur (edges wider than blur_width; or, against a reference that had strong edges, none
    left), noise (sensor noise above noise_sigma), stripe (bands across the whole picture)."""
    out = []
    if th.enabled("blur"):
        def soft(s: Stats) -> bool:
            return s.blur > th.blur_width or (s.blur == 0.0 and bool(ref_blur))

        blurred = persistent(stats, soft, th)
        if blurred:
            b = _median([s.blur for s in blurred])
            out.append({"type": "blur", "score": score(b, th.blur_width, 2.5 * th.blur_width) if b else 0.75,
                        "edge_sigma": round(b, 2)})
    noisy = [s for s in stats if s.noise is not None]
    if th.enabled("noise") and noisy:
        hit = persistent(noisy, lambda s: s.noise > th.noise_sigma, th)
        if hit:
            n = _median([s.noise for s in hit])
            out.append({"type": "noise", "score": score(n, th.noise_sigma, 3 * th.noise_sigma), "sigma": round(n, 1)})
    if th.enabled("stripe"):
        hit = persistent(stats, lambda s: s.stripe > th.stripe, th)
        if hit:
            a = _median([s.stripe for s in hit])
            out.append({"type": "stripe", "score": score(a, th.stripe, 4 * th.stripe), "amplitude": round(a, 1)})
    return out
