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
MIN_CELLS = 8  # a view is compared with its reference only where this many cells have detail  # a featureless cell that changed brightness this much (beyond the global change) is covered


@dataclass
class Reference:
    structure: np.ndarray  # luma, SIM_WIDTH wide, float32
    detail: np.ndarray  # relative texture per cell (features.GRID)
    mean: np.ndarray  # mean luma per cell
    blur: float  # edge blur radius (see features.edge_width), 0 when it has no strong edge
    chroma: float = 0.0  # mean chroma magnitude (colourfulness) of the reference view
    spread: float = 0.0  # luma spread between the 2nd and 98th percentiles (contrast)

    def to_bytes(self) -> bytes:
        """Serialised (numpy .npz), for keeping in a database column or a file."""
        buf = io.BytesIO()
        np.savez_compressed(buf, structure=self.structure, detail=self.detail, mean=self.mean,
                            blur=np.float32(self.blur), chroma=np.float32(self.chroma), spread=np.float32(self.spread))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        with np.load(io.BytesIO(data)) as z:
            extra = {k: float(z[k]) for k in ("chroma", "spread") if k in z.files}  # absent in early references
            return cls(z["structure"].astype(np.float32), z["detail"].astype(np.float32), z["mean"].astype(np.float32),
                       float(z["blur"]), **extra)


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
    detail, mean = relative_texture(y)
    p2, p98 = fx.percentiles(y, (2, 98))
    return Reference(structure_of(y), detail, mean, fx.edge_width(y) * 480.0 / max(y.shape[1], 1), float(np.median(coloured)) if coloured else 0.0,
                     p98 - p2)


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


def covered_cells(y: np.ndarray, th: Thresholds, ref: Reference | None) -> tuple[np.ndarray, float, str]:
    """(mask of covered cells, covered share, what it was judged by: "reference" or "darkness").

    With a reference, a covered cell is featureless now (and not blown out) and either had
    detail and lost its shape too (a blur or an exposure change keeps the shape), or was
    featureless and changed brightness. When the cells' brightness still follows the reference
    as a whole (fog, exposure, contrast: one straight-line fit explains them), only cells that
    stand out from that fit count. The share is over the cells that can be judged (not those
    featureless before and after at the predicted brightness). Without a usable reference:
    dark featureless cells (a cloth or a hand in front of the lens)."""
    detail, mean = relative_texture(y)
    flat = (detail < th.cover_detail) & (mean < BLOWN)
    if ref is not None and ref.detail.shape == detail.shape:
        had = ref.detail >= DETAIL * th.cover_detail
        kept = cell_correlation(fx.resize(y, *ref.structure.shape), ref.structure) >= 0.5
        fit = had & kept if (had & kept).sum() >= 6 else np.ones_like(had)
        slope, offset = np.polyfit(ref.mean[fit].ravel(), mean[fit].ravel(), 1) if fit.sum() >= 2 else (1.0, 0.0)
        outlier = np.abs(mean - (max(float(slope), 0.0) * ref.mean + offset)) > COVER_STEP
        lost = had & ~kept
        if fx.ncc(mean, ref.mean) >= 0.8:  # a global change of the same view
            lost &= outlier
        mask = flat & (lost | (~had & outlier))
        judged = had | outlier
        if judged.sum() >= 3:
            return mask, float(mask.sum() / judged.sum()), "reference"
    mask = flat & (mean < DARK)
    return mask, float(mask.mean()), "darkness"


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


def scene_change(latest: list[Picture], ref: Reference, th: Thresholds, cover: np.ndarray | None = None) -> list[dict]:
    if not latest or not th.enabled("scene_change"):
        return []
    sim = similarity(latest, ref, cover, th)
    if sim is None and cover is not None:  # the "cover" took most of the detail: judge the whole view
        sim = similarity(latest, ref, None, th)
    if sim is None or sim >= th.scene_similarity:
        return []
    cur = fx.resize(median_luma(latest), *ref.structure.shape)
    dx, dy, q = fx.shift_estimate(ref.structure, cur, max_frac=0.25)
    finding = {"type": "scene_change", "score": score(sim, th.scene_similarity, th.scene_similarity - 0.3),
               "similarity": round(sim, 3)}
    if q > 0.5:
        w, h = ref.structure.shape[1], ref.structure.shape[0]
        finding["shift"] = [round(dx / w, 3), round(dy / h, 3)]
    return [finding]
