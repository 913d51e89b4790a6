"""Each detector fires on its fault and stays quiet on clean video and on its hard negative.

Clips are synthetic street scenes (vqd_scenes.py) encoded with x264, decoded with PyAV: the
same path as a camera's stream. Faults start at 1.5 s of 6 s clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camgrid.ops.vqd.diagnose import diagnose
from camgrid.ops.vqd.frames import load_image, open_sample
from camgrid.ops.vqd.reference import make_reference
from camgrid.ops.vqd.thresholds import Thresholds

import vqd_scenes as vs

FOOTAGE = Path(__file__).resolve().parents[4] / "shared" / "footage"


@pytest.fixture(scope="module")
def scene() -> vs.Scene:
    return vs.Scene(seed=7)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vqd")


@pytest.fixture(scope="module")
def ref(scene, workdir):
    return make_reference([load_image(vs.reference_png(workdir / "ref.png", scene))])


def run(workdir: Path, name: str, scene, fault=None, *, ref=None, ptz=(), th=None, **kw) -> dict:
    path = vs.clip(workdir / f"{name}.mp4", scene, fault, **kw)
    d = diagnose(open_sample(path), th or Thresholds(), ref, ptz)
    out = d.to_dict()
    for f in out["faults"]:
        assert 0.0 <= f["score"] <= 1.0 and f["severity"] in ("minor", "major", "critical")
    return out


def types(result: dict) -> set[str]:
    return {f["type"] for f in result["faults"]}


def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    r = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in (0, 1):
        pad = [(r, r) if a == axis else (0, 0) for a in range(3)]
        p = np.pad(img, pad, mode="edge")
        img = sum(w * p.take(range(i, i + img.shape[axis]), axis=axis) for i, w in enumerate(k))
    return img


def grey(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


# -- clean video and hard negatives -------------------------------------------------------------
def test_clean_scene_is_normal_with_and_without_reference(workdir, scene, ref):
    path = vs.clip(workdir / "clean.mp4", scene)
    sample = open_sample(path)
    assert diagnose(sample).faults == []
    d = diagnose(sample, Thresholds(), ref)
    assert d.faults == [], d.faults
    assert d.resolution == (vs.W, vs.H) and not d.hd and d.codec == "h264" and d.frames_analysed > 10


def test_static_scene_with_sensor_noise_is_not_frozen(workdir):
    still = vs.Scene(seed=11)
    still.cars = []  # a corridor: nothing moves, only the sensor's noise
    assert "freeze" not in types(run(workdir, "corridor", still, noise=2.5, seconds=8.0))  # as long as the freeze test


def test_night_scene_with_lamps_is_not_too_dark(workdir, scene, ref):
    yy, xx = np.mgrid[0:vs.H, 0:vs.W]
    lamps = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 60.0) for x, y in ((80, 60), (300, 40), (420, 90)))

    def night(img, t):
        return img * 0.2 + 255 * lamps[:, :, None]

    assert types(run(workdir, "night", scene, night, onset=0.0, ref=ref)) == set()


def test_greyscale_camera_is_monochrome_not_colourless(workdir, scene, ref):
    out = run(workdir, "mono", scene, lambda img, t: np.repeat(grey(img)[:, :, None], 3, axis=2), onset=0.0, ref=ref)
    assert types(out) == set() and out["notes"]["monochrome"] is True
    expected = Thresholds(colour_expected=True)
    path = workdir / "mono.mp4"
    assert "colourless" in types(diagnose(open_sample(path), expected).to_dict())


def test_rain_is_not_noise(workdir, scene):
    rng = np.random.default_rng(3)
    drops = np.stack([rng.uniform(0, vs.H, 400), rng.uniform(0, vs.W, 400)], 1)

    def rain(img, t):
        img = img.copy()
        ys = ((drops[:, 0] + t * 300) % vs.H).astype(int)
        xs = drops[:, 1].astype(int)
        for dy in range(6):
            img[np.clip(ys + dy, 0, vs.H - 1), xs] = 200
        return img

    assert "noise" not in types(run(workdir, "rain", scene, rain, onset=0.0))


def test_a_lorry_filling_the_view_and_lights_switched_on_are_normal(workdir, scene, ref):
    rng = np.random.default_rng(4)
    side = np.clip(180 + 40 * rng.standard_normal((vs.H, 520, 1)), 0, 255) * np.array([1.0, 0.3, 0.3])
    side[40:60], side[150:160] = 40, 60  # panels and a stripe: a lorry has detail

    def lorry(img, t):
        x = int(-520 + (t - 1.5) / 1.5 * (vs.W + 520))  # crosses the view between 1.5 and 3 s
        img = img.copy()
        a, b = max(0, x), min(vs.W, x + 520)
        if b > a:
            img[:, a:b] = side[:, a - x:b - x]
        return img

    assert types(run(workdir, "lorry", scene, lorry, ref=ref)) == set()
    assert types(run(workdir, "lights", scene, lambda img, t: img * 0.12 if t < 2.0 else img, onset=0.0, ref=ref)) == set()


def test_smooth_pan_is_not_jitter_and_a_responding_ptz_is_fine(workdir, scene):
    out = run(workdir, "pan", scene, view=lambda t: (min(30.0, max(0.0, (t - 2.4) * 10)), 0.0), ptz=[2.0])
    assert "jitter" not in types(out) and "ptz_unresponsive" not in types(out)


# -- faults -------------------------------------------------------------------------------------
def test_black_screen(workdir, scene):
    assert types(run(workdir, "black", scene, lambda img, t: np.zeros_like(img))) == {"black_screen"}


def test_blue_screen_is_solid_colour(workdir, scene):
    def blue(img, t):
        out = np.empty_like(img)
        out[:] = (16, 40, 200)
        return out

    out = run(workdir, "blue", scene, blue)
    assert types(out) == {"solid_colour"} and out["faults"][0]["colour"] == "blue"
    assert out["faults"][0]["severity"] == "critical"


def test_freeze_also_with_a_ticking_clock(workdir, scene):
    frozen = {}

    def freeze(img, t, clock=False):
        img = frozen.setdefault(clock, img).copy()
        if clock:  # an on-screen clock keeps ticking over the frozen picture
            img[4:14, 4:60] = 20
            digit = int(t) % 10
            img[5:13, 8 + 5 * digit:12 + 5 * digit] = 235
        return img

    # 8 s: key frames about 1 s apart must show the same picture for 3 s (freeze_min_s)
    assert "freeze" in types(run(workdir, "freeze", scene, freeze, onset=1.0, noise=0.0, seconds=8.0))
    assert "freeze" in types(run(workdir, "freeze-clock", scene, lambda i, t: freeze(i, t, True), onset=1.0, noise=0.0,
                                 seconds=8.0))


def test_blur(workdir, scene, ref):
    assert "blur" in types(run(workdir, "blur", scene, lambda img, t: gaussian(img, 4.0), ref=ref))


def test_too_dark_and_too_bright(workdir, scene):
    assert "too_dark" in types(run(workdir, "dark", scene, lambda img, t: img * 0.2))
    assert "too_bright" in types(run(workdir, "bright", scene, lambda img, t: img * 2.6 + 30))


def test_low_contrast(workdir, scene, ref):
    assert "low_contrast" in types(run(workdir, "fog", scene, lambda img, t: 165 + (img - img.mean()) * 0.15, ref=ref))


def test_colour_cast(workdir, scene):
    assert "colour_cast" in types(run(workdir, "cast", scene, lambda img, t: img * np.array([0.7, 0.95, 1.45])))


def test_colour_loss_against_the_reference(workdir, scene, ref):
    def pale(img, t):
        g = grey(img)[:, :, None]
        return g + (img - g) * 0.2

    assert "colourless" in types(run(workdir, "pale", scene, pale, ref=ref))


def test_noise(workdir, scene):
    rng = np.random.default_rng(5)
    out = run(workdir, "noise", scene, lambda img, t: img + rng.normal(0, 18, img.shape[:2])[:, :, None])
    assert "noise" in types(out)


def test_rolling_stripes(workdir, scene):
    rows = np.arange(vs.H, dtype=np.float32)[:, None, None]
    assert "stripe" in types(run(workdir, "stripe", scene, lambda img, t: img + 14 * np.sin(rows / 5.0 + 6 * t)))


def test_cover_of_most_of_the_view(workdir, scene, ref):
    cover = np.zeros((vs.H, vs.W, 1), np.float32)
    cover[:, : int(vs.W * 0.85)] = 1.0
    yy = np.linspace(0, 1, vs.H)[:, None, None]

    def covered(img, t):
        return img * (1 - cover) + (35 + 20 * yy) * cover

    for reference in (ref, None):
        out = run(workdir, "cover", scene, covered, ref=reference)
        assert types(out) == {"occlusion"}, out
        assert out["faults"][0]["severity"] == "critical"


def test_camera_moved_is_scene_change_only_with_a_reference(workdir, scene, ref):
    def moved(t):
        return (36.0, 20.0) if t >= 1.5 else (0.0, 0.0)

    assert "scene_change" in types(run(workdir, "moved", scene, view=moved, ref=ref))
    assert "scene_change" not in types(run(workdir, "moved-noref", scene, view=moved))


def test_jitter(workdir, scene):
    rng = np.random.default_rng(9)
    out = run(workdir, "shake", scene, view=lambda t: tuple(rng.normal(0, 5, 2)) if t > 1.5 else (0.0, 0.0))
    assert "jitter" in types(out)


def test_ptz_command_without_motion(workdir, scene):
    out = run(workdir, "ptz-stuck", scene, ptz=[2.0])
    assert types(out) == {"ptz_unresponsive"} and out["faults"][0]["command_at_s"] == 2.0


@pytest.mark.skipif(not FOOTAGE.is_dir(), reason="no development footage in ../shared/footage (optional)")
def test_real_footage_shows_no_gross_fault():
    for path in sorted(FOOTAGE.glob("*.*")):
        if path.suffix in (".mp4", ".avi"):
            found = {f["type"] for f in diagnose(open_sample(path)).faults}
            assert not found & {"signal_loss", "black_screen", "solid_colour", "freeze", "occlusion"}, (path, found)
