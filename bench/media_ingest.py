"""RTP/PS ingest: a camgrid media node against a C recvmmsg sink, side by side, one core each.

    .venv/bin/python bench/media_ingest.py [--streams 300] [--seconds 10] [--no-search]
                                           [--flood-seconds 5] [--backlog-seconds 4] [--profile-node]
                                           [--perf-node] [--base-port 61100]

What runs (all on 127.0.0.1; every process is stopped on exit, ctrl-c and SIGTERM included):

- sender: bench/sink/rtp_sender.c (built here with `cc -O2` into a temp dir), pinned to
  --sender-core (0). It replays the 1080p 25 fps 4 Mbit/s H.264 footage of
  bench/_media_common.py, muxed to PS and cut into 1400-byte RTP payloads once, as N cameras:
  per stream its own port, SSRC, sequence numbers and timestamps; each frame's packets in one
  burst at the frame's time; streams spread evenly over the 30 s loop (so their key frames do
  not coincide). C with sendmmsg because Python could not send N x 371 packets/s from one core;
  the C sender floods ~500k packets/s here, paces 300 streams (111k/s) at ~65% of its core.
- receiver, pinned to --receiver-core (1), one at a time with the same N and the same sender:
  (i) bench/sink/recvmmsg_sink.c: N UDP sockets (4 MiB buffers, as the node's), epoll +
      recvmmsg in batches of 64, counting only: the ceiling for this machine;
  (ii) the real node, `python -m camgrid media` (a fresh process per run), with N UDP streams
      opened through its control API (POST /node/v1/streams); its counters come from
      GET /node/v1/streams at the end.

Phases: (1) paced: N streams for --seconds, sink then node; (2) flood: the sender sends as fast
as it can to N ports (--flood-seconds, 0 skips) to each receiver, to see each one's ceiling;
(2b) backlog: each receiver is stopped (SIGSTOP) while the sender paces N streams into its
queues for --backlog-seconds (4; the 4 MiB buffers hold them), then continued: the time and the
CPU it takes to empty the queues are its own pace at full batches, whatever the sender managed (on
a shared VM the sender falls behind, and then the flood and the search measure the sender);
(3) search: the largest N that the node takes on its one core (bisection, first guess from the
CPU the paced run used; --no-search skips it). --profile-node and --perf-node add one node run
each under cProfile (Python functions) and `perf record` (native: interpreter, libc, kernel).

How to read it. Loss is counted three ways: sent (sender) vs received (sink count, or the
node's per-stream `packets`) vs the kernel's drops on those sockets (/proc/net/udp, receive
buffer full); the receivers' own sequence-gap counts (sink seq_gaps, node lost_packets) should
agree, except that drops at the very end of a stream leave no gap to see (floods). Zero loss
alone is not enough: each socket's 4 MiB buffer holds several seconds of a 4 Mbit/s stream, so
a receiver at half the offered rate loses nothing in a 10 s run, it only queues gigabytes. A run
passes only with zero loss AND a kernel backlog that empties within --max-backlog-s (0.5 s)
after the sender stops ("kept up"). Receiver CPU comes from /proc/<pid>/stat over the run
(sending plus draining). "capacity" is packets per CPU-second of the receiver at that load:
what one core would take if its cost per packet stayed the same up to 100%. The sink's flood
rate is bound by the sender (on loopback the sender's core also does the kernel's delivery
work; the sink's core stays ~50% idle), so its CPU-normalised capacity is the ceiling used;
both are printed. Compare ratios, not absolute figures across runs: the machine is noisy (a
"SENDER FELL BEHIND" line means something else took the sender's core for a while). Targets
(issue 3): >= 300 streams per core passing, and node packets/s >= 0.5 x the sink's. Results
also go to bench/results/media-ingest-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pstats
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media_common import (  # noqa: E402
    DEFAULT_CACHE, DEFAULT_FOOTAGE, RESULTS, ROOT, Procs, bench_footage, cpu_seconds, on_signals_exit, snmp_udp,
    udp_sockets, write_template,
)

SINK_C = ROOT / "bench" / "sink" / "recvmmsg_sink.c"
SENDER_C = ROOT / "bench" / "sink" / "rtp_sender.c"
SSRC_BASE = 0x10000000
DRAIN_TIMEOUT_S = 3.0  # how long a receiver's backlog is waited for after the sender stops
NODE_READY = "media node ready: "


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Procs) -> None:
        self.args, self.tmp, self.procs = args, tmp, procs
        self.sink_bin, self.sender_bin = tmp / "recvmmsg_sink", tmp / "rtp_sender"
        for src, out in ((SINK_C, self.sink_bin), (SENDER_C, self.sender_bin)):
            subprocess.run(["cc", "-O2", "-o", str(out), str(src)], check=True)
        footage = bench_footage(args.footage, cache_dir=args.cache_dir)
        self.template = tmp / "template.bin"
        self.info = write_template(self.template, footage)
        self.secret = secrets.token_urlsafe(24)
        self.node_runs = 0

    def pin(self, core: int) -> list[str]:
        return ["taskset", "-c", str(core)]

    # -- receivers -----------------------------------------------------------------------------
    def start_sink(self, n: int) -> dict:
        proc = self.procs.start([*self.pin(self.args.receiver_core), str(self.sink_bin), str(self.args.base_port), str(n), "0"],
                                stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if '"ready"' not in line:
            self.procs.stop(proc)
            raise SystemExit(f"sink did not start: {line!r}")
        return {"kind": "sink", "proc": proc}

    def start_node(self, n: int, *, profile: Path | None = None) -> dict:
        self.node_runs += 1
        data = self.tmp / f"node{self.node_runs}"
        data.mkdir()
        first = self.args.base_port
        (data / "camgrid.yaml").write_text(json.dumps({"media": {
            "host": "127.0.0.1", "rtp_ports": [first, min(65535, first + n + 100)], "http_host": "127.0.0.1"}}))
        cmd = [sys.executable]
        if profile is not None:
            cmd += ["-m", "cProfile", "-o", str(profile)]
        cmd += ["-m", "camgrid", "media", "--data-dir", str(data), "--http-port", "0", "--node-id", "bench"]
        env = dict(os.environ, CAMGRID_MEDIA_SECRET=self.secret)
        log = open(data / "node.log", "w")  # noqa: SIM115 - closed with the process
        proc = self.procs.start([*self.pin(self.args.receiver_core), *cmd], stdout=subprocess.PIPE, stderr=log,
                                text=True, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith(NODE_READY):
                url = line[len(NODE_READY):].split()[0]
                break
            if not line and proc.poll() is not None:
                break
        if url is None:
            self.procs.stop(proc)
            raise SystemExit(f"the media node did not start; see {data / 'node.log'}:\n{(data / 'node.log').read_text()[-2000:]}")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its stdout pipe from filling
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.secret}"}, timeout=30)
        for i in range(n):
            r = client.post("/node/v1/streams", json={"stream_id": f"cam{i:04d}", "transport": "udp", "ssrc": SSRC_BASE + i})
            r.raise_for_status()
            port = r.json()["port"]
            if port != first + i:
                raise SystemExit(f"the node gave stream {i} port {port}, expected {first + i} (a port in the range is taken?)")
        return {"kind": "node", "proc": proc, "client": client, "log": data / "node.log", "log_file": log}

    def finish(self, rx: dict) -> dict:
        """Stop a receiver and return what it counted."""
        proc = rx["proc"]
        if rx["kind"] == "sink":
            self.procs.stop(proc)
            out = proc.stdout.read().strip().splitlines()
            return json.loads(out[-1]) if out else {}
        rows = rx["client"].get("/node/v1/streams").json()["streams"]
        rx["client"].close()
        self.procs.stop(proc)
        rx["log_file"].close()
        return {"streams": rows}

    # -- one run -------------------------------------------------------------------------------
    def trial(self, kind: str, n: int, seconds: float, *, flood: bool = False, profile: Path | None = None,
              perf: Path | None = None, backlog: bool = False) -> dict:
        rx = self.start_sink(n) if kind == "sink" else self.start_node(n, profile=profile)
        pid = rx["proc"].pid
        if backlog:  # the receiver waits, stopped, while the sender fills its queues
            os.kill(pid, signal.SIGSTOP)
        recorder = None
        if perf is not None:  # sample the receiver's CPU (user and kernel) while the sender runs
            recorder = self.procs.start(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-p", str(pid), "-o", str(perf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        ports = set(range(self.args.base_port, self.args.base_port + n))
        try:
            before = udp_sockets(ports)
            snmp0 = snmp_udp()
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            cmd = [*self.pin(self.args.sender_core), str(self.sender_bin), str(self.template), "127.0.0.1",
                   str(self.args.base_port), str(n), str(seconds), "flood" if flood else "paced", str(SSRC_BASE)]
            sender = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            if backlog:
                cpu0 = cpu_seconds(pid)
                os.kill(pid, signal.SIGCONT)
                t0 = time.monotonic()
            cpu_sent, t_sent = cpu_seconds(pid), time.monotonic()
            backlog_bytes = udp_sockets(ports)["rx_queue_bytes"]
            while udp_sockets(ports)["rx_queue_bytes"] and time.monotonic() < t_sent + DRAIN_TIMEOUT_S * (10 if backlog else 1):
                time.sleep(0.005 if backlog else 0.02)
            t_drained = time.monotonic()
            cpu_drained = cpu_seconds(pid)
            drained = not udp_sockets(ports)["rx_queue_bytes"]
            if recorder is not None:
                self.procs.stop(recorder, signal.SIGINT)
            time.sleep(0.4)  # the node's reorder buffer releases what it held (0.2 s)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            socks = udp_sockets(ports)
            snmp1 = snmp_udp()
            counted = self.finish(rx)
            t_counted = time.monotonic()
        except BaseException:
            self.procs.stop(rx["proc"])
            raise
        sent = sender["packets"]
        elapsed = sender["elapsed_s"]
        res = {"receiver": kind, "streams": n, "seconds": seconds, "flood": flood, "backlog": backlog, "sent": sent,
               "sender_pps": sender["packets_per_s"], "sender_late_frames_5ms": sender["late_frames_5ms"],
               "sender_max_late_ms": sender["max_late_us"] / 1000, "sender_errors": sender["errors"],
               "sender_cpu_share": (sender["cpu_user_s"] + sender["cpu_sys_s"]) / sender["elapsed_s"],
               "kernel_drops": socks["drops"] - before["drops"], "left_in_queues_bytes": socks["rx_queue_bytes"],
               "host_udp_rcvbuf_errors": snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0),
               "receiver_cpu_s": cpu1 - cpu0, "receiver_cpu_while_sending_s": cpu_sent - cpu0,
               "wall_s": t1 - t0, "send_s": elapsed, "backlog_at_end_bytes": backlog_bytes,
               "backlog_s": t_drained - t_sent if drained else float("inf"),
               "busy_s": max(elapsed, t_drained - t0) if drained else t_counted - t0}
        if kind == "sink":
            res.update(received=counted.get("packets", 0), counted_loss=counted.get("seq_gaps", 0),
                       sink_truncated=counted.get("truncated", 0))
        else:
            rows = counted["streams"]
            per_stream_sent = sender["per_stream"]
            by_id = {r["stream_id"]: r for r in rows}
            short = sum(1 for i, s in enumerate(per_stream_sent) if by_id[f"cam{i:04d}"]["packets"] != s)
            res.update(received=sum(r["packets"] for r in rows), counted_loss=sum(r["lost_packets"] for r in rows),
                       bad_packets=sum(r["bad_packets"] for r in rows), ssrc_mismatch=sum(r["ssrc_mismatch"] for r in rows),
                       video_frames=sum(r["video_frames"] for r in rows), frames_sent=sender["frames"],
                       streams_with_loss=short, streams_without_video=sum(1 for r in rows if not r["video_frames"]),
                       keyframes=sum(r["keyframes"] for r in rows),
                       per_stream={"sent": per_stream_sent, "packets": [by_id[f"cam{i:04d}"]["packets"] for i in range(n)],
                                   "lost_packets": [by_id[f"cam{i:04d}"]["lost_packets"] for i in range(n)]})
        res["missing"] = sent - res["received"]
        # What the receiver got through from the start until its queues were empty (a receiver that
        # falls behind goes on reading its backlog after the sender stops): the offered rate if it kept up.
        res["rx_pps"] = res["received"] / res["busy_s"]
        res["cpu_share"] = res["receiver_cpu_while_sending_s"] / elapsed  # of one core
        res["cpu_us_per_packet"] = res["receiver_cpu_s"] / max(1, res["received"]) * 1e6
        res["capacity_pps"] = res["received"] / res["receiver_cpu_s"] if res["receiver_cpu_s"] > 0 else float("inf")
        res["kept_up"] = res["backlog_s"] <= self.args.max_backlog_s
        res["zero_loss"] = (res["missing"] == 0 and res["kernel_drops"] == 0 and res["counted_loss"] == 0)
        res["passed"] = res["zero_loss"] and res["kept_up"]
        res["sender_kept_pace"] = flood or backlog or res["sender_late_frames_5ms"] == 0
        # What the sender got out of the rate N streams should offer: a sender starved of its core
        # (a shared VM) offers a fraction, and then a pass at N says nothing about N.
        res["offered_share"] = sent / (n * self.info["pps_per_stream"] * elapsed) if not flood else 1.0
        if backlog:  # from SIGCONT until the queues were empty: the receiver's own pace, the sender out of the way
            res["drain_s"] = t_drained - t0
            res["drain_pps"] = res["received"] / res["drain_s"] if drained else 0.0
            res["drain_cpu_us_per_packet"] = (cpu_drained - cpu0) / max(1, res["received"]) * 1e6
            res["drain_cpu_share"] = (cpu_drained - cpu0) / res["drain_s"]
        return res


def show(res: dict) -> None:
    r = res
    if r.get("backlog"):
        print(f"  {r['receiver']:4s} {'backlog':>12s}: {r['received']:>9,} packets ({r['backlog_at_end_bytes'] / 1e6:,.0f} MB) queued "
              f"while it was stopped, drained in {r['drain_s']:.2f} s = {r['drain_pps']:>9,.0f}/s; CPU "
              f"{r['drain_cpu_share'] * 100:5.1f}% of a core, {r['drain_cpu_us_per_packet']:5.2f} µs/packet → "
              f"{1e6 / r['drain_cpu_us_per_packet']:>9,.0f}/s per core; missing {r['missing']:,}, kernel drops "
              f"{r['kernel_drops']:,}", flush=True)
        return
    tag = "flood" if r["flood"] else f"{r['streams']} streams"
    line = (f"  {r['receiver']:4s} {tag:>12s}: sent {r['sent']:>9,} ({r['sender_pps']:>9,.0f}/s)  received {r['received']:>9,} "
            f"({r['rx_pps']:>9,.0f}/s)  missing {r['missing']:>7,}  kernel drops {r['kernel_drops']:>7,}  "
            f"counted gaps {r['counted_loss']:>7,}  CPU {r['cpu_share'] * 100:5.1f}% of a core, "
            f"{r['cpu_us_per_packet']:5.2f} µs/packet → capacity {r['capacity_pps']:>9,.0f}/s")
    print(line, flush=True)
    extra = []
    if r["receiver"] == "node":
        extra.append(f"video frames {r['video_frames']:,} of {r['frames_sent']:,} sent, streams with loss "
                     f"{r['streams_with_loss']}, without video {r['streams_without_video']}, bad {r['bad_packets']}, "
                     f"SSRC mismatch {r['ssrc_mismatch']}")
    if not r["flood"] and not r["sender_kept_pace"]:
        extra.append(f"SENDER FELL BEHIND: {r['sender_late_frames_5ms']} frames > 5 ms late (max {r['sender_max_late_ms']:.1f} ms; "
                     f"sender used {r['sender_cpu_share'] * 100:.0f}% of its core; it sent {r['offered_share'] * 100:.0f}% "
                     "of the streams' rate)")
    if not r["flood"] and not r["kept_up"]:
        lag = "not drained within 3 s" if r["backlog_s"] == float("inf") else f"{r['backlog_s']:.2f} s to drain"
        extra.append(f"DID NOT KEEP UP: {r['backlog_at_end_bytes'] / 1e6:,.1f} MB queued in the kernel when the sender stopped, {lag}")
    if r["left_in_queues_bytes"]:
        extra.append(f"{r['left_in_queues_bytes'] / 1e6:,.1f} MB still queued when counted (counted as missing)")
    for e in extra:
        print(f"  {'':4s} {'':>12s}  {e}", flush=True)


def search(bench: Bench, seed: dict, pps_per_stream: float, args: argparse.Namespace) -> tuple[int, list[dict]]:
    """Largest N with zero loss for the node: bisection, first guess from the seed run's CPU."""
    runs = []
    lo, hi = 0, None
    n0 = seed["streams"]
    sender_bound = False
    if seed["offered_share"] < args.min_offered:  # neither a pass nor a failure
        pass
    elif seed["passed"]:  # a sender a little behind sent burstier traffic: a pass counts all the more
        lo = n0
    else:
        hi = n0
    guess = int(0.92 * seed["capacity_pps"] / pps_per_stream)  # 92% busy leaves room for bursts
    for _ in range(args.search_trials):
        if hi is not None and hi - lo <= max(2, round(lo * args.search_resolution)):
            break
        if hi is None:  # all passed so far: step up
            n = max(guess, int(lo * 1.15) + 1)
        elif lo == 0:  # all failed so far: the CPU-based guess, then steps down
            n = guess if 0 < guess < hi else int(hi * 0.75)
        elif hi > lo * 1.3:  # far apart: step up from the last pass rather than halving
            n = int(lo * 1.12) + 1
        else:
            n = (lo + hi) // 2
        n = max(1, min(n, args.max_streams))
        if n == lo or (hi is not None and n >= hi):
            break
        res = bench.trial("node", n, args.seconds)
        show(res)
        runs.append(res)
        if res["offered_share"] < args.min_offered:
            print(f"  {'':4s} {'':>12s}  the sender offered only {res['offered_share'] * 100:.0f}% of {n} streams' rate "
                  f"(< {args.min_offered * 100:.0f}%): sender-bound, the search stops at {lo}", flush=True)
            sender_bound = True
            break
        if res["passed"]:
            lo = n
        else:
            hi = n
        if n == args.max_streams and res["passed"]:
            break
    return lo, runs, sender_bound


def print_profile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    total = stats.total_tt
    print(f"\nnode under cProfile ({total:.2f} s profiled; by own time; the event loop's C code and the kernel are not seen):")
    print(f"  {'own s':>7s} {'own %':>6s} {'calls':>10s} {'µs/call':>8s}  function")
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, func), (_cc, ncalls, tottime, _cum, _callers) in entries:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"  {tottime:7.3f} {tottime / total * 100:5.1f}% {ncalls:10d} {tottime / ncalls * 1e6:8.2f}  {func} ({where})")


def print_perf(path: Path, top: int) -> None:
    def report(sort: str) -> list[str]:
        r = subprocess.run(["perf", "report", "-i", str(path), "--sort", sort, "--stdio"], capture_output=True, text=True)
        return [line for line in r.stdout.splitlines() if line.strip() and not line.startswith("#")]
    print("\nnode under perf (cpu-clock samples of the whole process while the sender ran), by library:")
    for line in report("dso")[:8]:
        print("  " + line.strip())
    print("by function ([k] kernel, [.] user space; Python code shows as the interpreter's C functions):")
    for line in report("dso,sym")[:top]:
        print("  " + " ".join(line.split()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=300, help="N for the side-by-side runs (default 300, the target)")
    ap.add_argument("--seconds", type=float, default=10.0, help="sending time per run (default 10)")
    ap.add_argument("--flood-seconds", type=float, default=5.0, help="flood run per receiver (0 skips; default 5)")
    ap.add_argument("--backlog-seconds", type=float, default=4.0,
                    help="backlog run per receiver: --streams paced for this long into its queues while it is stopped "
                         "(SIGSTOP), then the time and CPU it takes to empty them (0 skips; default 4)")
    ap.add_argument("--no-search", action="store_true", help="skip the search for the node's largest zero-loss N")
    ap.add_argument("--search-trials", type=int, default=6, help="at most this many search runs (default 6)")
    ap.add_argument("--search-resolution", type=float, default=0.05, help="stop when hi-lo <= this share of lo (0.05)")
    ap.add_argument("--max-streams", type=int, default=2000)
    ap.add_argument("--min-offered", type=float, default=0.85,
                    help="a search run counts only if the sender sent at least this share of N streams' rate (0.85)")
    ap.add_argument("--max-backlog-s", type=float, default=0.5,
                    help="a run passes only if the receiver's kernel queues empty within this long after the sender stops (0.5)")
    ap.add_argument("--profile-node", action="store_true", help="one more node run at --streams under cProfile")
    ap.add_argument("--perf-node", action="store_true", help="one more node run at --streams under `perf record` (native profile)")
    ap.add_argument("--sender-core", type=int, default=0)
    ap.add_argument("--receiver-core", type=int, default=1)
    # Above Linux's ephemeral range (32768-60999 by default, net.ipv4.ip_local_port_range), where any
    # process's outgoing socket may take a port the bench means to bind.
    ap.add_argument("--base-port", type=int, default=61100,
                    help="first UDP port (default 61100: above Linux's default ephemeral range 32768-60999)")
    ap.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    if args.base_port + max(args.streams, args.max_streams) + 100 > 65535:
        ap.error("--base-port + --max-streams must stay below 65436")
    for tool in ("cc", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    cores = os.cpu_count() or 1
    if max(args.sender_core, args.receiver_core) >= cores or args.sender_core == args.receiver_core:
        print(f"warning: {cores} cores; sender on {args.sender_core}, receiver on {args.receiver_core}", file=sys.stderr)
    on_signals_exit()

    with tempfile.TemporaryDirectory(prefix="camgrid-ingest-") as tmp, Procs() as procs:
        bench = Bench(args, Path(tmp), procs)
        info = bench.info
        pps = info["pps_per_stream"]
        n = args.streams
        print(f"footage: 1920x1080 25 fps H.264, {info['wire_bits_per_s_per_stream'] / 1e6:.2f} Mbit/s on the wire per stream, "
              f"{pps:.1f} packets/s per stream (mean payload {info['mean_payload']:.0f} B), {info['loop_s']:.1f} s loop")
        print(f"sender on core {args.sender_core}, receiver on core {args.receiver_core}; {n} streams = "
              f"{n * pps:,.0f} packets/s, {n * info['wire_bits_per_s_per_stream'] / 1e9:.2f} Gbit/s", flush=True)
        out: dict = {"time": dt.datetime.now().isoformat(timespec="seconds"), "args": {k: str(v) for k, v in vars(args).items()},
                     "footage": info, "paced": [], "flood": [], "search": []}

        print(f"\n1. paced, {n} streams x {args.seconds:g} s, side by side:", flush=True)
        sink = bench.trial("sink", n, args.seconds)
        show(sink)
        node = bench.trial("node", n, args.seconds)
        show(node)
        out["paced"] = [sink, node]

        if args.flood_seconds > 0:
            print(f"\n2. flood ({n} ports, sender as fast as it goes, {args.flood_seconds:g} s):", flush=True)
            fsink = bench.trial("sink", n, args.flood_seconds, flood=True)
            show(fsink)
            fnode = bench.trial("node", n, args.flood_seconds, flood=True)
            show(fnode)
            out["flood"] = [fsink, fnode]

        if args.backlog_seconds > 0:
            print(f"\n2b. backlog ({n} streams x {args.backlog_seconds:g} s queued while the receiver is stopped, then "
                  "drained; the sender's pace plays no part):", flush=True)
            bsink = bench.trial("sink", n, args.backlog_seconds, backlog=True)
            show(bsink)
            bperf = Path(tmp) / "perf-backlog.data" if args.perf_node and shutil.which("perf") else None
            bnode = bench.trial("node", n, args.backlog_seconds, backlog=True, perf=bperf)
            show(bnode)
            out["backlog"] = [bsink, bnode]
            if bperf is not None and bperf.is_file():
                print("  (the node's backlog run was sampled by perf:)")
                print_perf(bperf, 40)

        best = None
        if not args.no_search:
            print("\n3. search: largest N with zero loss for the node on one core:", flush=True)
            best, runs, sender_bound = search(bench, node, pps, args)
            out["search_sender_bound"] = sender_bound
            out["search"] = runs
            print(f"  → {best} streams ({best * pps:,.0f} packets/s) with zero loss over {args.seconds:g} s and a backlog "
                  f"that drained within {args.max_backlog_s:g} s", flush=True)

        if args.profile_node:
            prof = Path(tmp) / "node.prof"
            print(f"\nprofiling the node at {n} streams (cProfile slows it: loss here is expected):", flush=True)
            show(bench.trial("node", n, args.seconds, profile=prof))
            if prof.is_file():
                print_profile(prof, 25)

        if args.perf_node:
            if shutil.which("perf") is None:
                print("\n--perf-node: perf is not installed; skipped")
            else:
                data = Path(tmp) / "perf.data"
                print(f"\nnode at {n} streams under perf (cpu-clock sampling at 2 kHz):", flush=True)
                show(bench.trial("node", n, args.seconds, perf=data))
                if data.is_file():
                    print_perf(data, 30)

        sink_ceiling = sink["capacity_pps"]
        print("\nsummary (ratios node/sink; the figures that count):")
        print(f"  paced {n}: received/s {node['rx_pps'] / sink['rx_pps']:.3f}; node: {node['missing']:,} of {node['sent']:,} "
              f"not received ({node['missing'] / max(1, node['sent']) * 100:.2f}%: {node['kernel_drops']:,} dropped by the "
              f"kernel, the rest still queued), {'kept up' if node['kept_up'] else 'did not keep up'}; sink: "
              f"{sink['missing']:,} not received, {'kept up' if sink['kept_up'] else 'did not keep up'}")
        print(f"  paced {n}: CPU per packet node/sink {node['cpu_us_per_packet'] / sink['cpu_us_per_packet']:.1f}x "
              f"({node['cpu_us_per_packet']:.2f} vs {sink['cpu_us_per_packet']:.2f} µs); capacity node/sink "
              f"{node['capacity_pps'] / sink_ceiling:.3f} ({node['capacity_pps']:,.0f} vs {sink_ceiling:,.0f} packets/s per core)")
        summary = {"paced_rx_ratio": node["rx_pps"] / sink["rx_pps"], "capacity_ratio": node["capacity_pps"] / sink_ceiling,
                   "node_capacity_streams": node["capacity_pps"] / pps}
        if out["flood"]:
            fsink, fnode = out["flood"]
            bound = " (sink not saturated: sender-bound)" if fsink["cpu_share"] < 0.9 else ""
            print(f"  flood: received/s node/sink {fnode['rx_pps'] / fsink['rx_pps']:.3f} ({fnode['rx_pps']:,.0f} vs "
                  f"{fsink['rx_pps']:,.0f}; sink core {fsink['cpu_share'] * 100:.0f}% busy{bound}, node core "
                  f"{fnode['cpu_share'] * 100:.0f}%)")
            sink_ceiling = max(sink_ceiling, fsink["capacity_pps"])
            summary["flood_rx_ratio"] = fnode["rx_pps"] / fsink["rx_pps"]
        if out.get("backlog"):  # the sink at full batches: its cheapest packets
            sink_ceiling = max(sink_ceiling, 1e6 / out["backlog"][0]["drain_cpu_us_per_packet"])
        summary["sink_ceiling_pps"] = sink_ceiling
        if out.get("backlog"):
            bsink, bnode = out["backlog"]
            wall = bnode["drain_pps"] / bsink["drain_pps"] if bsink["drain_pps"] else float("nan")
            cpu = bsink["drain_cpu_us_per_packet"] / bnode["drain_cpu_us_per_packet"]
            print(f"  backlog: node/sink packets per second while draining {wall:.3f} ({bnode['drain_pps']:,.0f} vs "
                  f"{bsink['drain_pps']:,.0f}/s), per CPU-second {cpu:.3f} ({bnode['drain_cpu_us_per_packet']:.2f} vs "
                  f"{bsink['drain_cpu_us_per_packet']:.2f} µs/packet); "
                  f"{'no loss' if bnode['missing'] == bsink['missing'] == 0 else 'LOSS: a queue overflowed, use fewer seconds'}")
            summary.update(backlog_wall_ratio=wall, backlog_cpu_ratio=cpu)
        if best is not None:
            ratio = best * pps / sink_ceiling
            print(f"  zero-loss: node {best} streams/core = {best * pps:,.0f} packets/s = {ratio:.3f} x the sink's "
                  f"ceiling ({sink_ceiling:,.0f} packets/s per core, CPU-normalised)"
                  + (f", {best * pps / out['flood'][0]['rx_pps']:.3f} x the sink's flood rate (sender-bound)" if out["flood"] else ""))
            if out["search_sender_bound"]:
                print(f"  targets: INCONCLUSIVE: the sender could not offer more than {best} streams here (a pass above "
                      f"that is a lower bound only); >= 300 streams/core: {'MET' if best >= 300 else 'not shown'}; "
                      f">= 0.5 x sink packets/s: {'MET' if ratio >= 0.5 else 'not shown'} ({ratio:.3f} is a lower bound)")
            else:
                print(f"  targets: >= 300 streams/core with zero loss: {'MET' if best >= 300 else 'NOT MET'} ({best}); "
                      f">= 0.5 x sink packets/s: {'MET' if ratio >= 0.5 else 'NOT MET'} ({ratio:.3f})")
            summary.update(node_zero_loss_streams=best, node_zero_loss_pps=best * pps, zero_loss_ratio=ratio)
        out["summary"] = summary
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"media-ingest-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(out, indent=1, default=str))
        print(f"\nresults: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; processes stopped", file=sys.stderr)
        sys.exit(130)
