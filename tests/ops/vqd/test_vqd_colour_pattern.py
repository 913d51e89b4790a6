"""Colour loss on a scene with little colour (issue 5: the grey top-down road): judged against
the reference's faint colour pattern (mean chroma over 16x24 cells), not against single chroma
samples, which x264 rounds to neutral. A monochrome picture (IR, B/W: chroma exactly neutral)
stays normal, and so do the clean scene after encoding and a scene with no colour pattern."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from camgrid.ops.vqd import features as fx
from camgrid.ops.vqd.diagnose import diagnose, diagnose_pictures
from camgrid.ops.vqd.frames import open_sample, picture_from_rgb
from camgrid.ops.vqd.reference import Reference, make_reference

import vqd_scenes as vs

H, W = 270, 480
FOOTAGE = Path(__file__).resolve().parents[4] / "shared" / "footage"
ROAD = FOOTAGE / "road-car-detection.mp4"


def smooth(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    return vs._smooth(rng, h, w, cells)


def faint_road(kept: float = 1.0, seed: int = 4) -> np.ndarray:
    """Grey asphalt from above with a faint colour pattern: a greenish verge along the top, a
    brownish patch, a slight warm cast where the lamps are; no strongly coloured part, so the
    most coloured 2 % of the picture stays well below colour_peak_min. `kept` scales the colour
    about each pixel's grey (1: the scene, 0: monochrome)."""
    rng = np.random.default_rng(seed)
    grey = 70 + 80 * smooth(rng, H, W, 8) + rng.normal(0, 2.0, (H, W))
    for x in range(0, W, 60):
        grey[130:136, x:x + 30] = 200  # white lane dashes
    img = np.repeat(grey[:, :, None], 3, axis=2)
    img[:50] += (-3.0, 3.0, -3.0)  # the verge
    img[150:230, 300:420] += (3.0, 0.5, -3.0)  # a patch of dry mud
    img += 3.0 * smooth(rng, H, W, 3)[:, :, None] * np.array([1.0, 0.2, -1.0])  # lamps' warm light
    y = (img @ np.array([0.299, 0.587, 0.114]))[:, :, None]
    return y + (img - y) * kept


def pics(rgb: np.ndarray, n: int = 6, noise: float = 0.0, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [picture_from_rgb(np.clip(rgb + rng.normal(0, noise, rgb.shape[:2])[:, :, None], 0, 255).astype(np.uint8),
                             t=2.0 * i) for i in range(n)]


def test_colour_gain_measures_the_share_of_the_pattern_kept():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 2.0, (2, 16, 24))
    assert fx.colour_gain(ref, ref) == pytest.approx(1.0)
    assert fx.colour_gain(0.3 * ref, ref) == pytest.approx(0.3)
    assert fx.colour_gain(0.3 * ref + np.array([4.0, -2.0])[:, None, None], ref) == pytest.approx(0.3)  # a tint is not colour kept
    assert fx.colour_gain(np.zeros_like(ref), ref) == pytest.approx(0.0)
    assert fx.colour_gain(ref, np.zeros_like(ref)) == 1.0  # no pattern: nothing to lose
    assert fx.colour_pattern(ref + 7.0) == pytest.approx(fx.colour_pattern(ref))
    u = np.full((20, 30), 128, np.uint8)
    assert fx.chroma_cells(u, u).shape == (2, *fx.COLOUR_GRID) and fx.colour_pattern(fx.chroma_cells(u, u)) == 0.0


def test_the_faint_road_is_below_the_colour_peak_rule_but_has_a_pattern():
    ref = make_reference(pics(faint_road(), 1))
    assert ref.chroma_peak < 8.0  # the colour peak rule does not judge this scene (colour_peak_min)
    assert ref.colour_pattern >= 0.5  # colour_pattern_min


@pytest.mark.parametrize("kept", [0.35, 0.2])
def test_colour_fading_on_a_faint_road_is_colourless(kept):
    ref = make_reference(pics(faint_road(), 1))
    found = diagnose_pictures(pics(faint_road(kept), noise=1.0), [], ref=ref)
    colourless = [f for f in found.faults if f["type"] == "colourless"]
    assert colourless and colourless[0]["judged_by"] == "pattern" and colourless[0]["colour_kept"] < 0.35


def test_the_faint_road_itself_and_in_monochrome_is_normal():
    ref = make_reference(pics(faint_road(), 1))
    assert "colourless" not in diagnose_pictures(pics(faint_road(), noise=1.0), [], ref=ref).types()
    assert "colourless" not in diagnose_pictures(pics(faint_road(0.8), noise=1.0), [], ref=ref).types()
    mono = diagnose_pictures(pics(faint_road(0.0), noise=1.0), [], ref=ref)
    assert "colourless" not in mono.types() and mono.notes.get("monochrome")


def test_a_reference_without_the_pattern_is_judged_as_before():
    ref = make_reference(pics(faint_road(), 1))
    old = Reference(ref.structure, ref.detail, ref.mean, ref.blur, ref.chroma, ref.spread, ref.chroma_peak, ref.bands)
    assert old.colour_pattern is None
    assert "colourless" not in diagnose_pictures(pics(faint_road(0.2), noise=1.0), [], ref=old).types()
    again = Reference.from_bytes(ref.to_bytes())
    assert np.allclose(again.colour_cells, ref.colour_cells) and again.colour_pattern == pytest.approx(ref.colour_pattern)


def test_faint_colour_loss_survives_x264_and_the_clean_road_does_not_read_as_loss(tmp_path):
    """Through the camera's path: x264 (CRF 26) rounds most single chroma samples of the faint
    road to neutral, but the cells' means keep the pattern."""
    ref = make_reference(pics(faint_road(), 1))
    rng = np.random.default_rng(3)

    def frames(kept):
        for i in range(int(6 * vs.FPS)):
            yield faint_road(kept if i >= 12 else 1.0) + rng.normal(0, 1.5, (H, W))[:, :, None]

    clean = diagnose(open_sample(vs.encode(tmp_path / "clean.mp4", frames(1.0), crf=26)), None, ref)
    faded = diagnose(open_sample(vs.encode(tmp_path / "faded.mp4", frames(0.3), crf=26)), None, ref)
    grey = diagnose(open_sample(vs.encode(tmp_path / "grey.mp4", frames(0.0), crf=26)), None, ref)
    assert "colourless" not in clean.types(), clean.faults
    assert "colourless" in faded.types(), faded.faults
    assert "colourless" not in grey.types() and grey.notes.get("monochrome")


def _road_clip(path: Path, kept: float, seconds: float = 8.0) -> tuple[Path, list]:
    """The development footage's top-down road at 640x360, its colour scaled by `kept` from 2 s
    on, x264 CRF 26; and four clean pictures of it for the reference."""
    clean = []
    with av.open(str(ROAD)) as src, av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "26", "x264-params": "keyint=12:min-keyint=12:scenecut=0:bframes=0"}
        for i, frame in enumerate(src.decode(video=0)):
            if i % 2:  # 25 -> 12.5 fps
                continue
            n = i // 2
            if n >= seconds * 12:
                break
            rgb = frame.reformat(width=640, height=360, format="rgb24").to_ndarray().astype(np.float32)
            if n % 24 == 6:
                clean.append(picture_from_rgb(rgb.astype(np.uint8), t=0.0))
            if n >= 24:
                y = (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
                rgb = y + (rgb - y) * kept
            f = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), format="rgb24").reformat(format="yuv420p")
            f.pts = n
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path, clean


@pytest.mark.skipif(not ROAD.is_file(), reason="no development footage in ../shared/footage (optional)")
def test_the_grey_road_footage_losing_its_colour_is_colourless(tmp_path):
    found = {}
    for kept in (1.0, 0.2, 0.0):  # 35 % kept reads 0.2-0.4 of the pattern, by the encoding: at the threshold
        clip, clean = _road_clip(tmp_path / f"road-{kept}.mp4", kept)
        ref = make_reference(clean)
        assert ref.chroma_peak < 8.0  # the road has next to no colour: the peak rule does not judge it
        found[kept] = diagnose(open_sample(clip), None, ref)
    assert "colourless" not in found[1.0].types(), found[1.0].faults
    assert "colourless" in found[0.2].types(), found[0.2].faults
    assert "colourless" not in found[0.0].types()  # all colour gone: monochrome, as an IR mode gives it
