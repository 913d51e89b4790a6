"""Native or pure-Python SIP hot path: which one this process runs, and why.

`camgrid.gb28181.sip._sipfast` (camgrid/gb28181/sip/_sipfast.c, built by `pip install -e .` where
a compiler and the Python headers are present) parses the clean shape of a SIP message, answers
a GB/T 28181 Keepalive in its plain shape, and reads and writes UDP datagrams in batches
(recvmmsg/sendmmsg). For anything it does not handle it returns None and the pure-Python code
runs, which stays the reference: tests/gb28181/test_sipfast.py holds the two to the same
results.

CAMGRID_NATIVE=0 (or false/no/off) turns it off for a process, as for the media fast path.
"""

from __future__ import annotations

import os
import secrets
from types import ModuleType

_OFF = ("0", "false", "no", "off")
API_VERSION = 1  # what this source expects of _sipfast.c (its API_VERSION)


def _load() -> tuple[ModuleType | None, str]:
    setting = os.environ.get("CAMGRID_NATIVE", "").strip().lower()
    if setting in _OFF:
        return None, f"turned off (CAMGRID_NATIVE={setting})"
    try:
        from camgrid.gb28181.sip import _sipfast
    except ImportError as exc:
        return None, f"not built ({exc}); reinstall with a C compiler and the Python headers to build it"
    built = getattr(_sipfast, "API_VERSION", None)
    if built != API_VERSION:
        return None, f"built from other source (API {built}, expected {API_VERSION}): rebuild it with `pip install -e .`"
    # Its To tags must never equal the Python stack's (headers.new_tag): a prefix of its own.
    _sipfast.set_tag_prefix("n" + secrets.token_hex(4), secrets.randbelow(1 << 24))
    return _sipfast, f"loaded from {os.path.basename(getattr(_sipfast, '__file__', None) or '_sipfast')}"


native, REASON = _load()
NATIVE: bool = native is not None
parse = getattr(native, "parse", None)
keepalive = getattr(native, "keepalive", None)
recv_batch = getattr(native, "recv_batch", None)  # Linux only
send_batch = getattr(native, "send_batch", None)


def describe() -> str:
    return f"SIP fast path: {'native' if NATIVE else 'python'} ({REASON})"
