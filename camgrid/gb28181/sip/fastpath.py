"""Native or pure-Python SIP hot path: which one this process runs, and why.

`camgrid.gb28181.sip._sipfast` (camgrid/gb28181/sip/_sipfast.c, built by `pip install -e .` where
a compiler and the Python headers are present) parses the clean shape of a SIP message, answers
a GB/T 28181 Keepalive in its plain shape, reads a plain REGISTER (the fields the registrar
needs, its digest parameters, the head of its answers), decides a REGISTER's two hot outcomes
(RegisterDecider: the challenge, and the check of a digest answer that verifies; the registrar
decides everything else, and does what follows a verified answer; the decider builds that
answer's 200 OK, which the registrar sends unless the answer is a replay), and reads
and writes UDP datagrams in batches (recvmmsg/sendmmsg). For anything it does not handle it
returns None and the pure-Python code runs, which stays the reference: tests/gb28181/sip/test_sipfast.py and test_sipfast_register.py
hold the two to the same results.

CAMGRID_NATIVE=0 (or false/no/off) turns it off for a process (camgrid.native loads it).
"""

from __future__ import annotations

import secrets
from types import ModuleType

from camgrid.native import load

API_VERSION = 4  # what this source expects of _sipfast.c (its API_VERSION)


def _load() -> tuple[ModuleType | None, str]:
    module, reason = load("camgrid.gb28181.sip._sipfast", API_VERSION)
    if module is not None:  # its To tags must never equal the Python stack's (headers.new_tag)
        module.set_tag_prefix("n" + secrets.token_hex(4), secrets.randbelow(1 << 24))
    return module, reason


native, REASON = _load()
NATIVE: bool = native is not None
parse = getattr(native, "parse", None)
keepalive = getattr(native, "keepalive", None)
register = getattr(native, "register", None)
RegisterDecider = getattr(native, "RegisterDecider", None)
recv_batch = getattr(native, "recv_batch", None)  # Linux only
send_batch = getattr(native, "send_batch", None)


def describe() -> str:
    return f"SIP fast path: {'native' if NATIVE else 'python'} ({REASON})"
