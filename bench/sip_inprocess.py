"""In-process SIP figures, no sockets: memory per registration and CPU per keepalive.

    .venv/bin/python bench/sip_inprocess.py [--devices N] [--trace]

Provisions N devices in a temporary SQLite store, starts the platform (no HTTP), and feeds
crafted datagrams straight into the SIP stack (its send is replaced by a list):
1. digest REGISTER for every device (REGISTER, read the 401's nonce, REGISTER with
   Authorization), paced at about 2,000/s so the write-back keeps up, then waits until every
   queue is written; prints process CPU µs per registration (all threads, write-back included;
   the datagrams meet the UDP fast path first, as the transport would hand them over), RSS
   growth per registration and, with --trace, the live Python memory growth per registration
   (tracemalloc; slow).
   Then every device registers again the same way: CPU µs per re-registration (a refresh of a
   live registration: no transition, no event).
2. 20,000 keepalive MESSAGEs from the registered devices; prints process CPU µs per keepalive
   (server side only: the answers are not parsed).
A complement to sip_bench.py (real sockets, Kamailio side by side): faster, for finding where
memory and CPU go, not for the issue's ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from camgrid.app import Platform  # noqa: E402
from camgrid.config import load_settings  # noqa: E402
from camgrid.gb28181.sip.digest import Challenge, authorization_header  # noqa: E402
from camgrid.gb28181.sip.message import parse_message  # noqa: E402
from camgrid.gb28181.sip.transport import Peer  # noqa: E402
from camgrid.registry.devices import new_device_row, secret_columns  # noqa: E402
from camgrid.store.engine import open_store  # noqa: E402
from camgrid.store.tables import devices  # noqa: E402

PLATFORM = "34020000002000000001"
REALM = PLATFORM[:10]
SECRET = "Bench-Secret-2718"


def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
    return 0


def device(i: int) -> str:
    return f"3402000000132{i:07d}"


async def register_all(n: int, receive, sent: list[bytes], call: str) -> float:  # noqa: ANN001
    """Digest-register devices 0..n-1 at about 2,000/s; returns the simulated client's own CPU."""
    client_cpu = 0.0
    for i in range(n):
        dev = device(i)
        head = (f"REGISTER sip:{PLATFORM}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK{i}{call}a\r\n"
                f"From: <sip:{dev}@{REALM}>;tag={i}\r\nTo: <sip:{dev}@{REALM}>\r\nCall-ID: r{i}{call}@bench\r\n"
                f"Max-Forwards: 70\r\nContact: <sip:{dev}@127.0.0.1:5999>\r\nExpires: 3600\r\n")
        receive((head + "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n").encode())
        c0 = time.thread_time()
        challenge = Challenge.parse(parse_message(sent.pop()).get("WWW-Authenticate") or "")
        auth = authorization_header(challenge, dev, SECRET, "REGISTER", f"sip:{PLATFORM}@{REALM}")
        client_cpu += time.thread_time() - c0
        receive((head.replace(f"{i}{call}a\r\n", f"{i}{call}b\r\n", 1)
                 + f"CSeq: 2 REGISTER\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n").encode())
        if not sent.pop().startswith(b"SIP/2.0 200"):
            raise SystemExit(f"registration of {dev} was not accepted")
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # ~2,000 registrations/s
    return client_cpu


async def written(platform: Platform) -> None:
    for _ in range(600):  # until every write-back queue is empty
        await asyncio.sleep(0.2)
        if not (platform.health.pending_writes or platform.recorder.buffered or platform.signaling.writer._pending):
            return


async def main(n: int, trace: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="sip-inprocess-"))
    url = f"sqlite:///{work}/camgrid.db"
    engine = open_store(url)
    rows = [new_device_row(device(i)) | secret_columns(device(i), SECRET, REALM) for i in range(n)]
    with engine.begin() as conn:
        conn.execute(devices.insert(), rows)
    del rows
    engine.dispose()
    settings = load_settings(data_dir=work, environ={}, overrides={
        "sip": {"host": "127.0.0.1", "port": 0, "id": PLATFORM, "transports": ["udp"], "overload_lag_s": 0},
        "catalog": {"query_on_register": False}, "store": {"database_url": url}})
    platform = Platform(settings, announce=lambda text: None, serve_http=False)
    await platform.start()
    stack, sent, peer = platform.signaling.stack, [], Peer("udp", "127.0.0.1", 5999)
    stack.transports.send = lambda data, to: sent.append(data)  # type: ignore[method-assign]
    fast = stack.transports.fast

    def receive(data: bytes) -> None:
        answer = fast(data, peer.host, peer.port) if fast is not None else None
        if answer is None:
            stack._receive(data, peer)
        elif answer[0]:
            sent.append(answer[0])
    gc.collect()
    rss_before = rss()
    if trace:
        tracemalloc.start()
        snap = tracemalloc.take_snapshot()
    cpu0, client_cpu = time.process_time(), 0.0
    client_cpu += await register_all(n, receive, sent, "a")
    await written(platform)
    cpu1 = time.process_time()
    await asyncio.sleep(1)
    gc.collect()
    print(f"devices: {n}, online: {platform.health.counts()['online']}")
    print(f"CPU per registration (in-process, two REGISTERs, write-back included; the simulated "
          f"client's own work taken out): {(cpu1 - cpu0 - client_cpu) / n * 1e6:.1f} µs")
    print(f"RSS growth per registration: {(rss() - rss_before) / n:.0f} B")
    cpu2 = time.process_time()
    client_cpu = await register_all(n, receive, sent, "b")  # every device again: refreshes, no transition
    await written(platform)
    print(f"CPU per re-registration (refresh of a registered device, same method): "
          f"{(time.process_time() - cpu2 - client_cpu) / n * 1e6:.1f} µs")
    if trace:
        live = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename"))
        tracemalloc.stop()
        print(f"live Python memory per registration (tracemalloc): {live / n:.0f} B")
    messages = []
    for k in range(20_000):
        dev = device(k % n)
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{k}</SN>\r\n'
                f"<DeviceID>{dev}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
        messages.append((f"MESSAGE sip:{PLATFORM}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK{k}k\r\n"
                         f"From: <sip:{dev}@{REALM}>;tag=k{k}\r\nTo: <sip:{PLATFORM}@{REALM}>\r\nCall-ID: k{k}@bench\r\n"
                         f"CSeq: 20 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    t0 = time.process_time()
    for k, data in enumerate(messages):
        stack._receive(data, peer)
        if k % 500 == 499:
            sent.clear()
            await asyncio.sleep(0)
    t1 = time.process_time()
    print(f"CPU per keepalive (in-process, no socket): {(t1 - t0) / len(messages) * 1e6:.1f} µs")
    await platform.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--trace", action="store_true", help="also measure live Python memory with tracemalloc (slow)")
    args = ap.parse_args()
    asyncio.run(main(args.devices, args.trace))
