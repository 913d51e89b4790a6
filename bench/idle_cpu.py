"""CPU an idle platform spends: `camgrid serve` and its media node with nothing connected.

    .venv/bin/python bench/idle_cpu.py [--seconds 15] [--devices 0] [--rounds 3]

Starts `camgrid serve` on a fresh data directory (with N provisioned devices, none connected),
waits until it serves and 5 s more, then reads the scheduler run time of every thread of the
platform and its child processes (/proc/PID/task/*/schedstat) over the window. Prints ms of CPU
per second, the platform's main process and all together, per round and the median. Linux only.
The SIP benchmark counts this idle CPU into its per-message figures (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sip_bench import PLATFORM_ID, _spawn, _stop, free_udp_tcp_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_time_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def one_round(seconds: float, devices: int) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="idle-cpu-"))
    data = work / "data"
    env = dict(os.environ, CAMGRID__MEDIA__HTTP_PORT="0")
    if devices:
        csv = work / "devices.csv"
        csv.write_text("id,password,name\n" + "".join(
            f"3402000000132{i:07d},Idle-Secret-{i:07d},cam {i}\n" for i in range(devices)))
        subprocess.run([sys.executable, "-m", "camgrid", "device", "import", "--data-dir", str(data), str(csv)],
                       check=True, capture_output=True, cwd=ROOT, env=env)
    log = work / "camgrid.log"
    proc = _spawn([sys.executable, "-m", "camgrid", "serve", "--data-dir", str(data), "--http-host", "127.0.0.1",
                   "--http-port", str(free_udp_tcp_port()), "--sip-host", "127.0.0.1",
                   "--sip-port", str(free_udp_tcp_port()), "--sip-id", PLATFORM_ID], log, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while b"camgrid serving" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"camgrid did not start; see {log}")
            time.sleep(0.2)
        time.sleep(5)
        pids = [proc.pid, *children(proc.pid)]
        before = {pid: run_time_ns(pid) for pid in pids}
        time.sleep(seconds)
        used = {pid: run_time_ns(pid) - before[pid] for pid in pids}
    finally:
        _stop(proc)
    main = used[proc.pid] / seconds / 1e6
    return main, sum(used.values()) / seconds / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--devices", type=int, default=0, help="devices provisioned (none of them connects)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = []
    for i in range(args.rounds):
        main_ms, all_ms = one_round(args.seconds, args.devices)
        rounds.append((main_ms, all_ms))
        print(f"round {i + 1}: platform process {main_ms:.2f} ms/s, with its media node {all_ms:.2f} ms/s", flush=True)
    print(f"median: platform process {statistics.median(r[0] for r in rounds):.2f} ms/s, "
          f"with its media node {statistics.median(r[1] for r in rounds):.2f} ms/s")


if __name__ == "__main__":
    main()
