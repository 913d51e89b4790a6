#!/usr/bin/env python3
"""SIP signaling benchmark: camgrid against Kamailio, side by side, under the same SIPp load.

    python bench/sip_bench.py [--quick]          (also: make bench-sip)

Three measurements (docs/benchmarks.md explains the method and lists the latest figures):

1. keepalive: SIPp sends GB/T 28181 keepalives (MESSAGE, Notify/Keepalive MANSCDP XML, from
   registered devices) at a fixed rate; CPU time (utime+stime of the server and every process
   it forked) per answered keepalive, camgrid vs Kamailio answering 200 with sl_send_reply.
2. register: SIPp registers devices with MD5 digest (REGISTER -> 401 -> REGISTER -> 200) at a
   fixed rate; CPU per completed registration (and per request: two per registration).
   Kamailio checks the digest with pv_www_authenticate against one password, so every device
   in the benchmark has that same password. Each round's devices are new, so every
   registration is a transition to online (events, status write): the target's figure.
   Then "refresh": the same devices register again at once, each a refresh of a live
   registration (a network's steady state), reported beside it, not instead of it.
3. storm: N devices (100k, 10k with --quick) provisioned through `camgrid device import`
   register as fast as the fixed rate allows: time until the health summary shows all online,
   failures, resident memory per registered device.

Phases 1 and 2 alternate between the two servers for several rounds (order swapped every
round) and report medians, because a 2-core machine is noisy: the ratio is the figure to
read, not the absolute microseconds. Results: bench/results/sip-<timestamp>.json and a table.
Every process started here runs on 127.0.0.1, on ports found free at its start (camgrid's SIP, API
and media node ports too, so that it runs beside the test suite), and is stopped on exit, errors included.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SIPP_DIR = BENCH / "sipp"
KAMAILIO_CFG = BENCH / "kamailio" / "kamailio.cfg"
KAMAILIO_REGISTRAR_CFG = BENCH / "kamailio" / "kamailio-registrar.cfg"  # --kamailio-registrar
KAMAILIO_SQLITE_SCHEMA = Path("/usr/share/kamailio/db_sqlite")  # Debian package kamailio-sqlite-modules
RESULTS = BENCH / "results"

HOST = "127.0.0.1"  # everything runs on loopback, never any other address
PLATFORM_ID = "34020000002000000001"
REALM = PLATFORM_ID[:10]
DEVICE_PASSWORD = "Bench-Secret-2718"  # the same for every device (Kamailio can check only one)
ADMIN_USER = "bench"
ADMIN_PASSWORD = "Quiet-Harbor-Lantern-9713"

TARGETS = {"keepalive_ratio": 1.5, "register_ratio": 2.0, "storm_failures": 0, "bytes_per_device": 1536}

PROFILES = {
    # devices per register round, register rate, keepalives per round, keepalive rate, storm size, storm rate
    # storm_rate: a rate the 2-vCPU CI-class VM sustained on 2026-12-01 (1,500/s it did not; docs/benchmarks.md);
    # above what camgrid keeps up with, SIPp's retransmissions multiply the load and memory balloons.
    "full": dict(rounds=3, reg_devices=6000, reg_rate=600, ka_calls=24000, ka_rate=2000,
                 storm_devices=100_000, storm_rate=800),
    "quick": dict(rounds=3, reg_devices=2000, reg_rate=600, ka_calls=8000, ka_rate=2000,
                  storm_devices=10_000, storm_rate=800),
}
SETTLE_S = 5.5  # after each SIPp run, before the CPU sample: lets batched write-back (0.5 s / 5 s) land

STEADY_WAIT_S = 35.0  # after the storm, before the steady-state memory sample

_started: list[subprocess.Popen] = []  # every process this script started, for cleanup


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------
def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group we created for proc, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def _cleanup() -> None:
    for proc in reversed(_started):
        try:
            _stop(proc, 10)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


def _spawn(cmd: list[str], log_path: Path, **kw: Any) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=kw.pop("stdin", subprocess.DEVNULL),
                            start_new_session=True, **kw)
    proc._bench_log = log  # type: ignore[attr-defined]
    _started.append(proc)
    return proc


def free_udp_tcp_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((HOST, port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def sip_ping(port: int, timeout: float = 0.5) -> bool:
    """Send one OPTIONS over UDP and wait for any answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(timeout)
        lport = s.getsockname()[1]
        msg = (f"OPTIONS sip:{PLATFORM_ID}@{HOST}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{lport};rport;branch=z9hG4bK-ping{time.monotonic_ns()}\r\n"
               f"From: <sip:34020000001320999999@{REALM}>;tag=ping\r\nTo: <sip:{PLATFORM_ID}@{REALM}>\r\n"
               f"Call-ID: ping-{time.monotonic_ns()}@{HOST}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               "Content-Length: 0\r\n\r\n").encode()
        try:
            s.sendto(msg, (HOST, port))
            s.recvfrom(65536)
            return True
        except OSError:
            return False


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2:].split()[1])
        children[ppid].append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


TICK = os.sysconf("SC_CLK_TCK")


def cpu_sample(root: int) -> dict[str, float]:
    """CPU seconds of root and all its descendants: scheduler ns (all live threads) and stat ticks."""
    sched_ns = 0
    ticks = 0
    for pid in tree_pids(root):
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (threads included, dead ones too)
            for tid in os.listdir(f"/proc/{pid}/task"):
                sched_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue
    return {"sched_s": sched_ns / 1e9, "stat_s": ticks / TICK}


def cpu_seconds(a: dict[str, float], b: dict[str, float]) -> float:
    """Scheduler time (ns, exact) of live threads; stat ticks (10 ms) are kept as a cross-check."""
    return b["sched_s"] - a["sched_s"]


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(val.split()[0])
    return out


# ---------------------------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------------------------
class Camgrid:
    name = "camgrid"

    def __init__(self, data_dir: Path, log_dir: Path, python: str) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.sip_port = 0
        self.http_port = 0
        self.media_port = 0  # the embedded media node's API (default 8082, where the test suite's nodes may be)
        self.token: str | None = None

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, "-m", "camgrid", *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=self.env())

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CAMGRID__CATALOG__QUERY_ON_REGISTER"] = "false"  # no catalog queries sent to SIPp
        if self.media_port:
            env["CAMGRID__MEDIA__HTTP_PORT"] = str(self.media_port)
        return env

    def start(self, timeout: float = 180) -> None:
        self.sip_port, self.http_port, self.media_port = free_udp_tcp_port(), free_udp_tcp_port(), free_udp_tcp_port()
        log_path = self.log_dir / "camgrid.log"
        start_at = log_path.stat().st_size if log_path.exists() else 0
        self.proc = _spawn([self.python, "-m", "camgrid", "serve", "--data-dir", str(self.data_dir),
                            "--http-port", str(self.http_port), "--http-host", HOST,
                            "--sip-port", str(self.sip_port), "--sip-id", PLATFORM_ID, "--sip-host", HOST],
                           log_path, cwd=ROOT, env=self.env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"camgrid exited with {self.proc.returncode}; see {log_path}")
            with open(log_path, "rb") as f:
                f.seek(start_at)
                if b"camgrid serving" in f.read():
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"camgrid did not print 'camgrid serving' within {timeout:.0f} s; see {log_path}")
        if not sip_ping(self.sip_port, 2.0):
            raise RuntimeError("camgrid does not answer OPTIONS on its SIP port")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        self.token = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # HTTP API: health summary
    def _http(self, method: str, path: str, body: dict | None = None, timeout: float = 10) -> dict:
        req = urllib.request.Request(f"http://{HOST}:{self.http_port}/api/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")

    def login(self) -> bool:
        try:
            self.token = self._http("POST", "/auth/login", {"username": ADMIN_USER, "password": ADMIN_PASSWORD})["access_token"]
            return True
        except (urllib.error.URLError, KeyError, OSError, ValueError) as exc:
            print(f"  note: health API login failed ({exc}); falling back to SIPp counts", flush=True)
            return False

    def summary(self) -> dict | None:
        try:
            return self._http("GET", "/health/summary")
        except (urllib.error.URLError, OSError, ValueError):
            return None


class Kamailio:
    """kamailio.cfg (stateless answers: the issue's baseline) or, with registrar=True,
    kamailio-registrar.cfg (usrloc written back to SQLite every second: a like-for-like reference)."""

    def __init__(self, run_dir: Path, log_dir: Path, binary: str, *, registrar: bool = False) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.binary = binary
        self.registrar = registrar
        self.name = "kamailio_registrar" if registrar else "kamailio"
        self.proc: subprocess.Popen | None = None
        self.sip_port = 0

    def _location_db(self) -> Path:
        import sqlite3

        db = self.run_dir / "location.db"
        db.unlink(missing_ok=True)
        schema = "".join((KAMAILIO_SQLITE_SCHEMA / f).read_text() for f in ("standard-create.sql", "usrloc-create.sql"))
        with sqlite3.connect(db) as conn:
            conn.executescript(schema)
            # WAL, as camgrid's SQLite runs (the mode is kept in the file); Kamailio's module
            # cannot set synchronous, so its commits stay FULL where camgrid's are NORMAL.
            conn.execute("PRAGMA journal_mode=WAL")
        return db

    def start(self, timeout: float = 30) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_udp_tcp_port()
        extra = ["-A", f'BENCH_DB="sqlite://{self._location_db()}"'] if self.registrar else []
        cfg = KAMAILIO_REGISTRAR_CFG if self.registrar else KAMAILIO_CFG
        self.proc = _spawn([self.binary, "-f", str(cfg), "-DD", "-E", "-Y", str(self.run_dir),
                            "-l", f"udp:{HOST}:{self.sip_port}", "-A", f'BENCH_PASSWORD="{DEVICE_PASSWORD}"',
                            "-A", f'BENCH_REALM="{REALM}"', *extra, "-m", "256", "-M", "16"],
                           self.log_dir / f"{self.name}.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited with {self.proc.returncode}; see {self.log_dir / (self.name + '.log')}")
            if sip_ping(self.sip_port, 0.3):
                return
        raise RuntimeError("kamailio did not answer on its SIP port")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


# ---------------------------------------------------------------------------------------------
# SIPp
# ---------------------------------------------------------------------------------------------
def device_id(serial: int) -> str:
    # centre 34020000, industry 00, type 132 (IPC), network 0, 6-digit serial
    return f"3402000000132{serial:07d}"


def write_injection(path: Path, serials: range) -> Path:
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for n in serials:
            did = device_id(n)
            f.write(f"{did};[authentication username={did} password={DEVICE_PASSWORD}];\n")
    return path


def run_sipp(sipp: str, scenario: str, port: int, inf: Path, rate: int, calls: int, work: Path, tag: str,
             timeout_s: int) -> dict[str, Any]:
    stat_file = work / f"{tag}_stat.csv"
    err_file = work / f"{tag}_err.log"
    for p in (stat_file, err_file):
        p.unlink(missing_ok=True)
    cmd = [sipp, f"{HOST}:{port}", "-sf", str(SIPP_DIR / scenario), "-inf", str(inf), "-s", PLATFORM_ID,
           "-key", "realm", REALM, "-i", HOST, "-p", str(free_udp_tcp_port()), "-mi", HOST, "-t", "u1",
           "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(1000, rate * 40)),
           "-nostdin", "-nd", "-buff_size", "4194304",
           "-trace_stat", "-stf", str(stat_file), "-fd", "1", "-trace_err", "-error_file", str(err_file),
           "-timeout", f"{timeout_s}s", "-timeout_error"]
    t0 = time.monotonic()
    proc = _spawn(cmd, work / f"{tag}_sipp.out")
    try:
        rc = proc.wait(timeout_s + 30)
    except subprocess.TimeoutExpired:
        _stop(proc)
        rc = -1
    elapsed = time.monotonic() - t0
    _started.remove(proc)
    proc._bench_log.close()  # type: ignore[attr-defined]
    stats: dict[str, str] = {}
    if stat_file.exists():
        rows = list(csv.reader(open(stat_file), delimiter=";"))
        if len(rows) >= 2:
            stats = dict(zip(rows[0], rows[-1]))

    def num(key: str) -> int:
        try:
            return int(float(stats.get(key, "0") or 0))
        except ValueError:
            return 0

    failed = num("FailedCall(C)")
    return {
        "scenario": scenario, "rate": rate, "calls": calls, "rc": rc, "wall_s": round(elapsed, 3),
        "successful": num("SuccessfulCall(C)"), "failed": failed, "retransmissions": num("Retransmissions(C)"),
        "failed_detail": {k: v for k, v in stats.items() if k.startswith("Failed") and k.endswith("(C)") and v not in ("0", "")},
    }


# ---------------------------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------------------------
def measure(server: Any, sipp: str, scenario: str, inf: Path, rate: int, calls: int, work: Path, tag: str) -> dict:
    time.sleep(1.0)
    c0 = cpu_sample(server.pid)
    res = run_sipp(sipp, scenario, server.sip_port, inf, rate, calls, work, tag, timeout_s=int(calls / rate) + 60)
    time.sleep(SETTLE_S)
    c1 = cpu_sample(server.pid)
    cpu = cpu_seconds(c0, c1)
    res["cpu_s"] = round(cpu, 4)
    res["cpu_stat_ticks_s"] = round(c1["stat_s"] - c0["stat_s"], 2)  # cross-check, 10 ms resolution
    res["us_per_call"] = round(cpu / res["successful"] * 1e6, 2) if res["successful"] else None
    return res


def idle_cpu(server: Any, seconds: float = 5.0) -> float:
    c0 = cpu_sample(server.pid)
    time.sleep(seconds)
    return cpu_seconds(c0, cpu_sample(server.pid)) / seconds * 1e6  # µs of CPU per second, idle


def compare(args: argparse.Namespace, prof: dict, tools: dict, work: Path) -> dict:
    rounds, n = prof["rounds"], prof["reg_devices"]
    total = (rounds + (1 if args.profile else 0)) * n
    cg_dir = work / "compare"
    cg_dir.mkdir()
    csv_path = cg_dir / "devices.csv"
    with open(csv_path, "w") as f:
        f.write("id,password,name\n")
        for i in range(1, total + 1):
            f.write(f"{device_id(i)},{DEVICE_PASSWORD},bench {i}\n")
    cam = Camgrid(cg_dir / "data", work, tools["python"])
    r = cam.cli("device", "import", "--data-dir", str(cam.data_dir), str(csv_path))
    if r.returncode != 0:
        raise RuntimeError(f"device import failed: {r.stdout}{r.stderr}")
    kam = Kamailio(work / "kamailio-run", work, tools["kamailio"])
    kreg = Kamailio(work / "kamailio-registrar-run", work, tools["kamailio"], registrar=True) if args.kamailio_registrar else None
    results: dict[str, Any] = {"rounds": [], "devices_per_round": n, "reg_rate": prof["reg_rate"],
                               "ka_calls": prof["ka_calls"], "ka_rate": prof["ka_rate"]}
    try:
        cam.start()
        kam.start()
        if kreg is not None:
            kreg.start()
        results["idle_us_per_s"] = {"camgrid": round(idle_cpu(cam), 1), "kamailio": round(idle_cpu(kam), 1)}
        print(f"  idle CPU: camgrid {results['idle_us_per_s']['camgrid']:.0f} µs/s, "
              f"kamailio {results['idle_us_per_s']['kamailio']:.0f} µs/s", flush=True)
        for rnd in range(rounds):
            inf = write_injection(work / f"round{rnd}.csv", range(rnd * n + 1, rnd * n + n + 1))
            order = [cam, kam] if rnd % 2 == 0 else [kam, cam]
            entry: dict[str, Any] = {"round": rnd + 1, "register": {}, "refresh": {}, "keepalive": {}}
            registrars = order if kreg is None else order[:rnd % 3] + [kreg] + order[rnd % 3:]
            for srv in registrars:
                # first the devices' first registrations (each a transition to online), then the
                # same devices again: refreshes of a live registration, a network's steady state
                for phase, label in (("register", "register "), ("refresh", "refresh  ")):
                    res = measure(srv, tools["sipp"], "register.xml", inf, prof["reg_rate"], n, work,
                                  f"r{rnd}_{srv.name}_{phase}")
                    entry[phase][srv.name] = res
                    print(f"  round {rnd + 1} {label} {srv.name:18s} ok={res['successful']:>6} failed={res['failed']:>5} "
                          f"retrans={res['retransmissions']:>5} cpu={res['cpu_s']:.3f}s  {res['us_per_call']} µs/registration",
                          flush=True)
            for srv in order:
                res = measure(srv, tools["sipp"], "keepalive.xml", inf, prof["ka_rate"], prof["ka_calls"], work,
                              f"r{rnd}_{srv.name}_ka")
                entry["keepalive"][srv.name] = res
                print(f"  round {rnd + 1} keepalive {srv.name:9s} ok={res['successful']:>6} failed={res['failed']:>5} "
                      f"retrans={res['retransmissions']:>5} cpu={res['cpu_s']:.3f}s  {res['us_per_call']} µs/keepalive",
                      flush=True)
            results["rounds"].append(entry)
        if args.profile:
            results["profile"] = {
                "keepalive": profile_camgrid(cam, tools, work, "keepalive.xml", work / "round0.csv", prof["ka_rate"], 14),
                "register": profile_camgrid(cam, tools, work, "register.xml",
                                            write_injection(work / "profile.csv", range(rounds * n + 1, rounds * n + n + 1)),
                                            prof["reg_rate"], max(4, min(14, n // prof["reg_rate"] + 2))),
            }
    finally:
        kam.stop()
        if kreg is not None:
            kreg.stop()
        cam.stop()
    for phase in ("keepalive", "register", "refresh"):
        summ: dict[str, Any] = {}
        for name in ("camgrid", "kamailio", "kamailio_registrar"):
            if name not in results["rounds"][0][phase]:
                continue
            vals = [e[phase][name]["us_per_call"] for e in results["rounds"] if e[phase][name]["us_per_call"]]
            summ[name] = {"median_us": round(statistics.median(vals), 2) if vals else None, "all_us": vals,
                          "failed": sum(e[phase][name]["failed"] for e in results["rounds"]),
                          "successful": sum(e[phase][name]["successful"] for e in results["rounds"]),
                          "retransmissions": sum(e[phase][name]["retransmissions"] for e in results["rounds"])}
        ratios = [e[phase]["camgrid"]["us_per_call"] / e[phase]["kamailio"]["us_per_call"]
                  for e in results["rounds"] if e[phase]["camgrid"]["us_per_call"] and e[phase]["kamailio"]["us_per_call"]]
        c, k = summ["camgrid"]["median_us"], summ["kamailio"]["median_us"]
        summ["ratio_of_medians"] = round(c / k, 2) if c and k else None
        summ["per_round_ratios"] = [round(x, 2) for x in ratios]
        r = summ.get("kamailio_registrar", {}).get("median_us")
        if r:
            summ["ratio_to_registrar"] = round(c / r, 2) if c else None
            summ["per_round_ratios_to_registrar"] = [
                round(e[phase]["camgrid"]["us_per_call"] / e[phase]["kamailio_registrar"]["us_per_call"], 2)
                for e in results["rounds"] if e[phase]["camgrid"]["us_per_call"] and e[phase]["kamailio_registrar"]["us_per_call"]]
        results[phase] = summ
    return results


def start_pyspy(cam: Camgrid, tools: dict, work: Path, tag: str, seconds: int) -> tuple[subprocess.Popen, Path] | None:
    pyspy = shutil.which("py-spy", path=str(Path(tools["python"]).parent)) or shutil.which("py-spy")
    if not pyspy:
        print("  --profile: py-spy not found (pip install py-spy into the venv); skipped", flush=True)
        return None
    raw = work / f"pyspy_{tag}.txt"
    spy = _spawn([pyspy, "record", "--pid", str(cam.pid), "--rate", "500", "--duration", str(seconds),
                  "--format", "raw", "--output", str(raw), "--nonblocking"], work / f"pyspy_{tag}.out")
    time.sleep(1.0)
    return spy, raw


def finish_pyspy(started: tuple[subprocess.Popen, Path] | None, tag: str) -> dict:
    """Top frames of a py-spy raw profile, by own and by cumulative samples."""
    if started is None:
        return {"skipped": "py-spy not installed"}
    spy, raw = started
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        _stop(spy)
    if not raw.exists():
        return {"skipped": f"py-spy wrote nothing; see {raw.with_suffix('.out')}"}
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = stack.split(";")
        total += k
        own[frames[-1]] += k
        for f in set(frames):
            cum[f] += k
    total = max(1, total)
    top_own = [(f, round(100 * c / total, 1)) for f, c in own.most_common(20)]
    top_cum = [(f, round(100 * c / total, 1)) for f, c in cum.most_common(45)]
    print(f"  py-spy, camgrid under {tag} load ({total} samples), top frames by own samples (%):", flush=True)
    for f, p in top_own[:12]:
        print(f"    {p:5.1f}  {f}", flush=True)
    return {"samples": total, "top_own_pct": top_own, "top_cumulative_pct": top_cum, "raw": str(raw)}


def profile_camgrid(cam: Camgrid, tools: dict, work: Path, scenario: str, inf: Path, rate: int, seconds: int) -> dict:
    """py-spy (if installed) on camgrid during one extra SIPp run; not counted in the figures."""
    tag = scenario.removesuffix(".xml")
    started = start_pyspy(cam, tools, work, tag, seconds)
    if started is None:
        return {"skipped": "py-spy not installed"}
    run_sipp(tools["sipp"], scenario, cam.sip_port, inf, rate, rate * (seconds - 2), work, f"profile_{tag}",
             timeout_s=seconds + 60)
    return finish_pyspy(started, tag)


def storm(args: argparse.Namespace, prof: dict, tools: dict, work: Path) -> dict:
    n, rate = prof["storm_devices"], args.storm_rate or prof["storm_rate"]
    sdir = work / "storm"
    sdir.mkdir()
    cam = Camgrid(sdir / "data", work, tools["python"])
    out: dict[str, Any] = {"devices": n, "rate": rate}
    try:
        # an empty platform first: the baseline every per-device figure is measured against
        r = cam.cli("admin", "create-user", "--data-dir", str(cam.data_dir), "--username", ADMIN_USER, "--role", "admin",
                    "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"create-user failed: {r.stdout}{r.stderr}")
        cam.start()
        time.sleep(3)
        out["rss_empty_kib"] = rss_kib(cam.pid)["VmRSS"]
        cam.stop()

        csv_path = sdir / "devices.csv"
        with open(csv_path, "w") as f:
            f.write("id,password,name\n")
            for i in range(1, n + 1):
                f.write(f"{device_id(i)},{DEVICE_PASSWORD},storm {i}\n")
        t0 = time.monotonic()
        r = cam.cli("device", "import", "--data-dir", str(cam.data_dir), str(csv_path))
        out["import_s"] = round(time.monotonic() - t0, 2)
        out["import_output"] = (r.stdout + r.stderr).strip()[-300:]
        if r.returncode != 0:
            raise RuntimeError(f"device import failed: {r.stdout}{r.stderr}")
        print(f"  imported {n} devices in {out['import_s']:.1f} s", flush=True)

        t0 = time.monotonic()
        cam.start()
        out["start_s"] = round(time.monotonic() - t0, 2)
        time.sleep(3)
        out["rss_before_kib"] = rss_kib(cam.pid)["VmRSS"]
        have_api = cam.login()
        s0 = cam.summary() if have_api else None
        out["summary_before"] = s0["devices"] if s0 else None

        inf = write_injection(work / "storm.csv", range(1, n + 1))
        first_all_online: list[float] = []
        online_trace: list[tuple[float, int]] = []
        stop_poll = threading.Event()
        t_start = time.monotonic()

        def poll() -> None:
            while not stop_poll.is_set():
                s = cam.summary()
                if s:
                    online = int(s["devices"]["online"])
                    online_trace.append((round(time.monotonic() - t_start, 2), online))
                    if online >= n and not first_all_online:
                        first_all_online.append(time.monotonic() - t_start)
                        return
                stop_poll.wait(1.0)

        poller = threading.Thread(target=poll, daemon=True)
        if have_api:
            poller.start()
        spy = start_pyspy(cam, tools, work, "storm", int(n / rate) + 5) if args.profile else None
        c0 = cpu_sample(cam.pid)
        res = run_sipp(tools["sipp"], "register.xml", cam.sip_port, inf, rate, n, work, "storm",
                       timeout_s=int(n / rate) + 120)
        if args.profile:
            out["profile"] = finish_pyspy(spy, "storm")
        if have_api:
            poller.join(30)
            stop_poll.set()
        time.sleep(SETTLE_S)
        out["cpu_s"] = round(cpu_seconds(c0, cpu_sample(cam.pid)), 2)
        out["rss_after_settle_kib"] = rss_kib(cam.pid)["VmRSS"]  # server transactions still lingering
        # SIP server transactions linger 64*T1 = 32 s after their answer (UDP); wait them out so the
        # memory figure is the steady state of N registered devices, not the storm's in-flight state.
        time.sleep(STEADY_WAIT_S)
        mem = rss_kib(cam.pid)
        out["rss_after_kib"], out["hwm_kib"] = mem["VmRSS"], mem["VmHWM"]
        s1 = cam.summary() if have_api else None
        out["summary_after"] = s1["devices"] if s1 else None
        out["sipp"] = res
        out["online_trace"] = online_trace[-30:]
        out["time_to_all_online_s"] = round(first_all_online[0], 2) if first_all_online else None
        out["sipp_elapsed_s"] = res["wall_s"]
        out["failures"] = res["failed"] + (n - res["successful"] - res["failed"])
        out["all_online"] = bool(s1 and int(s1["devices"]["online"]) >= n) if have_api else res["successful"] == n
        reg = max(1, res["successful"])
        out["bytes_per_device_registration"] = round((out["rss_after_kib"] - out["rss_before_kib"]) * 1024 / reg)
        out["bytes_per_device_all_state"] = round((out["rss_after_kib"] - out["rss_empty_kib"]) * 1024 / reg)
        out["bytes_per_device_whole_process"] = round(out["rss_after_kib"] * 1024 / reg)
        out["cpu_us_per_registration"] = round(out["cpu_s"] / reg * 1e6, 1)
    finally:
        cam.stop()
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def table(res: dict) -> str:
    rows = [("measure", "camgrid", "kamailio", "ratio", "target", "result")]
    cmp_ = res.get("compare")
    if cmp_:
        ka, rg = cmp_["keepalive"], cmp_["register"]
        rows.append(("keepalive: CPU µs per MESSAGE (median)", f"{ka['camgrid']['median_us']}", f"{ka['kamailio']['median_us']}",
                     f"{ka['ratio_of_medians']}×", "≤ 1.5×", verdict(ka["ratio_of_medians"] and ka["ratio_of_medians"] <= 1.5
                                                                      and ka["camgrid"]["failed"] == 0)))
        rows.append(("register: CPU µs per digest registration", f"{rg['camgrid']['median_us']}", f"{rg['kamailio']['median_us']}",
                     f"{rg['ratio_of_medians']}×", "≤ 2×", verdict(rg["ratio_of_medians"] and rg["ratio_of_medians"] <= 2.0
                                                                    and rg["camgrid"]["failed"] == 0)))
        half = lambda v: f"{v / 2:.1f}" if v else "-"  # noqa: E731
        rows.append(("register: CPU µs per REGISTER request", half(rg["camgrid"]["median_us"]), half(rg["kamailio"]["median_us"]),
                     "", "", ""))
        rf = cmp_["refresh"]
        rows.append(("refresh: CPU µs per digest re-registration", f"{rf['camgrid']['median_us']}",
                     f"{rf['kamailio']['median_us']}", f"{rf['ratio_of_medians']}×", "", "(not the target's figure)"))
        rows.append(("keepalive / register failed calls", f"{ka['camgrid']['failed']} / {rg['camgrid']['failed']}",
                     f"{ka['kamailio']['failed']} / {rg['kamailio']['failed']}", "", "0", ""))
        rows.append(("per-round ratios keepalive | register", " ".join(map(str, ka["per_round_ratios"])),
                     " ".join(map(str, rg["per_round_ratios"])), "", "", ""))
        rows.append(("per-round ratios refresh", " ".join(map(str, rf["per_round_ratios"])), "", "", "", ""))
        for label, ph in (("register", rg), ("refresh", rf)):
            if ph.get("ratio_to_registrar"):
                rows.append((f"{label}: against Kamailio as a registrar (usrloc, SQLite write-back)",
                             f"{ph['camgrid']['median_us']}", f"{ph['kamailio_registrar']['median_us']}",
                             f"{ph['ratio_to_registrar']}×", "", "(reference, not the target's)"))
    st = res.get("storm")
    if st:
        n = st["devices"]
        rows.append((f"storm: {n} devices at {st['rate']}/s, time to all online",
                     f"{st['time_to_all_online_s']} s" if st["time_to_all_online_s"] is not None else "never",
                     "", "", "", ""))
        rows.append(("storm: failures (failed + unanswered)", str(st["failures"]), "", "", "0",
                     verdict(st["failures"] == 0 and st["all_online"])))
        rows.append(("storm: SIPp retransmissions (UDP, T1 500 ms)", str(st["sipp"]["retransmissions"]), "", "", "", ""))
        rows.append(("storm: RSS per device, all device state", f"{st['bytes_per_device_all_state']} B", "", "", "≤ 1536 B",
                     verdict(st["bytes_per_device_all_state"] <= 1536)))
        rows.append(("storm: RSS per device, registration only", f"{st['bytes_per_device_registration']} B", "", "", "", ""))
        rows.append(("storm: RSS per device, registration, at +5.5 s",
                     f"{round((st['rss_after_settle_kib'] - st['rss_before_kib']) * 1024 / max(1, st['sipp']['successful']))} B",
                     "", "", "", ""))
        rows.append(("storm: peak RSS (VmHWM)", f"{st['hwm_kib'] / 1024:.0f} MiB", "", "", "", ""))
        rows.append(("storm: RSS after / devices (whole process)", f"{st['bytes_per_device_whole_process']} B", "", "", "", ""))
        rows.append(("storm: import of the devices (CSV)", f"{st['import_s']} s", "", "", "", ""))
        rows.append(("storm: CPU µs per registration", f"{st['cpu_us_per_registration']}", "", "", "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts (storm of 10k devices) for a fast check")
    ap.add_argument("--rounds", type=int, help="alternating rounds per comparison (default 3)")
    ap.add_argument("--storm-rate", type=int, help="REGISTER storm rate, registrations/s")
    ap.add_argument("--storm-devices", type=int, help="devices in the storm")
    ap.add_argument("--skip-compare", action="store_true", help="only the storm")
    ap.add_argument("--skip-storm", action="store_true", help="only the Kamailio comparison")
    ap.add_argument("--profile", action="store_true", help="also run py-spy on camgrid under each load (keepalive, register, storm); figures of the profiled runs are not used")
    ap.add_argument("--kamailio-registrar", action="store_true",
                    help="also register against Kamailio as a real registrar (usrloc written back to SQLite every second; "
                         "needs the Debian package kamailio-sqlite-modules): a like-for-like reference beside the "
                         "issue's stateless baseline")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp stats)")
    args = ap.parse_args()

    prof = dict(PROFILES["quick" if args.quick else "full"])
    if args.rounds:
        prof["rounds"] = args.rounds
    if args.storm_devices:
        prof["storm_devices"] = args.storm_devices
    tools = {"python": sys.executable, "sipp": shutil.which("sipp"),
             "kamailio": shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)}
    missing = [k for k, v in tools.items() if not v]
    if missing:
        print(f"error: {', '.join(missing)} not found (apt-get install sip-tester kamailio)", file=sys.stderr)
        return 2
    if args.kamailio_registrar and not (KAMAILIO_SQLITE_SCHEMA / "usrloc-create.sql").exists():
        print(f"error: --kamailio-registrar needs Kamailio's SQLite module and schema ({KAMAILIO_SQLITE_SCHEMA}): "
              "apt-get install kamailio-sqlite-modules", file=sys.stderr)
        return 2

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"sip-bench-{stamp}-"))
    res: dict[str, Any] = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "profile": "quick" if args.quick else "full", "settings": prof,
        "machine": {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "kernel": platform.release(),
                    "python": platform.python_version(), "sipp": _version([tools["sipp"], "-v"]),
                    "kamailio": _version([tools["kamailio"], "-v"])},
        "work_dir": str(work), "targets": TARGETS,
    }
    print(f"SIP benchmark ({res['profile']}), {os.cpu_count()} CPUs, work dir {work}", flush=True)
    try:
        if not args.skip_compare:
            print("camgrid vs kamailio (same SIPp load, alternating rounds):", flush=True)
            res["compare"] = compare(args, prof, tools, work)
        if not args.skip_storm:
            print(f"register storm: {prof['storm_devices']} devices:", flush=True)
            res["storm"] = storm(args, prof, tools, work)
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        _cleanup()
        out = RESULTS / f"sip-{stamp}.json"
        out.write_text(json.dumps(res, indent=2, ensure_ascii=False))
        print(f"results: {out}")
    print()
    print(table(res))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return next((line.strip() for line in out.splitlines() if line.strip()), "")
    except (OSError, subprocess.SubprocessError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
