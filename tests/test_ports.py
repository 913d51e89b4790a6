"""Listeners that cannot open say which one, why, and what chooses it (camgrid/ports.py): the
SIP transports on real sockets, and `camgrid serve` itself with its HTTP port taken."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys

import pytest

from camgrid.gb28181.sip.transport import Transports
from camgrid.ports import ListenError, bind_error


@pytest.mark.parametrize("code, words", [
    (errno.EADDRINUSE, "SIP UDP 0.0.0.0:5060 is already in use: another program (or another camgrid) listens there"),
    (errno.EACCES, "ports below 1024 need root or CAP_NET_BIND_SERVICE"),
    (errno.EADDRNOTAVAIL, "this machine has no address 0.0.0.0; set sip.host"),
    (errno.ENOBUFS, "SIP UDP 0.0.0.0:5060: raw"),  # other causes: the system's words
])
def test_the_cause_in_words(code, words):
    error = bind_error("SIP UDP", "0.0.0.0", 5060, OSError(code, "raw"), setting="sip.port")
    assert isinstance(error, OSError) and error.errno == code
    assert words in str(error)


@pytest.mark.parametrize("kind, taken", [("udp", socket.SOCK_DGRAM), ("tcp", socket.SOCK_STREAM)])
async def test_a_sip_port_taken_is_named(kind, taken):
    with socket.socket(socket.AF_INET, taken) as holder:
        holder.bind(("127.0.0.1", 0))
        if taken == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        transports = Transports(lambda *a: None, host="127.0.0.1", port=port, kinds=[kind], max_size=65536)
        with pytest.raises(ListenError) as caught:
            await transports.start()
    assert caught.value.errno == errno.EADDRINUSE
    assert str(caught.value).startswith(f"SIP {kind.upper()} 127.0.0.1:{port} is already in use")
    assert "--sip-port" in str(caught.value)


def test_serve_with_its_http_port_taken_says_so(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "camgrid", "serve", "--data-dir", str(tmp_path), "--http-port",
                               str(port), "--sip-port", "0", "--sip-id", "34020000002000000001"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"error: cannot start: HTTP 127.0.0.1:{port} is already in use" in done.stderr
    assert "Traceback" not in done.stderr
