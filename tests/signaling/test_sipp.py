"""SIPp as a real device against `camgrid serve`: digest REGISTER, keepalives and a paged
Catalog answer, over UDP and TCP. Needs the sipp binary (Debian package sip-tester)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SIPP = shutil.which("sipp")
HERE = Path(__file__).parent / "sipp"
PLATFORM_ID = "34020000002000000001"
DEVICE_ID = "34020000001320000077"
CHANNELS = ("34020000001310000771", "34020000001310000772")
SECRET = "sipp-device-secret-77"

pytestmark = pytest.mark.skipif(
    SIPP is None and not os.environ.get("CI"), reason="sipp not installed (apt-get install sip-tester)"
)


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def camgrid(*args, stdin=None, **kw):
    return subprocess.run([sys.executable, "-m", "camgrid", *args], input=stdin, capture_output=True, text=True, timeout=60, **kw)


def api(port, path, token=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def served(tmp_path, db_url):
    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--database-url", db_url]
    r = camgrid("device", "add", *common, "--id", DEVICE_ID, "--password-stdin", "--name", "sipp", stdin=SECRET + "\n")
    assert r.returncode == 0, r.stderr
    r = camgrid("admin", "create-user", *common, "--username", "ops", "--role", "admin", "--password-stdin",
                stdin="correct-horse-battery-9\n")
    assert r.returncode == 0, r.stderr
    for attempt in range(3):
        # A port found free can be taken before serve binds it (another test's or program's
        # socket): serve then says "... is already in use" and another pair is tried.
        http_port, sip_port = free_port(), free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "camgrid", "serve", *common, "--http-port", str(http_port), "--sip-port",
             str(sip_port), "--sip-id", PLATFORM_ID, "--sip-host", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "camgrid serving" in line or proc.poll() is not None:
                break
        if proc.poll() is None or attempt == 2 or "is already in use" not in "".join(lines):
            break
    assert proc.poll() is None, "".join(lines)
    try:
        yield http_port, sip_port
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_device_registers_keeps_alive_and_answers_catalog(served, transport, tmp_path):
    assert SIPP, "sipp is required in CI"
    http_port, sip_port = served
    cmd = [SIPP, f"127.0.0.1:{sip_port}", "-sf", str(HERE / "device.xml"), "-oocsf", str(HERE / "device-ooc.xml"),
           "-m", "1", "-s", DEVICE_ID, "-au", DEVICE_ID, "-ap", SECRET, "-t", transport,
           "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM)),
           "-set", "platform", PLATFORM_ID, "-set", "realm", PLATFORM_ID[:10], "-set", "device", DEVICE_ID,
           "-set", "chan1", CHANNELS[0], "-set", "chan2", CHANNELS[1],
           "-timeout", "40", "-timeout_error", "-nostdin", "-trace_err", "-error_file", str(tmp_path / "sipp.err")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    err = (tmp_path / "sipp.err").read_text(errors="replace") if (tmp_path / "sipp.err").exists() else ""
    assert result.returncode == 0, f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{err[-3000:]}"

    token = api(http_port, "/api/v1/auth/login", body={"username": "ops", "password": "correct-horse-battery-9"})["access_token"]
    devices = {d["id"]: d for d in api(http_port, "/api/v1/devices", token)["items"]}
    assert devices[DEVICE_ID]["manufacturer"] == "SIPp"
    deadline = time.time() + 10
    chans = {}
    while time.time() < deadline:
        chans = {c["id"]: c for c in api(http_port, f"/api/v1/channels?device_id={DEVICE_ID}", token)["items"]}
        if set(chans) == set(CHANNELS):
            break
        time.sleep(0.3)
    assert set(chans) == set(CHANNELS)
    assert chans[CHANNELS[0]]["name"] == "sipp gate camera"
    assert chans[CHANNELS[1]]["status"] == "offline"  # Status OFF in the catalog
