"""Time to first frame of live video on loopback, through the API as a browser gets it.

    .venv/bin/python bench/media_ttff.py [--trials 10] [--transport udp] [--unwatched-s 1.5] [--footage FILE]

Starts the platform (embedded media node as its own process, as `camgrid serve` runs it) and
`camgrid sim` streaming FILE (default: the shared road footage, else a test pattern) as a
separate process, logs in, and then for each trial:

- cold: POST /channels/{id}/live with wait_s=0 (the INVITE is sent; the answer comes back at
  once), open the WebSocket, and time until the first fragment that a decoder can show has
  arrived (the init segment and a key frame) — then DELETE the stream so the next trial is cold;
- warm: a second viewer joining a running stream (the node sends the cached GOP at once);
- unwatched: both viewers gone, the stream runs on for --unwatched-s (1.5 s: more than a GOP)
  with nobody watching, then a viewer joins (the node places and muxes the GOP it kept unbuilt).

A frame counts as shown when PyAV decodes it from what arrived. Prints median, p90 and max.
The target (issue 3): ≤ 1 s on loopback with a 1 s GOP.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import av
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from camgrid.sim.devices import generate  # noqa: E402

PLATFORM_ID = "34020000002000000001"
PASSWORD = "ttff-Correct-Horse-42"
DEFAULT_FOOTAGE = ROOT.parent / "shared" / "footage" / "road-car-detection.mp4"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def camgrid(*args: str, stdin: str | None = None) -> None:
    r = subprocess.run([sys.executable, "-m", "camgrid", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise SystemExit(f"camgrid {args[0]} failed: {r.stderr}")


def start(args: list[str], ready: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "camgrid", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if ready in line:
            return proc
        if proc.poll() is not None:
            raise SystemExit(f"{args[0]} exited: {line}")
    raise SystemExit(f"{args[0]} did not start")


def call(port: int, path: str, token: str | None = None, body: dict | None = None, method: str | None = None) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method or ("POST" if body is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, json.dumps(body).encode() if body is not None else None, timeout=30) as resp:
        return json.loads(resp.read())


async def first_shown(ws_url: str, t0: float) -> float:
    """Seconds from t0 until what arrived on the WebSocket decodes to a picture."""
    data = b""
    async with websockets.connect(ws_url, max_size=None) as ws:
        while True:
            msg = await asyncio.wait_for(ws.recv(), 15)
            if isinstance(msg, str):
                continue
            data += msg
            try:
                with av.open(io.BytesIO(data)) as container:
                    if next(container.decode(video=0), None) is not None:
                        return time.monotonic() - t0
            except (av.error.FFmpegError, StopIteration):
                continue


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return f"{name}: median {statistics.median(values) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms (n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--transport", default="udp", choices=["udp", "tcp-passive", "tcp-active"])
    ap.add_argument("--unwatched-s", type=float, default=1.5,
                    help="after the warm viewer, wait this long with nobody watching and join again (0 skips)")
    ap.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE if DEFAULT_FOOTAGE.is_file() else None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="camgrid-ttff-") as tmp:
        data = Path(tmp) / "data"
        spec = generate(1, 1, seed="bench-ttff", mix=False)[0]
        common = ["--data-dir", str(data)]
        camgrid("device", "add", *common, "--id", spec.id, "--password-stdin", stdin=spec.password + "\n")
        camgrid("admin", "create-user", *common, "--username", "bench", "--role", "operator", "--password-stdin",
                stdin=PASSWORD + "\n")
        http, sip = free_port(), free_port()
        env = dict(os.environ, CAMGRID__MEDIA__HTTP_PORT="0", CAMGRID__MEDIA__TRANSPORT=args.transport)
        serve = start(["serve", *common, "--http-port", str(http), "--sip-port", str(sip), "--sip-id", PLATFORM_ID,
                       "--sip-host", "127.0.0.1"], "camgrid serving", env=env)
        video = ["--stream", str(args.footage), "--cache-dir", str(Path(tmp) / "cache")] if args.footage else []
        sim = start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "1",
                     "--seed", "bench-ttff", *video], "sim: 1 devices")
        try:
            token = call(http, "/api/v1/auth/login", body={"username": "bench", "password": PASSWORD})["access_token"]
            channel = None
            for _ in range(100):
                items = call(http, f"/api/v1/channels?device_id={spec.id}", token)["items"]
                if items:
                    channel = items[0]["id"]
                    break
                time.sleep(0.2)
            if channel is None:
                raise SystemExit("the simulated camera's catalog never arrived")
            cold, warm, unwatched = [], [], []
            for _ in range(args.trials):
                t0 = time.monotonic()
                live = call(http, f"/api/v1/channels/{channel}/live", token, body={"wait_s": 0})
                cold.append(asyncio.run(first_shown(live["ws_url"], t0)))
                t1 = time.monotonic()
                again = call(http, f"/api/v1/channels/{channel}/live", token, body={"wait_s": 0})
                warm.append(asyncio.run(first_shown(again["ws_url"], t1)))
                if args.unwatched_s > 0:  # both viewers left: the stream runs on with nobody watching
                    time.sleep(args.unwatched_s)
                    t2 = time.monotonic()
                    later = call(http, f"/api/v1/channels/{channel}/live", token, body={"wait_s": 0})
                    unwatched.append(asyncio.run(first_shown(later["ws_url"], t2)))
                call(http, f"/api/v1/live/{live['session_id']}", token, method="DELETE")
                time.sleep(0.3)
            source = args.footage.name if args.footage else "test pattern 320x240"
            print(f"time to first frame, {args.transport}, {source}, 1 s GOP, loopback:")
            print("  " + summary("cold (INVITE on request)", cold))
            print("  " + summary("warm (joining a running stream)", warm))
            if unwatched:
                print("  " + summary(f"unwatched (joining a stream nobody watched for {args.unwatched_s:g} s)", unwatched))
        finally:
            for proc in (sim, serve):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
