"""motion.freeze on pictures that cannot show a change: a dark room before the lights go on
(issue 5: a false freeze on a VQD-Bench lights-on clip, seed 3). x264 keeps the few grey levels
of such a picture identical from key frame to key frame, which is no evidence of a freeze."""

from __future__ import annotations

import numpy as np
import pytest
import vqd_scenes as vs

from camgrid.ops.vqd import motion
from camgrid.ops.vqd.diagnose import diagnose
from camgrid.ops.vqd.frames import open_sample, picture_from_rgb
from camgrid.ops.vqd.thresholds import Thresholds


@pytest.fixture(scope="module")
def scene() -> vs.Scene:
    return vs.Scene(seed=11)


def pictures(frames: list[np.ndarray], step: float = 1.0) -> list:
    return [picture_from_rgb(np.clip(f, 0, 255).astype(np.uint8), t=step * i) for i, f in enumerate(frames)]


def test_identical_featureless_pictures_are_no_freeze_run(scene):
    dark = np.full((vs.H, vs.W, 3), 27.0)  # a dark room: one grey level, as the encoder left it
    lit = [scene.frame(float(t)) for t in range(6, 10)]
    pics = pictures([dark] * 6 + lit)
    assert not motion.featured(pics[0], Thresholds()) and motion.featured(pics[-1], Thresholds())
    assert motion.freeze(pics, Thresholds()) == []


def test_a_frozen_picture_after_the_dark_is_still_a_freeze(scene):
    dark = np.full((vs.H, vs.W, 3), 27.0)
    stuck = scene.frame(6.0)
    found = motion.freeze(pictures([dark] * 3 + [stuck] * 6), Thresholds())
    assert [f["type"] for f in found] == ["freeze"] and found[0]["frozen_s"] == pytest.approx(5.0)


def test_lights_switched_on_after_seconds_of_dark_are_not_a_freeze(tmp_path, scene):
    """Real x264: 7 s of the scene at 12 % of its light (as VQD-Bench's lights-on clips), then
    lit. Seven key frames 1 s apart of the dark part decode to the same pixels."""
    dark = vs.encode(tmp_path / "dark-then-lit.mp4",
                     (scene.frame(i / vs.FPS, noise=0.0) * (0.12 if i / vs.FPS < 7.0 else 1.0)
                      for i in range(int(11.0 * vs.FPS))), crf=28)
    sample = open_sample(str(dark))
    still = [motion.still(a, b, Thresholds()) for a, b in zip(sample.spaced, sample.spaced[1:]) if a.t < 6.0]
    assert any(still), "the dark key frames should decode alike, else this test shows nothing"
    assert "freeze" not in diagnose(sample).types()
