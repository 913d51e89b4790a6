"""A channel's reference picture and what is judged against it: scene change (the camera was
moved or turned), cover (occlusion), and focus relative to the reference.

A reference is small (luma 120 px wide for structure, a grid of detail per cell, the blur
index): cheap to keep per channel (and per preset of a PTZ camera) in the database.
`make_reference` takes the median of several pictures, so passing traffic does not enter it.
Structure is compared after local normalisation (illumination removed), so a view taken by
day still matches the same view at dusk or with the lights on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from camgrid.ops.vqd import features as fx
from camgrid.ops.vqd.frames import Picture
from camgrid.ops.vqd.motion import SIM_WIDTH
from camgrid.ops.vqd.picture import score
from camgrid.ops.vqd.thresholds import Thresholds

DARK = 64.0  # without a reference, only dark featureless cells count as covered (a cloth, a hand)
DETAIL = 2.5  # a reference cell has detail when its relative texture is this many times the cover limit
BLOWN = 225.0  # cells this bright are blown out (glare), not covered
COVER_STEP = 30.0
FADE = 0.5  # a featureless cell whose texture fell below this share of the reference's has lost it ...
TRACE = 0.25  # ... if it had a trace of texture, at least this share of the cover limit (x264 wipes fainter ones from clean pictures too) ...
PATTERN_KEPT = 0.5  # ... and is covered when such cells' brightness correlates less than this with the reference's
MOVE_PEAK = 0.2  # phase correlation peak of a view that lines up with its reference elsewhere (unrelated views < 0.15)
MIN_JUDGED = 12  # a cover's share is over at least this many cells (1/8 of the view): on a featureless view that can judge only 4, 2 changed cells are no quarter cover
REGION = 4  # cells that lost only a faint texture count as covered where at least this many covered cells join up (a cover is one object; x264 wiping a wall's texture and a lighting change left groups of 1-3 scattered over a clean indoor view)
MIN_CELLS = 8  # a view is compared with its reference only where this many cells have detail  # a featureless cell that changed brightness this much (beyond the global change) is covered


@dataclass
class Reference:
    structure: np.ndarray  # luma, SIM_WIDTH wide, float32
    detail: np.ndarray  # relative texture per cell (features.GRID)
    mean: np.ndarray  # mean luma per cell
    blur: float  # edge blur radius (see features.edge_width), 0 when it has no strong edge
    chroma: float = 0.0  # mean chroma magnitude (colourfulness) of the reference view
    spread: float = 0.0  # luma spread between the 2nd and 98th percentiles (contrast)
    chroma_peak: float = 0.0  # chroma of the most coloured 2 % (features.chroma_peak); 0 in early references
    bands: tuple[np.ndarray, ...] = ()  # features.band_profiles of the view at analysis size; () in early references
    colour_cells: np.ndarray | None = None  # features.chroma_cells of the view (its colour pattern); None in early references

    @property
    def colour_pattern(self) -> float | None:
        """How much colour pattern the view has (features.colour_pattern); None in early references."""
        return fx.colour_pattern(self.colour_cells) if self.colour_cells is not None else None

    @property
    def luma_cells(self) -> np.ndarray:
        """Mean luma over the colour pattern's cells (features.COLOUR_GRID), from the structure:
        where the view's brightness is, to tell which cells of a picture still show it."""
        grid = self.colour_cells.shape[1:] if self.colour_cells is not None else fx.COLOUR_GRID
        return fx.cell_means(self.structure, grid)

    def to_bytes(self) -> bytes:
        """Serialised (numpy .npz), for keeping in a database column or a file."""
        buf = io.BytesIO()
        np.savez_compressed(buf, structure=self.structure, detail=self.detail, mean=self.mean,
                            blur=np.float32(self.blur), chroma=np.float32(self.chroma), spread=np.float32(self.spread),
                            chroma_peak=np.float32(self.chroma_peak),
                            **{f"band{i}": b.astype(np.float32) for i, b in enumerate(self.bands)},
                            **({"colour_cells": self.colour_cells.astype(np.float32)} if self.colour_cells is not None else {}))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        with np.load(io.BytesIO(data)) as z:
            extra = {k: float(z[k]) for k in ("chroma", "spread", "chroma_peak") if k in z.files}  # absent in early references
            bands = tuple(z[f"band{i}"].astype(np.float32) for i in range(4)) if "band3" in z.files else ()
            cells = z["colour_cells"].astype(np.float32) if "colour_cells" in z.files else None
            return cls(z["structure"].astype(np.float32), z["detail"].astype(np.float32), z["mean"].astype(np.float32),
                       float(z["blur"]), **extra, bands=bands, colour_cells=cells)


def median_luma(pictures: list[Picture]) -> np.ndarray:
    shape = pictures[-1].y.shape
    same = [p.y for p in pictures if p.y.shape == shape]
    return np.median(np.stack(same), axis=0).astype(np.float32) if len(same) > 1 else fx.as_float(same[0])


def relative_texture(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(texture per cell relative to the cell's brightness above black, mean luma per cell): how
    much detail a cell has whatever its exposure (a dim scene keeps it, a defocused cover has none)."""
    mean = fx.cell_means(y)
    return fx.texture_map(y) / (np.maximum(mean - 16.0, 0.0) + 12.0), mean


def make_reference(pictures: list[Picture]) -> Reference:
    """The reference of a channel from one or more pictures of its normal view."""
    if not pictures:
        raise ValueError("a reference needs at least one picture")
    y = median_luma(pictures)
    coloured = [fx.chroma_stats(p.u, p.v)[2] for p in pictures if p.u is not None and p.v is not None]
    peaks = [fx.chroma_peak(p.u, p.v) for p in pictures if p.u is not None and p.v is not None]
    cells = [fx.chroma_cells(p.u, p.v) for p in pictures if p.u is not None and p.v is not None]
    detail, mean = relative_texture(y)
    p2, p98 = fx.percentiles(y, (2, 98))
    return Reference(structure_of(y), detail, mean, fx.edge_width(y) * 480.0 / max(y.shape[1], 1), float(np.median(coloured)) if coloured else 0.0,
                     p98 - p2, float(np.median(peaks)) if peaks else 0.0,
                     tuple(np.asarray(b, np.float32) for b in fx.band_profiles(y)),
                     np.median(np.stack(cells), axis=0).astype(np.float32) if cells else None)


def structure_of(y: np.ndarray) -> np.ndarray:
    h, w = y.shape
    return fx.resize(y, max(2, round(h * SIM_WIDTH / max(w, 1))), SIM_WIDTH)


def cell_correlation(a: np.ndarray, b: np.ndarray, grid: tuple[int, int] = fx.GRID) -> np.ndarray:
    """Correlation of two same-size pictures within each cell of the grid (0 where one is flat)."""
    rows, cols = grid
    h, w = a.shape[0] // rows * rows, a.shape[1] // cols * cols
    if h == 0 or w == 0 or a.shape != b.shape:
        return np.zeros(grid, np.float32)

    def cells(x: np.ndarray) -> np.ndarray:
        c = x[:h, :w].reshape(rows, h // rows, cols, w // cols).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
        return c - c.mean(axis=2, keepdims=True)

    ca, cb = cells(fx.as_float(a)), cells(fx.as_float(b))
    den = np.sqrt((ca * ca).sum(axis=2) * (cb * cb).sum(axis=2))
    return np.where(den > 1e-6, (ca * cb).sum(axis=2) / np.maximum(den, 1e-6), 0.0)


def brightness_fit(then: np.ndarray, now: np.ndarray) -> tuple[float, float]:
    """(slope, offset) of the straight line that predicts the cells' brightness now from the
    reference's, least squares, with a slope of at least 0: a lighting change scales and lifts
    brightness but does not invert it. When the free fit falls (the light now comes from the
    other side), the best line of slope 0 is the cells' mean brightness, not the falling line's
    offset, which lies beyond every cell and would mark them all as changed."""
    then, now = np.asarray(then, np.float64).ravel(), np.asarray(now, np.float64).ravel()
    if then.size < 2 or float(np.ptp(then)) < 1e-6:
        return (1.0, 0.0) if then.size < 2 else (0.0, float(now.mean()))
    slope, offset = np.polyfit(then, now, 1)
    if slope < 0.0:
        return 0.0, float(now.mean())
    return float(slope), float(offset)


def covered_cells(y: np.ndarray, th: Thresholds, ref: Reference | None) -> tuple[np.ndarray, float, str]:
    """(mask of covered cells, covered share, what it was judged by: "reference" or "darkness").

    With a reference, a covered cell is featureless now (and not blown out) and either had
    detail and lost its shape too (a blur or an exposure change keeps the shape), or was
    featureless and changed brightness, or lost even its faint texture (one the reference had
    a trace of, `TRACE`) in a pattern of brightness unlike the reference's (a cover over bare
    asphalt), where such cells join up with other covered cells in groups of `REGION` or more
    (a cover is one object; texture that x264 wipes from a clean wall fades here and there).
    When the cells' brightness still follows the reference as a whole (fog, exposure, contrast: one straight-line fit explains them), only cells that
    stand out from that fit count. The share is over the cells that can be judged (not those
    featureless before and after at the predicted brightness), and at least `MIN_JUDGED`. Without a usable reference:
    dark featureless cells (a cloth or a hand in front of the lens)."""
    detail, mean = relative_texture(y)
    flat = (detail < th.cover_detail) & (mean < BLOWN)
    if ref is not None and ref.detail.shape == detail.shape:
        had = ref.detail >= DETAIL * th.cover_detail
        kept = cell_correlation(fx.resize(y, *ref.structure.shape), ref.structure) >= 0.5
        fit = had & kept if (had & kept).sum() >= 6 else np.ones_like(had)
        slope, offset = brightness_fit(ref.mean[fit], mean[fit])
        outlier = np.abs(mean - (slope * ref.mean + offset)) > COVER_STEP
        lost = had & ~kept
        if fx.ncc(mean, ref.mean) >= 0.8:  # a global change of the same view
            lost &= outlier
        # featureless before too (bare asphalt, a wall): its faint texture is gone and the cells'
        # brightness no longer follows the reference's pattern (blur, fog and exposure keep it)
        faded = ~had & flat & (detail < FADE * ref.detail) & (ref.detail >= TRACE * th.cover_detail)
        use_faded = faded.sum() >= 6 and fx.ncc(mean[faded], ref.mean[faded]) < PATTERN_KEPT
        mask = flat & (lost | (~had & outlier))
        if use_faded:  # the weakest evidence (x264 wipes faint texture from clean pictures too): only where it joins up
            mask |= faded & in_regions(mask | faded, REGION)
            outlier = outlier | faded
        judged = had | outlier
        if judged.sum() >= 3:  # the share is over MIN_JUDGED cells at least
            return mask, float(mask.sum() / max(int(judged.sum()), MIN_JUDGED)), "reference"
    mask = flat & (mean < DARK)
    return mask, float(mask.mean()), "darkness"


def in_regions(mask: np.ndarray, size: int) -> np.ndarray:
    """The cells of `mask` that belong to a group of at least `size` cells joined side by side."""
    m = np.asarray(mask, bool)
    out = np.zeros_like(m)
    seen = np.zeros_like(m)
    rows, cols = m.shape
    for r0, c0 in zip(*np.nonzero(m)):
        if seen[r0, c0]:
            continue
        group, todo = [], [(r0, c0)]
        seen[r0, c0] = True
        while todo:
            r, c = todo.pop()
            group.append((r, c))
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < rows and 0 <= cc < cols and m[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    todo.append((rr, cc))
        if len(group) >= size:
            out[tuple(np.array(group).T)] = True
    return out


def occlusion(latest: list[Picture], th: Thresholds, ref: Reference | None) -> tuple[list[dict], np.ndarray]:
    if not latest or not th.enabled("occlusion"):
        return [], np.zeros(fx.GRID, bool)
    mask, share, basis = covered_cells(median_luma(latest), th, ref)
    if share < th.occlusion_share:
        return [], mask
    return [{"type": "occlusion", "score": score(share, th.occlusion_share, 0.75), "covered": round(share, 2),
             "judged_by": basis}], mask


def similarity(latest: list[Picture], ref: Reference, cover: np.ndarray | None = None,
               th: Thresholds | None = None) -> float | None:
    """Structural similarity (-1..1) of the current view to the reference, over the cells where
    the reference has detail and that are not covered; None when fewer than MIN_CELLS such
    cells (a featureless view, e.g. bare asphalt: what passes through it would decide)."""
    y = median_luma(latest)
    cur = fx.resize(y, *ref.structure.shape)
    a, b = fx.local_normalise(cur), fx.local_normalise(ref.structure)
    cells = ref.detail >= DETAIL * (th or Thresholds()).cover_detail
    if cover is not None and cover.shape == cells.shape:
        cells &= ~cover
    if int(cells.sum()) < MIN_CELLS:
        return None
    rows = np.minimum(np.arange(a.shape[0]) * cells.shape[0] // a.shape[0], cells.shape[0] - 1)
    cols = np.minimum(np.arange(a.shape[1]) * cells.shape[1] // a.shape[1], cells.shape[1] - 1)
    return fx.ncc(a, b, cells[rows][:, cols])


SCALES = tuple(1.05 ** k for k in (0, 1, -1, 2, -2, 3, -3, 4, -4))  # zooms tried (0.82-1.22, 5 % apart) when registering a view on its reference
REGIONS = 3  # a move is confirmed region by region (REGIONS x REGIONS) ...
AGREE = 0.7  # ... by this share of the regions that have matching structure


def registration(cur: np.ndarray, ref_structure: np.ndarray) -> dict | None:
    """Where the current view (structure size) sits on the reference: the shift (fractions of
    width and height) and zoom at which phase correlation peaks, when the view moved.

    A move is a peak of at least `MOVE_PEAK` away from no shift (over 1.5 % of the width, or
    zoomed), clearly above the peak at no shift, and confirmed by most regions of the picture
    (the structure of each region matches the shifted reference better than the unshifted
    one): a vehicle, or objects moved about in one part of the view, do not move the camera.
    None when the view did not move, or when there is not enough structure to tell."""
    cur, base = fx.as_float(cur), fx.as_float(ref_structure)
    if cur.shape != base.shape or min(cur.shape) < 3 * 8:
        return None
    h, w = cur.shape
    zero = fx.phase_correlation(cur, base)[3]
    best = None
    for s in SCALES:
        dx, dy, peak, _ = fx.phase_correlation(cur, fx.zoom_about_centre(base, s))
        if best is None or peak > best[2]:
            best = (dx, dy, peak, s)
    dx, dy, peak, s = best
    if peak < MOVE_PEAK or zero >= 0.5 * peak or (np.hypot(dx / w, dy / h) < 0.015 and s == 1.0):
        return None
    moved, inside = fx.shift_picture(fx.zoom_about_centre(base, s), int(dx), int(dy))
    a, b, b0 = fx.local_normalise(cur), fx.local_normalise(moved), fx.local_normalise(base)
    votes = agree = 0
    rh, rw = h // REGIONS, w // REGIONS
    for r in range(REGIONS):
        for c in range(REGIONS):
            sl = (slice(r * rh, (r + 1) * rh), slice(c * rw, (c + 1) * rw))
            m = inside[sl]
            if m.mean() < 0.5:
                continue
            shifted, still = fx.ncc(a[sl], b[sl], m), fx.ncc(a[sl], b0[sl], m)
            if max(shifted, still) < 0.2:  # nothing in this region matches either way (featureless, or covered)
                continue
            votes += 1
            agree += shifted > still + 0.1
    if votes < 3 or agree < AGREE * votes:
        return None
    return {"shift": [round(dx / w, 3), round(dy / h, 3)], "zoom": round(s, 2), "peak": round(peak, 3),
            "regions": round(agree / votes, 2)}


def scene_change(latest: list[Picture], ref: Reference, th: Thresholds, cover: np.ndarray | None = None) -> list[dict]:
    """The camera was moved, turned or zoomed: its view no longer lines up with the reference.
    Two tests: the view registers on the reference at another shift or zoom (phase correlation,
    confirmed region by region; works on a nearly featureless road, whose faint texture still
    lines up), or it is unlike the reference altogether (structural similarity over the cells
    with detail below `scene_similarity`)."""
    if not latest or not th.enabled("scene_change"):
        return []
    cur = fx.resize(median_luma(latest), *ref.structure.shape)
    reg = registration(cur, ref.structure)
    sim = similarity(latest, ref, cover, th)
    if sim is None and cover is not None:  # the "cover" took most of the detail: judge the whole view
        sim = similarity(latest, ref, None, th)
    if reg is None and (sim is None or sim >= th.scene_similarity):
        return []
    finding: dict = {"type": "scene_change"}
    if sim is not None and sim < th.scene_similarity:
        finding["score"] = score(sim, th.scene_similarity, th.scene_similarity - 0.3)
    else:  # lined up elsewhere: the further it moved, the surer
        finding["score"] = score(max(float(np.hypot(*reg["shift"])), abs(np.log(reg["zoom"]))), 0.015, 0.06)
    if sim is not None:
        finding["similarity"] = round(sim, 3)
    if reg is not None:
        finding["shift"] = reg["shift"]
        if reg["zoom"] != 1.0:
            finding["zoom"] = reg["zoom"]
    else:
        dx, dy, q = fx.shift_estimate(ref.structure, cur, max_frac=0.25)
        if q > 0.5:
            finding["shift"] = [round(dx / ref.structure.shape[1], 3), round(dy / ref.structure.shape[0], 3)]
    return [finding]
