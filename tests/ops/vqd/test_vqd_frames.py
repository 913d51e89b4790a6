"""Sampling: few pictures, chosen cheaply, scaled early; any input FFmpeg reads."""

from __future__ import annotations

import numpy as np
import pytest

from camgrid.ops.vqd.diagnose import diagnose
from camgrid.ops.vqd.frames import ANALYSIS_WIDTH, SourceError, open_sample

import vqd_scenes as vs


def test_spaced_key_frames_and_a_final_burst_at_analysis_size(tmp_path):
    scene = vs.Scene(seed=2, w=1280, h=720, margin=20)
    path = vs.encode(tmp_path / "hd.mp4", (scene.frame(i / vs.FPS, noise=0) for i in range(int(6 * vs.FPS))), gop=6)
    s = open_sample(path, burst_frames=10, max_spaced=6)
    assert (s.width, s.height, s.codec) == (1280, 720, "h264")
    assert len(s.spaced) == 6 and len(s.burst) == 10 and s.burst[0] is s.spaced[-1]
    assert s.spaced[0].t == 0.0 and s.spaced[-1].t > 4.0  # spread over the window, burst at its end
    steps = np.diff([p.t for p in s.burst])
    assert np.allclose(steps, 1 / vs.FPS, atol=1e-3)  # consecutive frames
    assert s.spaced[-1].y.shape == (270, ANALYSIS_WIDTH) and s.spaced[-1].u.shape == (135, 240)
    assert s.spaced[-1].detail is not None and s.spaced[-1].detail.shape == (270, 480)  # native crop, for noise
    assert diagnose(s).hd is True


def test_long_gop_is_decoded_in_full_and_still_spread(tmp_path):
    scene = vs.Scene(seed=3)
    path = vs.encode(tmp_path / "longgop.mp4", (scene.frame(i / vs.FPS) for i in range(int(8 * vs.FPS))), gop=250)
    s = open_sample(path, burst_frames=8, max_spaced=5)
    assert len(s.spaced) == 5 and len(s.burst) == 8
    assert s.spaced[0].t == 0.0 and s.spaced[-1].t > 6.0


def test_window_limits_what_is_read(tmp_path):
    scene = vs.Scene(seed=3)
    path = vs.encode(tmp_path / "long.mp4", (scene.frame(i / vs.FPS) for i in range(int(10 * vs.FPS))))
    s = open_sample(path, seconds=3.0)
    assert s.duration_s <= 3.0 + 1e-6 and s.pictures[-1].t < 3.0


def test_unreachable_stream_is_a_source_error():
    with pytest.raises(SourceError, match="cannot open"):
        open_sample("rtsp://127.0.0.1:9/nothing", timeout_s=2.0)
