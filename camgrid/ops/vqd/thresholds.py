"""Thresholds of the detectors: defaults, and overrides per channel group and per channel.

`Thresholds` holds every knob with its unit and meaning (pydantic, so the API and a patrol's
configuration can pass them as JSON and the console can show the descriptions). A
`ThresholdPolicy` layers partial overrides: defaults < each group the channel belongs to (in
the order given) < the channel itself. Luma levels are on the decoder's 0..255 scale (video
range: black is 16, white 235); chroma is measured as the distance from neutral (128).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

FAULT_TYPES = ("signal_loss", "black_screen", "solid_colour", "freeze", "blur", "too_dark", "too_bright",
               "low_contrast", "colour_cast", "colourless", "noise", "stripe", "occlusion", "scene_change",
               "jitter", "ptz_unresponsive")


def F(default: Any, description: str, **kw: Any) -> Any:
    return Field(default, description=description, **kw)


class Thresholds(BaseModel):
    """When each detector reports a fault. A measurement at its threshold scores 0.5; the
    score grows to 1 at the detector's 'strong' level (docs/vqd.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disabled: tuple[str, ...] = F((), "Fault types not to look for on this channel (e.g. ptz_unresponsive on a fixed camera).")
    persistence: float = F(0.6, "Share of the latest pictures (the second half of the window) that must show a picture fault for it to be reported.", ge=0.1, le=1.0)
    black_luma: float = F(32.0, "black_screen: the dominant luma level is at most this (black is 16).", ge=0, le=255)
    solid_share: float = F(0.97, "black_screen/solid_colour: share of the picture within solid_tolerance of one colour (the rest may be on-screen text).", ge=0.5, le=1.0)
    solid_tolerance: float = F(1.0, "black_screen/solid_colour: luma and chroma tolerance around the dominant colour.", ge=1, le=64)
    freeze_min_s: float = F(3.0, "freeze: the picture must stay the same for at least this long.", ge=0.5)
    freeze_changed_share: float = F(0.04, "freeze: share of the picture that may still change (an on-screen clock, a blinking LED).", ge=0, le=0.5)
    freeze_block_diff: float = F(2.5, "freeze: a block whose mean absolute difference exceeds this (grey levels) has changed.", gt=0)
    freeze_noise_floor: float = F(0.5, "freeze: the median block difference of a live picture (sensor noise) is above this; a frozen one is below.", gt=0)
    blur_width: float = F(1.4, "blur: median blur radius of the strong edges (Gaussian sigma, pixels of a 480-wide picture) above this; a sharp picture reads 0.4-0.9.", gt=0)
    dark_mean: float = F(55.0, "too_dark: mean luma below this ...", ge=0, le=255)
    dark_top: float = F(110.0, "too_dark: ... and the brightest 0.5 % below this (a night scene has lamps and lit parts; an underexposed one has none).", ge=0, le=255)
    bright_mean: float = F(170.0, "too_bright: mean luma above this ...", ge=0, le=255)
    bright_clipped: float = F(0.25, "too_bright: ... and this share of the picture at or above luma 228 (blown out).", gt=0, le=1)
    contrast_range: float = F(24.0, "low_contrast without a reference: the spread between the 2nd and 98th luma percentiles below this.", gt=0, le=255)
    contrast_floor: float = F(40.0, "low_contrast: ... and the darkest 2 % are at least this bright (washed out: fog, glare, a misadjusted camera; a night scene keeps its blacks).", ge=0, le=255)
    contrast_ratio: float = F(0.5, "low_contrast with a reference: the spread is below this share of the reference's.", gt=0, le=1)
    cast: float = F(12.0, "colour_cast: the picture's mean chroma lies this far from neutral, and ...", gt=0)
    cast_share: float = F(0.7, "colour_cast: ... this much of the colour is the tint (mean chroma over mean chroma magnitude).", gt=0, le=1)
    colour_ratio: float = F(0.45, "colourless: the picture keeps less than this share of the reference's colour (chroma magnitude of the most coloured 2 %; the mean chroma magnitude for references made before that was kept) ...", gt=0, le=1)
    colour_peak_min: float = F(8.0, "colourless: ... judged only when the reference's most coloured 2 % has at least this chroma magnitude (a yellow line on a grey road is enough; a bare grey road is not).", gt=0)
    colour_pattern_min: float = F(0.5, "colourless on a reference with too little colour for colour_peak_min (a grey road): judged by how much of the reference's faint colour pattern (RMS of the mean chroma over 16x24 cells, about its mean) the picture keeps, when that pattern is at least this (grey levels); below it the scene has no colour to lose.", gt=0)
    colour_pattern_ratio: float = F(0.35, "colourless judged by the colour pattern: the picture keeps less than this share of the reference's pattern (slope of its cells' chroma on the reference's; the clean grey road reads 0.6-0.8 after x264, one with sensor noise 0.4) while keeping its luma contrast (contrast_ratio of the reference's).", gt=0, le=1)
    mono_peak: float = F(0.5, "colourless: a picture whose most coloured 2 % stays below this chroma magnitude has no colour anywhere (chroma exactly neutral): monochrome (IR night mode, a B/W camera), normal unless colour_expected. Raise it for a B/W camera whose chroma carries noise.", ge=0)
    colour_min: float = F(3.0, "colourless with a reference made before chroma peaks were kept: judged only when its mean colourfulness is at least this.", gt=0)
    mono_max: float = F(0.6, "colourless: a picture below this colourfulness is monochrome (IR night mode, a B/W camera): normal, unless colour_expected.", ge=0)
    colour_expected: bool = F(False, "colourless: the channel should show colour now (no IR mode), so monochrome is a fault too; judged without a reference.")
    noise_sigma: float = F(5.0, "noise: estimated noise standard deviation (grey levels, native resolution) above this.", gt=0)
    stripe: float = F(2.0, "stripe: amplitude (grey levels) of bands shared across the whole picture, weighted by periodicity, above this.", gt=0)
    occlusion_share: float = F(0.25, "occlusion: share of the picture covered (featureless, and changed from the reference or dark) above this.", gt=0, le=1)
    cover_detail: float = F(0.008, "occlusion: a cell whose relative detail (mean gradient per grey level above black) is below this is featureless.", gt=0)
    scene_similarity: float = F(0.35, "scene_change: structural similarity to the reference below this (0 unrelated, 1 the same view).", ge=-1, le=1)
    jitter_frac: float = F(0.005, "jitter: RMS frame-to-frame shake, after removing smooth pans, above this share of the picture width.", gt=0)
    ptz_min_change: float = F(0.9, "ptz_unresponsive: after a PTZ command the view must shift by over 1 % of its width (regions agreeing) or change at least this much (1 - structural similarity to the picture before; traffic through a fixed view reaches about 0.85 on a featureless road, 0.3 on a busy scene).", gt=0, le=1)
    ptz_wait_s: float = F(3.0, "ptz_unresponsive: how long after the command the picture may take to start moving.", gt=0)

    @field_validator("disabled")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(FAULT_TYPES))
        if unknown:
            raise ValueError(f"unknown fault types {unknown}; known: {', '.join(FAULT_TYPES)}")
        return value

    def enabled(self, fault: str) -> bool:
        return fault not in self.disabled


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ThresholdPolicy(BaseModel):
    """Defaults, partial overrides per channel group (e.g. 'tunnels', 'ptz') and per channel ID."""

    model_config = ConfigDict(extra="forbid")

    defaults: Thresholds = F(Thresholds(), "Thresholds for every channel.")
    groups: dict[str, dict[str, Any]] = F({}, "Overrides per group name: {group: {field: value}}.")
    channels: dict[str, dict[str, Any]] = F({}, "Overrides per channel ID (win over groups).")

    def for_channel(self, channel_id: str | None = None, groups: list[str] | tuple[str, ...] = ()) -> Thresholds:
        """The thresholds of one channel: defaults < its groups in order < the channel's own."""
        data = self.defaults.model_dump()
        for group in groups:
            data = _merge(data, self.groups.get(group, {}))
        if channel_id is not None:
            data = _merge(data, self.channels.get(channel_id, {}))
        return Thresholds.model_validate(data)
