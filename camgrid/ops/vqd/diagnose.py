"""Diagnosis: pictures in, findings out. Pure: no I/O, no state; any source of frames will do
(a file or stream through frames.open_sample, a patrol's live stream, arrays in a test).

The order matters, because one fault causes others and only the cause is reported:
no picture -> signal_loss; a one-colour screen -> black_screen or solid_colour; a mostly
covered lens -> occlusion; then exposure (too_dark / too_bright, else low_contrast), colour,
focus, noise, stripes, freeze, shaking, PTZ, and against the reference the scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from camgrid.ops.vqd import motion, picture, reference
from camgrid.ops.vqd.frames import Picture, Sample
from camgrid.ops.vqd.reference import Reference
from camgrid.ops.vqd.thresholds import Thresholds

SEVERITIES = ("minor", "major", "critical")
ALWAYS_CRITICAL = {"signal_loss", "black_screen", "solid_colour"}
FULL_COVER = 0.75  # a cover this large hides everything else
HD = (1280, 720)


def severity(fault: dict[str, Any]) -> str:
    """critical for no usable picture; otherwise by score: < 0.7 minor, < 0.9 major, else critical."""
    if fault["type"] in ALWAYS_CRITICAL:
        return "critical"
    if fault["type"] == "occlusion":
        cov = fault.get("covered", 0.0)
        return "critical" if cov >= FULL_COVER else "major" if cov >= 0.4 else "minor"
    s = fault["score"]
    return "minor" if s < 0.7 else "major" if s < 0.9 else "critical"


@dataclass
class Diagnosis:
    faults: list[dict[str, Any]] = field(default_factory=list)
    resolution: tuple[int, int] | None = None
    frames_analysed: int = 0
    duration_s: float = 0.0
    codec: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def hd(self) -> bool:
        """At least 1280x720 (either orientation): what counts towards the HD rate."""
        if not self.resolution:
            return False
        w, h = self.resolution
        return max(w, h) >= HD[0] and min(w, h) >= HD[1]

    def types(self) -> list[str]:
        return [f["type"] for f in self.faults]

    def to_dict(self) -> dict[str, Any]:
        return {"faults": self.faults, "resolution": list(self.resolution) if self.resolution else None,
                "hd": self.hd, "frames_analysed": self.frames_analysed, "duration_s": self.duration_s,
                "codec": self.codec, **({"notes": self.notes} if self.notes else {})}


def _finish(d: Diagnosis, found: list[dict[str, Any]]) -> Diagnosis:
    for f in found:
        f["score"] = round(float(f["score"]), 3)
        f["severity"] = severity(f)
    d.faults = [{"type": f["type"], "score": f["score"], "severity": f["severity"],
                 **{k: v for k, v in f.items() if k not in ("type", "score", "severity")}} for f in found]
    return d


def diagnose(sample: Sample, thresholds: Thresholds | None = None, ref: Reference | None = None,
             ptz_commands: list[float] | tuple[float, ...] = ()) -> Diagnosis:
    """Diagnose a decoded sample (see frames.open_sample)."""
    d = diagnose_pictures(sample.spaced, sample.burst, thresholds, ref, ptz_commands,
                          resolution=(sample.width, sample.height) if sample.width else None,
                          codec=sample.codec, duration_s=sample.duration_s)
    if sample.note:
        for f in d.faults:
            if f["type"] == "signal_loss":
                f["reason"] = sample.note
    return d


def diagnose_pictures(spaced: list[Picture], burst: list[Picture], thresholds: Thresholds | None = None,
                      ref: Reference | None = None, ptz_commands: list[float] | tuple[float, ...] = (), *,
                      resolution: tuple[int, int] | None = None, codec: str | None = None,
                      duration_s: float | None = None) -> Diagnosis:
    """Diagnose pictures: `spaced` spread over the window (with colour), `burst` consecutive
    frames at its end (luma is enough). Times are seconds from the start of the window."""
    th = thresholds or Thresholds()
    spaced = sorted(spaced, key=lambda p: p.t)
    everything = sorted({id(p): p for p in spaced + burst}.values(), key=lambda p: p.t)
    if resolution is None and everything:
        resolution = (everything[0].y.shape[1], everything[0].y.shape[0])
    if duration_s is None:
        duration_s = round(everything[-1].t - everything[0].t, 3) if everything else 0.0
    d = Diagnosis(resolution=resolution, frames_analysed=len(everything), duration_s=duration_s, codec=codec)
    if not everything:
        return _finish(d, [{"type": "signal_loss", "score": 1.0, "reason": "no decodable video"}]
                       if th.enabled("signal_loss") else [])
    judged = spaced or everything
    bands = ref.bands if ref is not None else ()
    cells = ref.colour_cells if ref is not None else None
    luma = ref.luma_cells if ref is not None and cells is not None else None
    stats = [picture.measure(p, th, bands, cells, luma) for p in picture.latest(judged)]  # picture faults: the state now
    found = picture.screens(stats, th)
    if found:
        return _finish(d, found)
    latest_pics = [p for p in judged if p.t >= (judged[0].t + judged[-1].t) / 2] or judged[-1:]
    exposure = picture.exposure(stats, th, ref.spread if ref is not None else None)
    settled = motion.settled(judged)
    moving = len(settled) < 2 and len(judged) >= 3
    if moving:  # a PTZ tour: the view is judged against a reference once it rests
        d.notes["camera_moving"] = True
    covered, cover_mask = reference.occlusion(latest_pics, th, None if moving else ref)
    if covered and covered[0]["judged_by"] == "darkness" and any(f["type"] == "too_dark" for f in exposure):
        covered = []  # without a reference a dark cover and an underexposed view look alike: say too_dark
    if covered and covered[0]["covered"] >= FULL_COVER:
        return _finish(d, covered)
    found += covered
    found += exposure
    if picture.monochrome(stats, th):
        d.notes["monochrome"] = True
    if not exposure:  # darkness, glare and fog take the colour with them: report the cause only
        colour = picture.colour(stats, th, ref.chroma if ref is not None else None,
                                ref.chroma_peak if ref is not None else None,
                                ref.colour_pattern if ref is not None and not moving else None,  # a tour's other views
                                ref.spread if ref is not None else None)
        found += [f for f in colour if not (covered and f["type"] == "colourless")]  # so does a cover
    detail = picture.sharpness_noise_stripes(stats, th, ref.blur if ref is not None else None)
    dim = picture.dim(stats, th)
    if exposure or covered or dim:  # edges fade in the dark, in fog and under a cover; lamps glow
        detail = [f for f in detail if f["type"] != "blur"]
    found += detail
    if not any(f["type"] == "blur" for f in detail):  # defocus smooths away the noise that tells still from frozen
        found += motion.freeze(judged, th, burst)
    shaking: list[dict[str, Any]] = []
    if not any(f["type"] == "stripe" for f in detail):  # rolling bands move the picture's profile too
        shaking = motion.jitter(burst, th)
    found += shaking
    found += motion.ptz(everything, list(ptz_commands), th)
    if ref is not None and not moving and not shaking and not any(f["type"] == "stripe" for f in detail):
        moved = reference.scene_change(settled or judged[-1:], ref, th, cover_mask)
        if moved and covered:  # a new view has other featureless parts: not a cover
            found = [f for f in found if f["type"] != "occlusion"]
        if moved:  # nor the reference's colour pattern: its loss there is not a loss of colour
            found = [f for f in found if not (f["type"] == "colourless" and f.get("judged_by") == "pattern")]
        found += moved
    return _finish(d, found)
