"""The pure parts: measurements never raise on odd pictures and keep their ranges; diagnosis of
arrays from any source; thresholds with overrides per group and channel; references kept as bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from camgrid.ops.vqd import features as fx
from camgrid.ops.vqd import motion
from camgrid.ops.vqd.diagnose import diagnose_pictures
from camgrid.ops.vqd.frames import Picture, picture_from_rgb
from camgrid.ops.vqd.reference import Reference, make_reference
from camgrid.ops.vqd.thresholds import FAULT_TYPES, ThresholdPolicy, Thresholds

shapes = st.tuples(st.integers(0, 40), st.integers(0, 40))
planes = st.one_of(
    arrays(np.uint8, shapes),
    arrays(np.float32, shapes, elements=st.floats(-1e6, 1e6, width=32)),
    arrays(np.int16, shapes),
    st.builds(lambda s, v: np.full(s, v, np.uint8), shapes, st.integers(0, 255)),
)


@settings(max_examples=60, deadline=None)
@given(planes, planes)
def test_features_never_raise_and_stay_in_range(a, b):
    assert fx.edge_width(a) >= 0.0
    assert fx.noise_sigma(a) >= 0.0
    assert all(v >= 0.0 for v in fx.stripe_strength(a))
    share, _ = fx.dominant_fraction(a, 4)
    assert 0.0 <= share <= 1.0
    p = fx.percentiles(a, (2, 50, 98))
    assert p[0] <= p[1] <= p[2]
    dx, dy, q = fx.shift_estimate(a, b)
    assert 0.0 <= q <= 1.0 and np.isfinite(dx) and np.isfinite(dy)
    assert 0.0 <= fx.global_shift(a, b)[2] <= 1.0
    assert -1.0 - 1e-6 <= fx.ncc(a, b) <= 1.0 + 1e-6
    assert fx.texture_map(a).shape == fx.GRID
    assert fx.resize(a, 5, 7).shape == (5, 7)
    assert np.isfinite(fx.local_normalise(a)).all()
    cells = fx.chroma_cells(a, b)
    assert cells.shape == (2, *fx.COLOUR_GRID) and np.isfinite(cells).all()
    assert fx.colour_pattern(cells) >= 0.0 and np.isfinite(fx.colour_gain(cells, fx.chroma_cells(a, a)))
    assert 0 <= motion.regions_in_place(a, b) <= 9


def _pictures(draw_planes, n: int) -> list[Picture]:
    return [Picture(t=float(i), y=p, u=None if i % 2 else p[::2, ::2], v=None if i % 2 else p[::2, ::2])
            for i, p in enumerate(draw_planes[:n])]


@settings(max_examples=40, deadline=None)
@given(st.lists(arrays(np.uint8, st.tuples(st.integers(1, 48), st.integers(1, 64))), min_size=0, max_size=5),
       st.lists(st.floats(-5, 20), max_size=2))
def test_diagnosis_of_any_pictures_gives_valid_findings(ys, ptz):
    pics = _pictures(ys, len(ys))
    d = diagnose_pictures(pics[:3], pics[2:], ptz_commands=ptz).to_dict()
    for f in d["faults"]:
        assert f["type"] in FAULT_TYPES
        assert 0.0 <= f["score"] <= 1.0 and f["severity"] in ("minor", "major", "critical")
    if not ys:
        assert [f["type"] for f in d["faults"]] == ["signal_loss"]


def test_constant_pictures_are_a_screen_fault_not_a_crash():
    flat = [Picture(float(t), np.full((90, 160), 16, np.uint8), np.full((45, 80), 128, np.uint8),
                    np.full((45, 80), 128, np.uint8)) for t in range(6)]
    assert [f["type"] for f in diagnose_pictures(flat, flat[-1:]).faults] == ["black_screen"]


def test_arrays_from_any_source_are_diagnosed(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (180, 320, 3)).astype(np.float32)
    pics = [picture_from_rgb(base + rng.normal(0, 3, base.shape), t=float(t)) for t in range(6)]
    d = diagnose_pictures(pics, pics[-1:])
    assert "freeze" not in d.types() and d.resolution == (320, 180)


def test_policy_layers_defaults_groups_and_channel():
    policy = ThresholdPolicy(groups={"tunnel": {"dark_mean": 30.0, "disabled": ["colour_cast"]},
                                     "ptz": {"ptz_wait_s": 6.0}},
                             channels={"34020000001320000001": {"dark_mean": 20.0}})
    th = policy.for_channel("34020000001320000001", ["tunnel", "ptz"])
    assert th.dark_mean == 20.0 and th.ptz_wait_s == 6.0 and not th.enabled("colour_cast")
    assert policy.for_channel("other", ["tunnel"]).dark_mean == 30.0
    assert policy.for_channel() == Thresholds()
    assert ThresholdPolicy.model_validate_json(policy.model_dump_json()) == policy
    with pytest.raises(ValidationError):
        ThresholdPolicy(channels={"x": {"no_such_knob": 1}}).for_channel("x")
    with pytest.raises(ValidationError):
        Thresholds(persistence=2.0)


def test_reference_ignores_passing_objects_and_round_trips():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 255, (180, 320, 3)).astype(np.float32)
    views = []
    for i in range(5):
        img = base.copy()
        img[:, i * 60:i * 60 + 60] = 30  # something passing, somewhere else each time
        views.append(picture_from_rgb(img, t=float(i)))
    ref = make_reference(views)
    clean = make_reference([picture_from_rgb(base)])
    assert fx.ncc(ref.structure, clean.structure) > 0.95
    again = Reference.from_bytes(ref.to_bytes())
    assert np.array_equal(again.structure, ref.structure) and again.chroma == pytest.approx(ref.chroma)
    assert np.array_equal(again.colour_cells, ref.colour_cells) and ref.colour_pattern > 0.0
    with pytest.raises(ValueError):
        make_reference([])
