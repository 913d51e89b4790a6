"""Measurements on decoded pictures: pure numpy, no I/O, no state.

Every function takes planes as 2-D arrays of any numeric dtype on the 0..255 scale (luma Y,
chroma U and V centred on 128, as decoders give them) and returns plain floats or small arrays.
They never raise on odd input (empty, 1-pixel, constant, NaN-free float): a picture too small
to measure gives the neutral value. The detectors (picture.py, motion.py, reference.py) turn
these numbers into findings.
"""

from __future__ import annotations

import numpy as np

GRID = (8, 12)  # rows x columns of the cell grid used for texture and cover maps


def as_float(plane: np.ndarray) -> np.ndarray:
    a = np.asarray(plane)
    if a.ndim != 2:
        a = a.reshape(a.shape[0], -1) if a.ndim > 2 else np.atleast_2d(a)
    f = a.astype(np.float32, copy=False)
    if a.dtype.kind in "ui" or np.isfinite(f).all():
        return f
    return np.nan_to_num(f, nan=0.0, posinf=255.0, neginf=0.0)


def percentiles(plane: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles of a 0..255 plane by histogram (much cheaper than np.percentile)."""
    a = np.clip(as_float(plane), 0, 255).astype(np.uint8).ravel()
    if a.size == 0:
        return tuple(0.0 for _ in qs)
    cum = np.cumsum(np.bincount(a, minlength=256))
    return tuple(float(np.searchsorted(cum, q / 100.0 * (a.size - 1) + 1)) for q in qs)


def dominant_fraction(plane: np.ndarray, tol: float) -> tuple[float, float]:
    """(fraction of pixels within ±tol of the median, the median): how much of the picture is one level."""
    a = as_float(plane)
    if a.size == 0:
        return 1.0, 0.0
    med = float(np.median(a[::2, ::2])) if min(a.shape) > 1 else float(np.median(a))
    return float(np.mean(np.abs(a - med) <= tol)), med


def chroma_stats(u: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """(mean U-128, mean V-128, mean chroma magnitude): the picture's tint and its colourfulness."""
    du, dv = as_float(u) - 128.0, as_float(v) - 128.0
    if du.size == 0 or du.shape != dv.shape:
        return 0.0, 0.0, 0.0
    return float(du.mean()), float(dv.mean()), float(np.hypot(du, dv).mean())


def chroma_peak(u: np.ndarray, v: np.ndarray, q: float = 98.0) -> float:
    """The chroma magnitude of the most coloured 2 % of the picture (q-th percentile): how much
    colour there is where there is any. A grey road with a yellow line reads the line's colour,
    which the mean over the picture would dilute; a monochrome picture reads 0."""
    du, dv = as_float(u) - 128.0, as_float(v) - 128.0
    if du.size == 0 or du.shape != dv.shape:
        return 0.0
    return percentiles(np.hypot(du, dv), (q,))[0]


COLOUR_GRID = (16, 24)  # rows x columns of the chroma pattern (cells of about 8 x 10 chroma samples at analysis size)


def chroma_cells(u: np.ndarray, v: np.ndarray, grid: tuple[int, int] = COLOUR_GRID) -> np.ndarray:
    """The picture's colour pattern: mean U-128 and V-128 over each cell of `grid`, shape
    (2, rows, cols). Cell means are what encoding keeps best of a faint colour (the block's DC),
    so a grey road's faint pattern (a verge, paint, a tint under the lamps) survives x264 where
    single chroma samples round to neutral."""
    du, dv = as_float(u) - 128.0, as_float(v) - 128.0
    if du.size == 0 or du.shape != dv.shape:
        return np.zeros((2, *grid), np.float32)
    return np.stack([cell_means(du, grid), cell_means(dv, grid)]).astype(np.float32)


def colour_pattern(cells: np.ndarray) -> float:
    """How much colour pattern there is: RMS of the cells' chroma about its mean (grey levels);
    the mean itself (a tint, a white balance) does not count."""
    c = np.asarray(cells, np.float64)
    if c.ndim != 3 or c.size == 0:
        return 0.0
    return float(np.sqrt(((c - c.mean(axis=(1, 2), keepdims=True)) ** 2).mean()))


def colour_gain(cur: np.ndarray, ref: np.ndarray, where: np.ndarray | None = None) -> float:
    """How much of the reference's colour pattern the picture keeps: the slope of the picture's
    cell chroma on the reference's (U and V together, each about its mean, so a tint or a white
    balance change does not count). About 1 for the same view (a little less after encoding), 0
    when the colour is gone. `where` (cells, bool): only those cells count (the ones that still
    show the reference's scene, `cells_like`): a red car over a few cells of a grey road has 30-40
    levels of chroma against the road's 1-3, and would decide the slope alone."""
    c, r = np.asarray(cur, np.float64), np.asarray(ref, np.float64)
    if c.shape != r.shape or c.ndim != 3:
        return 1.0
    m = np.ones(r.shape[1:], bool) if where is None else np.asarray(where, bool)
    if m.shape != r.shape[1:] or not m.any():
        return 1.0
    rc = r[:, m] - r[:, m].mean(axis=1, keepdims=True)
    cc = c[:, m] - c[:, m].mean(axis=1, keepdims=True)
    den = float((rc * rc).sum())
    return float((rc * cc).sum() / den) if den > 1e-9 else 1.0


def colour_in_front(cur: np.ndarray, ref: np.ndarray, tol: float) -> np.ndarray:
    """The cells (of two chroma_cells grids) whose colour no loss or encoding of the reference's
    colour explains: off the reference's (each about its median, so a tint does not count) by more
    than the reference's own colour there plus `tol`. Colour fading moves a cell towards neutral by
    at most its colour; a red car on a grey road is 30-40 levels off, also over the cells it only
    partly covers, whose brightness may still pass for the road's."""
    c, r = np.asarray(cur, np.float64), np.asarray(ref, np.float64)
    if c.shape != r.shape or c.ndim != 3:
        return np.zeros(r.shape[1:] if r.ndim == 3 else (0, 0), bool)
    cc = c - np.median(c, axis=(1, 2), keepdims=True)
    rc = r - np.median(r, axis=(1, 2), keepdims=True)
    return np.hypot(*(cc - rc)) > np.hypot(*rc) + tol


def cells_like(cur: np.ndarray, ref: np.ndarray, tol: float) -> np.ndarray:
    """The cells (of two same-shape grids of mean luma) whose brightness follows the reference's:
    within `tol` grey levels of one straight line fitted to the cells' brightness on the
    reference's (least squares, fitted again without the cells off by more than 3 x `tol`, so a
    white lorry does not drag the line). An exposure change moves all cells along the line; a
    vehicle, a person or a new object sets its cells apart."""
    c, r = np.asarray(cur, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    if c.shape != r.shape or c.size < 3 or float(np.ptp(r)) < 1e-6:
        return np.abs(c - np.median(c)).reshape(np.shape(cur)) <= tol if c.size else np.zeros(np.shape(cur), bool)
    fit = np.ones(c.size, bool)
    for spread in (3 * tol, tol):
        slope, offset = np.polyfit(r[fit], c[fit], 1) if fit.sum() >= 3 and np.ptp(r[fit]) > 1e-6 else (1.0, float(np.median(c - r)))
        off = np.abs(c - (slope * r + offset))
        fit = off <= spread
    return fit.reshape(np.shape(cur))


def gradients(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute horizontal and vertical neighbour differences, cropped to a common shape."""
    a = as_float(y)
    if min(a.shape) < 2:
        z = np.zeros((max(a.shape[0] - 1, 0), max(a.shape[1] - 1, 0)), np.float32)
        return z, z
    return np.abs(np.diff(a, axis=1))[:-1, :], np.abs(np.diff(a, axis=0))[:, :-1]


def cell_means(a: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Mean of `a` over a grid of cells (rows x cols); cells that get no pixel are 0."""
    a = as_float(a)
    rows, cols = grid
    h, w = a.shape
    if h < rows or w < cols:
        return np.full(grid, float(a.mean()) if a.size else 0.0, np.float32)
    ch, cw = h // rows, w // cols
    return a[:ch * rows, :cw * cols].reshape(rows, ch, cols, cw).mean(axis=(1, 3))


def texture_map(y: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Mean absolute gradient per cell (grey levels per pixel): where the picture has detail."""
    gx, gy = gradients(y)
    return cell_means(gx + gy, grid)


def noise_sigma(y: np.ndarray, block: int = 16) -> float:
    """Noise standard deviation (Immerkaer 1996, fast estimation), robust to texture: the 25th
    percentile over blocks, so edges, rain streaks and text do not count. Native resolution."""
    a = as_float(y)
    h, w = a.shape
    if h < block + 2 or w < block + 2:
        return 0.0
    lap = (a[:-2, :-2] - 2 * a[:-2, 1:-1] + a[:-2, 2:] - 2 * a[1:-1, :-2] + 4 * a[1:-1, 1:-1] - 2 * a[1:-1, 2:]
           + a[2:, :-2] - 2 * a[2:, 1:-1] + a[2:, 2:])
    rows, cols = lap.shape[0] // block, lap.shape[1] // block
    per_block = np.abs(lap[:rows * block, :cols * block]).reshape(rows, block, cols, block).mean(axis=(1, 3))
    return float(np.sqrt(np.pi / 2) / 6.0 * np.percentile(per_block, 25))


def _highpass(profile: np.ndarray, k: int = 9) -> np.ndarray:
    """Each row minus its moving average over k samples (edges padded by repetition)."""
    if profile.shape[-1] < k + 2:
        return profile - profile.mean(axis=-1, keepdims=True)
    padded = np.pad(profile, [(0, 0)] * (profile.ndim - 1) + [(k // 2, k // 2)], mode="edge")
    c = np.cumsum(padded, axis=-1, dtype=np.float64)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,)), c], axis=-1)
    return profile - (c[..., k:] - c[..., :-k]) / k


def stripe_strength(y: np.ndarray, block: int = 8) -> tuple[float, float]:
    """(horizontal, vertical) banding strength in grey levels: the amplitude of the row (column)
    pattern common to the whole picture, times how periodic it is (0 unless one frequency band
    holds over 30 % of its energy), times the share of columns (rows) that carry it. Interference adds the same bands to every column; a
    lane mark, a horizon or a row of windows is in some columns only, or not periodic.
    The amplitude is the one most of the pattern has (the median of its quarters, never more
    than the whole's): interference is as strong everywhere, while a kerb, a lane line and a crash
    barrier along one edge, running the full height, are strong in one quarter only and would
    otherwise lend their amplitude to faint periodic texture elsewhere."""
    a = as_float(y)
    result = []
    for plane in (a, a.T):  # rows pattern first (horizontal bands), then columns
        h, w = plane.shape
        n = w // block
        if h < 24 or n < 6:
            result.append(0.0)
            continue
        prof = plane[:, :n * block].reshape(h, n, block).mean(axis=2).T  # column blocks x rows
        hp = _highpass(prof, k=max(9, (h // 12) | 1))
        common = hp.mean(axis=0)
        power = float((common ** 2).sum())
        if power <= 1e-6:
            result.append(0.0)
            continue
        carry = (hp @ common) / power  # how much of the common pattern each column block carries
        consistent = float(np.mean((carry > 0.5) & (carry < 1.5)))
        spec = np.abs(np.fft.rfft((common - common.mean()) * np.hanning(h)))[2:max(3, h // 4)] ** 2  # periods >= 4 px
        i = int(np.argmax(spec)) if spec.size else 0
        peak = float(spec[max(0, i - 1):i + 2].sum() / max(spec.sum(), 1e-9)) if spec.size else 0.0
        mean_square = float((common ** 2).mean())
        typical = float(np.median([(q ** 2).mean() for q in np.array_split(common, 4)]))
        amplitude = float(np.sqrt(2 * min(typical, mean_square)))
        periodic = min(1.0, max(0.0, (peak - 0.3) / 0.4))  # one frequency (and its neighbours) holds most energy
        result.append(amplitude * periodic * consistent)
    return result[0], result[1]


def shift_estimate(a: np.ndarray, b: np.ndarray, max_frac: float = 0.08) -> tuple[float, float, float]:
    """(dx, dy, quality): the translation of picture b against a, from projections of their
    gradients (cheap and insensitive to brightness changes); quality is the correlation 0..1."""
    fa, fb = as_float(a), as_float(b)
    if fa.shape != fb.shape or min(fa.shape) < 8:
        return 0.0, 0.0, 0.0
    out, quality = [], []
    for axis in (0, 1):  # axis 0 averages the rows: a column profile, so dx
        pa = np.diff(fa.mean(axis=axis))
        pb = np.diff(fb.mean(axis=axis))
        pa, pb = pa - pa.mean(), pb - pb.mean()
        n = pa.size
        m = max(1, min(n - 2, int(n * max_frac)))
        den = float(np.sqrt((pa * pa).sum() * (pb * pb).sum()))
        if den <= 1e-9:
            out.append(0.0)
            quality.append(0.0)
            continue
        full = np.correlate(pb, pa, mode="full")[n - 1 - m:n + m]  # lags -m..m
        lags = np.arange(-m, m + 1)
        scores = full / den * n / (n - np.abs(lags))
        i = int(np.argmax(scores))
        off = 0.0
        if 0 < i < len(scores) - 1:
            l, c0, r = scores[i - 1], scores[i], scores[i + 1]
            d = l - 2 * c0 + r
            off = 0.5 * (l - r) / d if abs(d) > 1e-9 else 0.0
        out.append(float(lags[i]) + float(np.clip(off, -0.5, 0.5)))
        quality.append(float(np.clip(scores[i], 0.0, 1.0)))
    return out[0], out[1], float(min(quality))


def global_shift(a: np.ndarray, b: np.ndarray, regions: int = 3, max_frac: float = 0.06) -> tuple[float, float, float]:
    """(dx, dy, share): the camera's own motion between two pictures: the median shift of a
    regions x regions grid, over the regions that could be followed (a vehicle moving in one
    region does not move the camera). `share` is the share of regions that agree with it."""
    fa, fb = as_float(a), as_float(b)
    if fa.shape != fb.shape or min(fa.shape) < 8 * regions:
        return 0.0, 0.0, 0.0
    h, w = fa.shape
    rh, rw = h // regions, w // regions
    found = []
    for r in range(regions):
        for c in range(regions):
            sl = (slice(r * rh, (r + 1) * rh), slice(c * rw, (c + 1) * rw))
            dx, dy, q = shift_estimate(fa[sl], fb[sl], max_frac * w / rw)
            if q >= 0.5:
                found.append((dx, dy))
    if not found:
        return 0.0, 0.0, 0.0
    arr = np.array(found)
    dx, dy = float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))
    agree = float(np.mean(np.hypot(arr[:, 0] - dx, arr[:, 1] - dy) <= 1.0)) * len(found) / regions ** 2
    return dx, dy, agree


def block_diff(a: np.ndarray, b: np.ndarray, block: int = 16) -> np.ndarray:
    """Mean absolute difference per block between two same-size pictures."""
    fa, fb = as_float(a), as_float(b)
    if fa.shape != fb.shape or fa.size == 0:
        return np.full((1, 1), 255.0, np.float32)
    h, w = fa.shape
    rows, cols = max(1, h // block), max(1, w // block)
    bh, bw = max(1, h // rows), max(1, w // cols)
    d = np.abs(fa[:rows * bh, :cols * bw] - fb[:rows * bh, :cols * bw])
    return d.reshape(rows, bh, cols, bw).mean(axis=(1, 3))


def downscale(a: np.ndarray, factor: int) -> np.ndarray:
    """Block-mean downscale by an integer factor."""
    fa = as_float(a)
    if factor <= 1:
        return fa
    h, w = fa.shape[0] // factor, fa.shape[1] // factor
    if h == 0 or w == 0:
        return fa
    return fa[:h * factor, :w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def local_normalise(a: np.ndarray, k: int = 7) -> np.ndarray:
    """Subtract the local mean and divide by the local deviation (box k x k): structure without
    the lighting, so a reference taken by day still matches the same view at dusk."""
    fa = as_float(a)
    if fa.size == 0:
        return fa
    if min(fa.shape) < k:
        return fa - fa.mean()

    def box(x: np.ndarray) -> np.ndarray:
        c = np.pad(x, k // 2, mode="edge").cumsum(0).cumsum(1)
        c = np.pad(c, ((1, 0), (1, 0)))
        return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)

    mean = box(fa)
    var = np.maximum(box(fa * fa) - mean * mean, 0.0)
    return (fa - mean) / np.sqrt(var + 64.0)


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of two same-size arrays (optionally over a mask), -1..1."""
    fa, fb = as_float(a), as_float(b)
    if fa.shape != fb.shape or fa.size == 0:
        return 0.0
    if mask is not None:
        fa, fb = fa[mask], fb[mask]
        if fa.size < 4:
            return 0.0
    fa, fb = fa - fa.mean(), fb - fb.mean()
    den = float(np.sqrt((fa * fa).sum() * (fb * fb).sum()))
    return float((fa * fb).sum() / den) if den > 1e-9 else 0.0


def resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average resize to (height, width) for any size ratio (downscaling); nearest when growing."""
    fa = as_float(a)
    h, w = fa.shape
    if h == 0 or w == 0:
        return np.zeros((height, width), np.float32)
    if h < height or w < width:
        ri = np.minimum((np.arange(height) * h) // height, h - 1)
        ci = np.minimum((np.arange(width) * w) // width, w - 1)
        fa = fa[ri][:, ci]
        h, w = fa.shape
        if (h, w) == (height, width):
            return fa
    rs = (np.arange(height) * h) // height
    cs = (np.arange(width) * w) // width
    sums = np.add.reduceat(np.add.reduceat(fa, rs, axis=0), cs, axis=1)
    counts = np.outer(np.diff(np.append(rs, h)), np.diff(np.append(cs, w)))
    return (sums / counts).astype(np.float32)


def edge_width(y: np.ndarray, reach: int = 5) -> float:
    """Median blur radius of the picture's strong edges (pixels, Gaussian sigma equivalent).

    At a blurred step of contrast C the steepest gradient is C / (sigma * sqrt(2 pi)); C is read
    `reach` pixels either side of each edge point (local gradient maxima among the strongest 2 %).
    Defocus widens every edge whatever the scene, so this needs only a few edges, unlike a
    measure of overall detail. A perfectly sharp step reads about 0.8."""
    a = as_float(y)
    widths = []
    for plane in (a, a.T):
        h, w = plane.shape
        if w < 2 * reach + 4 or h < 1:
            continue
        g = np.abs(plane[:, 2:] - plane[:, :-2]) / 2  # gradient at x = 1 .. w-2
        peak = (g[:, 1:-1] >= g[:, :-2]) & (g[:, 1:-1] > g[:, 2:])  # x = 2 .. w-3
        gp = g[:, 1:-1]
        strong = peak & (gp >= max(6.0, percentiles(np.minimum(gp[::2, ::2], 255), (98,))[0]))
        rows, cols = np.nonzero(strong)
        x = cols + 2
        ok = (x - reach >= 0) & (x + reach < w)
        rows, x = rows[ok], x[ok]
        if rows.size == 0:
            continue
        contrast = np.abs(plane[rows, x + reach] - plane[rows, x - reach])
        widths.append(0.4 * contrast / np.maximum(gp[rows, x - 2], 1e-3))
    if not widths:
        return 0.0
    return float(np.median(np.concatenate(widths)))


def zoom_about_centre(a: np.ndarray, scale: float) -> np.ndarray:
    """`a` magnified by `scale` about its centre (bilinear, same size; edges repeated)."""
    fa = as_float(a)
    h, w = fa.shape
    if scale == 1.0 or h < 2 or w < 2:
        return fa
    yy = (np.arange(h) - (h - 1) / 2) / scale + (h - 1) / 2
    xx = (np.arange(w) - (w - 1) / 2) / scale + (w - 1) / 2
    y0 = np.clip(np.floor(yy).astype(int), 0, h - 2)
    x0 = np.clip(np.floor(xx).astype(int), 0, w - 2)
    fy = np.clip(yy - y0, 0, 1)[:, None].astype(np.float32)
    fx = np.clip(xx - x0, 0, 1)[None, :].astype(np.float32)
    top = fa[y0][:, x0] * (1 - fx) + fa[y0][:, x0 + 1] * fx
    bottom = fa[y0 + 1][:, x0] * (1 - fx) + fa[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def phase_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """(dx, dy, peak, at_zero): where picture `a` best matches picture `b` shifted (pixels), by
    phase correlation (Hann window, whitened cross-power spectrum): every spatial frequency
    counts alike, so the faint texture of a bare road weighs as much as a passing vehicle's
    strong edges. `peak` is the correlation peak (about 1 for the same picture shifted, below
    0.1 for unrelated ones) and `at_zero` the value at no shift."""
    fa, fb = as_float(a), as_float(b)
    if fa.shape != fb.shape or min(fa.shape) < 8:
        return 0.0, 0.0, 0.0, 0.0
    h, w = fa.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    cross = np.fft.rfft2((fa - fa.mean()) * win) * np.conj(np.fft.rfft2((fb - fb.mean()) * win))
    mag = np.abs(cross)
    if float(mag.max()) <= 1e-9:
        return 0.0, 0.0, 0.0, 0.0
    r = np.fft.irfft2(cross / (mag + 1e-9), s=(h, w))
    i, j = np.unravel_index(int(np.argmax(r)), r.shape)
    dy = i if i <= h // 2 else i - h
    dx = j if j <= w // 2 else j - w
    return float(dx), float(dy), float(r[i, j]), float(r[0, 0])


def shift_picture(a: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """(a moved by (dx, dy) pixels, mask of the pixels that came from inside a)."""
    fa = as_float(a)
    h, w = fa.shape
    out = np.zeros_like(fa)
    mask = np.zeros(fa.shape, bool)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = fa[ys, xs]
    mask[yd, xd] = True
    return out, mask


def band_profiles(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row profile of the left half, of the right half, column profile of the top half, of the
    bottom half): the median luma of each row (column) over half the picture, so a vehicle in
    part of a row does not move it. Kept in a reference to tell bands from the scene's own rows."""
    a = as_float(y)
    h, w = a.shape
    if h < 4 or w < 4:
        z = np.zeros(0, np.float32)
        return z, z, z, z
    return (np.median(a[:, :w // 2], axis=1), np.median(a[:, w // 2:], axis=1),
            np.median(a[:h // 2], axis=0), np.median(a[h // 2:], axis=0))


def _boxcar(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, mode="valid")


def added_bands(cur: np.ndarray, ref: np.ndarray, k: int = 31) -> float:
    """Amplitude (grey levels) of a periodic pattern that profile `cur` has and its reference
    profile `ref` has not. Both are high-passed (k samples) and the reference is matched in
    gain on their smooth parts (exposure does not count); what the reference's own pattern
    explains of the difference (a blur or fog weakens the scene's pattern, and the difference
    is then that pattern again) is projected out; the rest counts when one frequency holds
    most of its energy (over 40 %, full weight from 80 %)."""
    c, r = as_float(cur).ravel().astype(np.float64), as_float(ref).ravel().astype(np.float64)
    if c.shape != r.shape or c.size < 3 * k:
        return 0.0
    lc, lr = _boxcar(c, k), _boxcar(r, k)
    den = float(((lr - lr.mean()) ** 2).sum())
    gain = float(((lr - lr.mean()) * (lc - lc.mean())).sum() / den) if den > 1e-9 else 1.0
    edge = slice(k // 2, c.size - k // 2)
    hc, hr = (c - lc)[edge], gain * (r - lr)[edge]
    diff = hc - hr
    norm = float((hr * hr).sum())
    if norm > 1e-9:
        diff = diff - float((diff * hr).sum()) / norm * hr
    power = np.abs(np.fft.rfft((diff - diff.mean()) * np.hanning(diff.size))) ** 2
    if power.size < 8 or float(power[2:].sum()) <= 1e-9:
        return 0.0
    f = int(np.argmax(power[4:])) + 4  # periods up to a quarter of the profile
    share = float(power[f - 1:f + 2].sum() / power[2:].sum())
    amplitude = float(np.sqrt(2 * np.mean(diff ** 2)))
    return amplitude * float(np.clip((share - 0.4) / 0.4, 0.0, 1.0))


def stripe_against(y: np.ndarray, ref: tuple[np.ndarray, ...]) -> float | None:
    """Banding strength (grey levels) of picture `y` against its reference's `band_profiles`:
    bands across the whole picture show in both halves, so the weaker half counts (a fence or a
    row of posts in one part of the view does not). None when the profiles do not fit `y`."""
    cur = band_profiles(y)
    if len(ref) != 4 or any(a.shape != b.shape or a.size == 0 for a, b in zip(cur, ref)):
        return None
    rows = min(added_bands(cur[0], ref[0]), added_bands(cur[1], ref[1]))
    cols = min(added_bands(cur[2], ref[2]), added_bands(cur[3], ref[3]))
    return max(rows, cols)
