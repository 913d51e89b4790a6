"""`make demo`: the platform on its embedded default plus a simulator, each its own process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from camgrid.config import load_settings
from camgrid.registry.devices import DeviceExists, add_device
from camgrid.sim.devices import generate
from camgrid.store.engine import open_store


def _seed(data_dir: Path) -> str:
    """The simulator's secret seed: random per data dir, readable only by its owner."""
    path = data_dir / "demo-sim-seed"
    if path.exists():
        return path.read_text().strip()
    seed = secrets.token_hex(16)
    path.write_text(seed)
    path.chmod(0o600)
    return seed


def provision(data_dir: Path, devices: int, channels: int) -> tuple[str, str]:
    """Add the simulated devices to the registry (each with its own secret); returns (platform id, seed)."""
    settings = load_settings(data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    seed = _seed(data_dir)
    engine = open_store(settings.database_url)
    added = 0
    for spec in generate(devices, channels, seed=seed):
        try:
            add_device(engine, spec.id, spec.password, settings.sip.realm, name=spec.name)
            added += 1
        except DeviceExists:
            pass
    engine.dispose()
    if added:
        print(f"demo: provisioned {added} simulated devices, each with its own secret", flush=True)
    return settings.sip.id, seed


FOOTAGE_ENV = "CAMGRID_DEMO_FOOTAGE"
FOOTAGE_NAME = "road-car-detection.mp4"


def demo_footage() -> Path | None:
    """Real footage for the simulated cameras: $CAMGRID_DEMO_FOOTAGE, else the project's shared
    footage folder next to the checkout; None means the cameras send a generated test pattern."""
    if os.environ.get(FOOTAGE_ENV):
        return Path(os.environ[FOOTAGE_ENV])
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "footage" / FOOTAGE_NAME
        if candidate.is_file():
            return candidate
    return None


def run_demo(data_dir: Path, *, devices: int, channels: int, http_port: int, sip_port: int, audio: str = "auto") -> None:
    platform_id, seed = provision(data_dir, devices, channels)
    exe = [sys.executable, "-m", "camgrid"]
    serve = subprocess.Popen([*exe, "serve", "--data-dir", str(data_dir), "--http-port", str(http_port),
                              "--sip-port", str(sip_port), "--sip-host", "127.0.0.1"])
    procs = [serve]
    try:
        time.sleep(2.0)
        if serve.poll() is not None:
            print("demo: the platform did not start (is the port in use? try `camgrid demo --http-port 8081 --sip-port 5070`)",
                  file=sys.stderr)
            raise SystemExit(1)
        footage = demo_footage()
        video = ["--stream", str(footage), "--cache-dir", str(data_dir / "sim-cache")] if footage else []
        sim = subprocess.Popen([*exe, "sim", "--server", f"127.0.0.1:{sip_port}", "--platform-id", platform_id,
                                "--devices", str(devices), "--channels", str(channels), "--seed", seed,
                                "--keepalive", "30", "--spread", "5", "--audio", audio, *video])
        procs.append(sim)
        print(
            f"\ndemo: console and API at http://127.0.0.1:{http_port}/  (OpenAPI: /api/v1/docs)\n"
            "demo: log in as 'admin' with the one-time password printed above on the first run,\n"
            f"      or create a user: camgrid admin create-user --data-dir {data_dir} --username me --role admin --password-stdin\n"
            "demo: Ctrl-C stops both processes.\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
