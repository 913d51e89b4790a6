"""`camgrid vqd diagnose` end to end, as an operator or a script runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

import vqd_scenes as vs

CAMGRID = Path(sys.executable).parent / "camgrid"


def camgrid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CAMGRID), "vqd", "diagnose", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vqd-cli")
    scene = vs.Scene(seed=4)
    out = {
        "clean": vs.clip(d / "clean.mp4", scene, seconds=6.0),
        "moved": vs.clip(d / "moved.mp4", scene, seconds=6.0, view=lambda t: (40.0, 24.0) if t > 1.0 else (0.0, 0.0)),
        "black": vs.clip(d / "black.mp4", scene, lambda img, t: img * 0.0, seconds=6.0),
        "ref": vs.reference_png(d / "ref.png", scene),
    }
    out["text"] = d / "notes.mp4"
    out["text"].write_text("this is not a video\n")
    out["empty"] = d / "empty.mp4"
    out["empty"].write_bytes(b"")
    out["noframes"] = d / "noframes.mkv"  # a video track, no frame in it
    with av.open(str(out["noframes"]), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    return out


def test_json_output_is_the_documented_shape(clips):
    r = camgrid(str(clips["clean"]), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["faults"] == [] and out["resolution"] == [vs.W, vs.H] and out["hd"] is False
    assert out["codec"] == "h264" and out["frames_analysed"] > 0 and out["duration_s"] > 4


def test_a_fault_is_listed_with_score_and_severity(clips):
    out = json.loads(camgrid(str(clips["black"]), "--json").stdout)
    assert out["faults"][0]["type"] == "black_screen"
    assert set(out["faults"][0]) >= {"type", "score", "severity"} and out["faults"][0]["severity"] == "critical"


def test_readable_summary_without_json(clips):
    r = camgrid(str(clips["black"]))
    assert r.returncode == 0 and "black_screen" in r.stdout and "critical" in r.stdout


def test_reference_enables_scene_change(clips):
    moved = json.loads(camgrid(str(clips["moved"]), "--json", "--reference", str(clips["ref"])).stdout)
    assert "scene_change" in [f["type"] for f in moved["faults"]]  # without a reference: test_vqd_detectors
    clean = json.loads(camgrid(str(clips["clean"]), "--json", "--reference", str(clips["ref"])).stdout)
    assert clean["faults"] == []


def test_unreadable_input_is_a_clear_error(clips, tmp_path):
    for path in (clips["text"], tmp_path / "missing.mp4"):
        r = camgrid(str(path), "--json")
        assert r.returncode != 0 and r.stdout == ""
        assert str(path) in r.stderr and "error:" in r.stderr
    r = camgrid(str(clips["clean"]), "--reference", str(clips["text"]))
    assert r.returncode != 0 and "reference" not in r.stdout and "error:" in r.stderr


@pytest.mark.parametrize("name", ["empty", "noframes"])
def test_input_without_decodable_video_is_signal_loss(clips, name):
    r = camgrid(str(clips[name]), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [f["type"] for f in out["faults"]] == ["signal_loss"] and out["faults"][0]["severity"] == "critical"
    assert out["frames_analysed"] == 0


def test_thresholds_file_overrides_defaults(clips, tmp_path):
    th = tmp_path / "th.yaml"
    th.write_text("disabled: [black_screen]\n")
    out = json.loads(camgrid(str(clips["black"]), "--json", "--thresholds", str(th)).stdout)
    assert "black_screen" not in [f["type"] for f in out["faults"]]
    th.write_text("no_such_knob: 1\n")
    r = camgrid(str(clips["black"]), "--thresholds", str(th))
    assert r.returncode == 2 and "no_such_knob" in r.stderr
