"""The embedded default as an operator runs it: `camgrid serve` (its media node a child process)
and `camgrid sim --stream FILE` (a camera sending real footage), each its own process. A user
logs in, asks the API for a channel's live video, plays the WebSocket fMP4 and decodes it with
PyAV. Then the media node is killed: the platform restarts it and the next request plays again."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import av
import pytest
import websockets

from camgrid.sim.devices import generate
from tests.signaling.test_sipp import camgrid, free_port

PLATFORM_ID = "34020000002000000001"
FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage" / "road-car-detection.mp4"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def db_url(tmp_path):
    """The store is not what this tests: SQLite only."""
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


def call(port, path, token=None, body=None, method=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method or ("POST" if body is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, json.dumps(body).encode() if body is not None else None, timeout=30) as resp:
        return json.loads(resp.read())


def start(args, ready, env=None, timeout=60):
    proc = subprocess.Popen([sys.executable, "-m", "camgrid", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if ready in line or proc.poll() is not None:
            break
    assert proc.poll() is None and ready in lines[-1], "".join(lines)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def play(ws_url, seconds):
    inits, chunks = [], []
    async with websockets.connect(ws_url, max_size=None) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosedOK):
                break
            (inits if isinstance(msg, str) else chunks).append(msg)
    frames = []
    with av.open(io.BytesIO(b"".join(chunks))) as container:
        frames = [(f.width, f.height) for f in container.decode(video=0)]
    return [json.loads(i) for i in inits], frames


def wait_channel(http, token, device_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = call(http, f"/api/v1/channels?device_id={device_id}", token)["items"]
        if items:
            return items[0]["id"]
        time.sleep(0.3)
    raise AssertionError("the camera's catalog never arrived")


def test_serve_and_sim_processes_show_live_video(tmp_path, db_url):
    spec = generate(1, 1, seed="e2e-live", mix=False)[0]
    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--database-url", db_url]
    r = camgrid("device", "add", *common, "--id", spec.id, "--password-stdin", stdin=spec.password + "\n")
    assert r.returncode == 0, r.stderr
    r = camgrid("admin", "create-user", *common, "--username", "ops", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    http, sip = free_port(), free_port()
    env = dict(os.environ, CAMGRID__MEDIA__HTTP_PORT="0", CAMGRID__MEDIA__RTP_PORTS="[0, 0]", CAMGRID__MEDIA__HOST="127.0.0.1")
    serve = start(["serve", *common, "--http-port", str(http), "--sip-port", str(sip), "--sip-id", PLATFORM_ID,
                   "--sip-host", "127.0.0.1"], "camgrid serving", env=env)
    stream = ["--stream", str(FOOTAGE), "--cache-dir", str(tmp_path / "cache")] if FOOTAGE.is_file() else []
    sim = start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "1", "--seed", "e2e-live",
                 "--keepalive", "5", *stream], "sim: 1 devices")
    try:
        token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
        channel = wait_channel(http, token, spec.id)
        live = call(http, f"/api/v1/channels/{channel}/live", token, body={"wait_s": 10})
        assert live["state"] == "playing", live
        inits, frames = asyncio.run(play(live["ws_url"], 2.0))
        expected = (768, 432) if stream else (320, 240)
        assert inits[0]["codec"] == "h264" and (inits[0]["width"], inits[0]["height"]) == expected
        assert len(frames) >= 10 and set(frames) == {expected}
        running = call(http, "/api/v1/live", token)["items"]
        assert [s["session_id"] for s in running] == [live["session_id"]]

        # Kill the media node: the stream is gone with a reason, the node comes back, video plays again.
        node_pid = int(subprocess.run(["pgrep", "-f", "camgrid media .*--node-id embedded", "-P", str(serve.pid)],
                                      capture_output=True, text=True).stdout.split()[0])
        os.kill(node_pid, signal.SIGKILL)
        deadline = time.time() + 20
        while time.time() < deadline and call(http, "/api/v1/live", token)["items"]:
            time.sleep(0.5)
        assert call(http, "/api/v1/live", token)["items"] == []
        deadline = time.time() + 15  # events are written to the store in batches
        while not (events := call(http, "/api/v1/events?kind=media.stream_ended", token)["items"]) and time.time() < deadline:
            time.sleep(0.5)
        assert events, "no media.stream_ended event"
        reason = events[0]["data"]["reason"]
        assert "no longer has the stream" in reason or "media node unreachable" in reason, reason
        deadline = time.time() + 20
        while True:
            try:
                live = call(http, f"/api/v1/channels/{channel}/live", token, body={"wait_s": 10})
                break
            except urllib.error.HTTPError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        assert live["state"] == "playing", live
        _, frames = asyncio.run(play(live["ws_url"], 1.0))
        assert frames

        # Record it, see the timeline, play the recording back.
        started = datetime.now(timezone.utc)
        plan = call(http, f"/api/v1/channels/{channel}/record-plan", token, body={"mode": "continuous"}, method="PUT")
        assert plan["mode"] == "continuous"
        deadline = time.time() + 30
        window = {"from": (started - timedelta(minutes=1)).isoformat(), "to": (started + timedelta(minutes=5)).isoformat()}
        while time.time() < deadline:
            spans = call(http, f"/api/v1/channels/{channel}/recordings?{urlencode(window)}", token)
            if spans["covered_s"] >= 3:
                break
            time.sleep(1)
        assert spans["covered_s"] >= 3 and spans["spans"], spans
        back = call(http, f"/api/v1/channels/{channel}/playback", token, body={"from": spans["spans"][0]["from"], "speed": 4})
        inits, frames = asyncio.run(play(back["ws_url"], 2.0))
        assert inits[0]["type"] == "init" and set(frames) == {expected} and len(frames) >= 10
        call(http, f"/api/v1/channels/{channel}/record-plan", token, body={"mode": "off"}, method="PUT")

        # Export what was recorded; the bundle verifies with the platform's key.
        span = spans["spans"][0]
        job = call(http, f"/api/v1/channels/{channel}/exports", token,
                   body={"from": span["from"], "to": span["to"], "reason": "e2e: incident 42 at the gate"})
        deadline = time.time() + 30
        while (status := call(http, f"/api/v1/exports/{job['export_id']}", token))["state"] == "running" and time.time() < deadline:
            time.sleep(0.3)
        assert status["state"] == "done", status
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        for f in status["files"]:
            with urllib.request.urlopen(f["url"], timeout=30) as resp:
                (bundle / f["name"]).write_bytes(resp.read())
        verify = camgrid("export", "verify", str(bundle), "--data-dir", str(data))
        assert verify.returncode == 0 and "signature is valid" in verify.stdout, verify.stdout + verify.stderr
    finally:
        stop(sim)
        stop(serve)
    assert serve.returncode == 0 or serve.returncode == -signal.SIGINT
