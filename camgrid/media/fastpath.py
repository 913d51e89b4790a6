"""Native or pure-Python media loops: which one this process runs, and why.

`camgrid.media._native` (camgrid/media/_native.c, built by `pip install -e .` where a compiler
and the Python headers are present) does the per-frame Annex B → length-prefixed conversion of
fMP4 fragments in one allocation, reads many UDP datagrams per system call (recvmmsg), and
demuxes PS into access units built in C as camgrid.media.ps.make_unit builds them
(camgrid.media.ps.NativePsDemuxer), including the in-order runs of RTP packets of a batch in one
call (NativePsDemuxer.feed_rtp, used by MediaStream.on_datagrams), and reads every
ready UDP stream socket of a node in one call per wake-up, demuxing the in-order runs straight
from its receive buffer (UdpDrain, used by camgrid.media.ingest). The pure-Python code beside each
use (camgrid.media.h26x.nal_bounds, FragmentWriter's Python path, socket.recv, PythonPsDemuxer
and make_unit, MediaStream.on_packet, one reader per socket) is the reference: tests/media/test_fastpath.py,
test_ps_native.py, test_stream_native.py and test_udp_drain_native.py hold both to the same output.

CAMGRID_NATIVE=0 (or false/no/off) turns the native module off for a process, e.g. to compare
or to rule it out; an install without it works the same, only slower. `NATIVE` says which one
runs, `REASON` why; the media node logs both at DEBUG when it starts and shows `native` in
its load.

This module only decides; it has no state beyond that decision.
"""

from __future__ import annotations

from types import ModuleType

from camgrid.native import load

API_VERSION = 8  # what this source expects of _native.c (its API_VERSION)


def _load() -> tuple[ModuleType | None, str]:
    return load("camgrid.media._native", API_VERSION)


native, REASON = _load()
NATIVE: bool = native is not None
recv_many = getattr(native, "recv_many", None)  # Linux only
recv_many_from = getattr(native, "recv_many_from", None)  # Linux only
UdpDrain = getattr(native, "UdpDrain", None)  # Linux only: camgrid.media.ingest.UdpDrain


def describe() -> str:
    return f"media fast path: {'native' if NATIVE else 'python'} ({REASON})"
