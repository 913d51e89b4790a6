"""Faults seen between pictures: freeze, jitter (shaking), PTZ not responding. Pure numpy."""

from __future__ import annotations

import numpy as np

from camgrid.ops.vqd import features as fx
from camgrid.ops.vqd.frames import Picture
from camgrid.ops.vqd.picture import score
from camgrid.ops.vqd.thresholds import Thresholds

SIM_WIDTH = 120  # structure is compared on pictures this wide
STILL_PEAK = 0.15  # phase correlation peak at no shift of two views of the same background (unrelated: < 0.12)
IN_PLACE_NCC = 0.3  # a region whose structure correlates this much at no shift is unchanged in place ...
IN_PLACE_MARGIN = 0.1  # ... clearly better than 2 px off (1.7 % of the width) in x and in y ...
IN_PLACE_REGIONS = 3  # ... and this many of the 3x3 such regions keep the background in place (a vehicle fills the rest)


def still(a: Picture, b: Picture, th: Thresholds) -> bool:
    """Nothing changed between two pictures but a small region (an on-screen clock), and not even
    the sensor's noise: the same picture again. A live static scene differs by its noise."""
    if a.y.shape != b.y.shape:
        return False
    d = fx.block_diff(a.y, b.y)
    changed = float((d > th.freeze_block_diff).mean())
    return changed <= th.freeze_changed_share and float(np.median(d)) < th.freeze_noise_floor


def featured(p: Picture, th: Thresholds) -> bool:
    """The picture has enough luma spread (contrast_range) for a change, or its absence, to show."""
    p2, p98 = fx.percentiles(p.y, (2, 98))
    return p98 - p2 >= th.contrast_range


def freeze(pictures: list[Picture], th: Thresholds, burst: list[Picture] = ()) -> list[dict]:
    """The longest run of pictures that are all the same; reported when it lasts freeze_min_s.
    Give it independently coded pictures (key frames): consecutive P-frames of a static scene
    repeat the same pixels (skipped blocks) without the picture being frozen. Featureless
    pictures (luma spread below contrast_range) look the same frozen or live, so they are no
    evidence either way: not judged when the latest one is, and never part of a run (a dark
    room before the lights go on, whose few grey levels x264 keeps identical, is not frozen)."""
    if not th.enabled("freeze") or len(pictures) < 2:
        return []
    if not featured(pictures[-1], th):
        return []
    shows_change: dict[int, bool] = {}  # measured only for pictures that are still (live ones rarely are)

    def can_show(i: int) -> bool:
        if i not in shows_change:
            shows_change[i] = featured(pictures[i], th)
        return shows_change[i]

    best, start = 0.0, pictures[0].t
    best_end = start
    for i, (prev, cur) in enumerate(zip(pictures, pictures[1:])):
        if not (still(prev, cur, th) and can_show(i) and can_show(i + 1)):
            start = cur.t
            continue
        if cur.t - start > best:
            best, best_end = cur.t - start, cur.t
    if best < th.freeze_min_s:
        return []
    if best_end >= pictures[-1].t and burst and burst[0] is pictures[-1]:
        # frozen through the final burst too: it lengthens the run (P-frames repeating the same
        # pixels prove nothing by themselves, so they never decide whether it is a freeze)
        if all(still(burst[0], b, th) for b in burst[1:]):
            best += burst[-1].t - burst[0].t
            best_end = burst[-1].t
    return [{"type": "freeze", "score": score(best, th.freeze_min_s, 2 * th.freeze_min_s), "frozen_s": round(best, 1),
             "ongoing": best_end >= pictures[-1].t}]  # frozen_s: between the first and last same picture seen


def shifts(burst: list[Picture]) -> np.ndarray:
    """Frame-to-frame camera motion (dx, dy, agreement) across the burst, shape (n-1, 3); pixels."""
    out = []
    for a, b in zip(burst, burst[1:]):
        if a.y.shape != b.y.shape:
            continue
        out.append(fx.global_shift(a.y, b.y))
    return np.array(out, np.float64).reshape(-1, 3)


def jitter(burst: list[Picture], th: Thresholds) -> list[dict]:
    """Shaking: frame-to-frame shifts that keep changing (a pan or a zoom changes them smoothly,
    so what remains after removing the local average is the shake)."""
    if not th.enabled("jitter") or len(burst) < 5:
        return []
    s = shifts(burst)
    if len(s) < 4 or np.median(s[:, 2]) < 0.4:  # too little structure, or too few regions agree
        return []
    ok = s[:, 2] >= 0.4
    resid = s[1:-1, :2] - (s[:-2, :2] + s[2:, :2]) / 2
    valid = ok[1:-1] & ok[:-2] & ok[2:]
    if valid.sum() < 3:
        return []
    # robust RMS (median of the residual's length x 1.2): one jolt, or the end of a pan, is not shaking
    rms = 1.2 * float(np.median(np.hypot(resid[valid, 0], resid[valid, 1])))
    width = burst[-1].y.shape[1]
    frac = rms / max(width, 1) / 1.5  # the residual of independent shakes is ~1.5x their size
    if frac <= th.jitter_frac:
        return []
    return [{"type": "jitter", "score": score(frac, th.jitter_frac, 4 * th.jitter_frac), "shake": round(frac, 4)}]


def small(p: Picture) -> np.ndarray:
    h, w = p.y.shape
    return fx.resize(p.y, max(2, round(h * SIM_WIDTH / max(w, 1))), SIM_WIDTH)


def view_change(a: Picture, b: Picture) -> float:
    """0 (the same view) .. 1 (nothing in common): 1 - structural similarity of the two pictures."""
    sa, sb = small(a), small(b)
    if sa.shape != sb.shape:
        return 1.0
    return float(np.clip(1.0 - fx.ncc(fx.local_normalise(sa), fx.local_normalise(sb)), 0.0, 1.0))


def ptz(pictures: list[Picture], commands: list[float], th: Thresholds) -> list[dict]:
    """For each PTZ command (seconds into the window): did the camera move within ptz_wait_s
    (+2 s for the pictures to show it)? Moving: the view shifted (regions agree) or changed
    beyond ptz_min_change."""
    if not th.enabled("ptz_unresponsive") or not commands:
        return []
    worst = None
    for at in commands:
        before = [p for p in pictures if p.t <= at]
        after = [p for p in pictures if at < p.t <= at + th.ptz_wait_s + 2.0]
        if not before or not after:
            continue
        if any(camera_moved(before[-1], p, th.ptz_min_change) for p in after):
            continue
        change = max(view_change(before[-1], p) for p in after)
        if worst is None or change < worst[1]:
            worst = (at, change)
    if worst is None:
        return []
    return [{"type": "ptz_unresponsive", "score": score(worst[1], th.ptz_min_change, 0.0),
             "command_at_s": worst[0], "view_change": round(worst[1], 3)}]


def camera_moved(a: Picture, b: Picture, unrelated: float = 0.6) -> bool:
    """Did the camera turn between two pictures? A shift of the whole view by over 1 % of its
    width that regions agree on, or views with almost nothing in common (view_change at least
    `unrelated`: a zoom, a long pan) unless their background still lines up in place. Traffic
    through a fixed view does neither."""
    if a.y.shape != b.y.shape:
        return True
    sa, sb = small(a), small(b)
    dx, dy, agree = fx.global_shift(sa, sb, max_frac=0.15)
    if agree >= 0.3 and np.hypot(dx, dy) > 0.01 * SIM_WIDTH:
        return True
    return view_change(a, b) >= unrelated and not background_in_place(sa, sb)


def background_in_place(a: np.ndarray, b: np.ndarray) -> bool:
    """The two pictures still line up where they are: phase correlation peaks at no shift, and
    clearly, or enough regions of the view are unchanged in place (`regions_in_place`). Only a
    background that did not move can do either; vehicles crossing a featureless road (which
    change most of its structure) cannot, a turned camera does not."""
    dx, dy, peak, _ = fx.phase_correlation(a, b)
    if abs(dx) <= 1 and abs(dy) <= 1 and peak >= STILL_PEAK:
        return True
    return regions_in_place(a, b) >= IN_PLACE_REGIONS


def regions_in_place(a: np.ndarray, b: np.ndarray, regions: int = 3, step: int = 2) -> int:
    """How many of the regions x regions regions of two pictures show the same structure at the
    same place: locally normalised correlation at no shift >= `IN_PLACE_NCC`, and clearly better
    than `step` pixels off in either direction (a region of lines along one direction, which a pan
    along them leaves in place, tells nothing). A large vehicle standing in one picture changes
    the regions it covers wholesale (they correlate with nothing: occluded, not moved) and leaves
    the others in place; a turned or zoomed camera moves the structure of every region."""
    fa, fb = fx.as_float(a), fx.as_float(b)
    if fa.shape != fb.shape or min(fa.shape) < 8 * regions:
        return 0
    na, nb = fx.local_normalise(fa), fx.local_normalise(fb)
    h, w = fa.shape
    rh, rw = h // regions, w // regions
    count = 0
    for r in range(regions):
        for c in range(regions):
            y0, y1, x0, x1 = r * rh + step, (r + 1) * rh - step, c * rw + step, (c + 1) * rw - step
            here = na[y0:y1, x0:x1]

            def at(dx: int, dy: int) -> float:
                return fx.ncc(here, nb[y0 + dy:y1 + dy, x0 + dx:x1 + dx])

            still = at(0, 0)
            if still < IN_PLACE_NCC:
                continue
            off_x, off_y = max(at(-step, 0), at(step, 0)), max(at(0, -step), at(0, step))
            count += still >= max(off_x, off_y) + IN_PLACE_MARGIN
    return count


def settled(pictures: list[Picture]) -> list[Picture]:
    """The latest pictures that show the same view as the last one (the camera at rest)."""
    if not pictures:
        return []
    last = pictures[-1]
    out = [last]
    for p in reversed(pictures[:-1]):
        if camera_moved(p, last):
            break
        out.append(p)
    return out[::-1]
