"""The native SIP hot path (camgrid.gb28181.sip._sipfast) against the Python reference.

The contract: for any input, the native parser either declines (None) or gives exactly what
parse_message_python gives; the native keepalive answer is byte for byte what SipStack.respond
sends for the same datagram, with the same checks (only the To tag differs: each side has its
own counter). The clean shapes devices send must be taken natively, or the fast path would be
silently idle. The whole signaling suite also runs with CAMGRID_NATIVE=0 (the last test).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camgrid.gb28181 import manscdp
from camgrid.gb28181.sip import fastpath
from camgrid.gb28181.sip.headers import user_of
from camgrid.gb28181.sip.message import SipError, SipMessage, parse_message_python
from camgrid.gb28181.sip.stack import SipStack
from camgrid.gb28181.sip.transport import Peer
from sip_mutations import mutations

ROOT = Path(__file__).resolve().parents[3]
native = pytest.mark.skipif(not fastpath.NATIVE, reason=f"native SIP path not available: {fastpath.REASON}")

PLATFORM = "34020000002000000001"
DEVICE = "34020000001320000001"


def keepalive_body(sn: int = 7, decl: str = '<?xml version="1.0" encoding="GB2312"?>', sep: str = "\r\n") -> bytes:
    return (f"{decl}{sep}<Notify>{sep}<CmdType>Keepalive</CmdType>{sep}<SN>{sn}</SN>{sep}"
            f"<DeviceID>{DEVICE}</DeviceID>{sep}<Status>OK</Status>{sep}</Notify>{sep}").encode()


def request(method: str = "MESSAGE", body: bytes = b"", *, via: str = "SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK77",
            extra: str = "", content_type: str = "Application/MANSCDP+xml", to_tag: str = "") -> bytes:
    head = (f"{method} sip:{PLATFORM}@3402000000 SIP/2.0\r\n"
            f"Via: {via}\r\n"
            f"From: <sip:{DEVICE}@3402000000>;tag=abc\r\n"
            f"To: <sip:{PLATFORM}@3402000000>{to_tag}\r\n"
            f"Call-ID: 9f2c@192.168.1.64\r\n"
            f"CSeq: 20 {method}\r\n"
            f"{extra}"
            + (f"Content-Type: {content_type}\r\n" if body else "")
            + "Max-Forwards: 70\r\nUser-Agent: IP Camera\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


CORPUS = [
    request(body=keepalive_body()),
    request(body=keepalive_body(decl='<?xml version="1.0" encoding="UTF-8"?>', sep="\n")),
    request(body=keepalive_body(decl="", sep="")),
    request("REGISTER", extra="Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\nExpires: 3600\r\n"
                              'Authorization: Digest username="34020000001320000001", realm="3402000000", '
                              'nonce="abc", uri="sip:34020000002000000001@3402000000", response="0123", '
                              "algorithm=MD5, qop=auth, nc=00000001, cnonce=\"x\"\r\nX-GB-Ver: 3.0\r\n"),
    request("NOTIFY", body=b"<?xml version=\"1.0\"?><Notify><CmdType>Catalog</CmdType></Notify>",
            extra="Event: presence\r\nSubscription-State: active;expires=3600\r\n"),
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:c@d>;tag=2\r\nCall-ID: c1\r\nCSeq: 3 INVITE\r\nContent-Length: 4\r\n\r\nv=0\n",
    b"SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKy\r\ni: c2\r\nCSeq: 1 REGISTER\r\n"
    b"WWW-Authenticate: Digest realm=\"3402000000\", nonce=\"n\"\r\nl: 0\r\n\r\n",
    b"MESSAGE sip:x@y SIP/2.0\nv: SIP/2.0/UDP h:1;branch=b\nf: <sip:d@r>;tag=1\nt: <sip:x@y>\ni: c\n"
    b"CSeq: 1 message\nX-custom-HEADER: v\nc: application/manscdp+xml\n\n<a/>",
]


def native_message(data: bytes, max_size: int = 65536, stream: bool = False) -> SipMessage | None:
    parsed = fastpath.parse(data, max_size, stream)
    return None if parsed is None else SipMessage(*parsed)


@native
@pytest.mark.parametrize("data", CORPUS, ids=range(len(CORPUS)))
def test_clean_messages_are_taken_natively_and_parse_the_same(data):
    taken = native_message(data)
    assert taken is not None, "the native parser declined a clean message"
    assert taken == parse_message_python(data)


@native
def test_stream_framing_drops_an_undeclared_body_like_python():
    data = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n" \
           b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\ntrailing"
    for stream in (False, True):
        assert native_message(data, stream=stream) == parse_message_python(data, stream=stream)


# Edits that devices and attackers make: casing, compact names, blanks, folds, commas, odd bytes.
_EDITS = [b" ", b"\t", b"\r\n", b"\n", b",", b":", b";", b"\x00", b"\xe4\xb8\xad", b"\r", b"\r\n ", b"v: ",
          b"Content-Length: 5", b"CSeq: 1 REGISTER", b"SIP/2.0", b"<", b">", b"@", b"tag=", b"rport", b"received=1.2.3.4"]


def mutated():
    return mutations(CORPUS[:5] + CORPUS[7:], _EDITS)


@native
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_native_parse_declines_or_agrees_with_python(data, stream):
    taken = native_message(data, stream=stream)
    if taken is None:
        return
    assert taken == parse_message_python(data, stream=stream)


@native
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_native_parse_of_random_bytes_declines_or_agrees(data):
    taken = native_message(data)
    if taken is not None:
        assert taken == parse_message_python(data)


@native
def test_oversize_is_left_to_python():
    data = CORPUS[0]
    assert fastpath.parse(data, len(data) - 1, False) is None
    with pytest.raises(SipError):
        parse_message_python(data, max_size=len(data) - 1)


# -- keepalive answers ---------------------------------------------------------------------------
def python_answer(data: bytes, host: str, port: int) -> tuple[bytes, tuple[str, int]] | None:
    """What the general path sends for a keepalive: SipStack's receive path and respond()."""
    sent: list[tuple[bytes, Peer]] = []
    answered: list[SipMessage] = []

    def handler(req: SipMessage, peer: Peer) -> None:
        if "manscdp" not in req.content_type:
            return
        body = manscdp.parse_manscdp(req.body)
        if body.cmd_type == "Keepalive" and body.root == "Notify":
            user_of(req.get("From") or "")
            answered.append(stack.respond(req, peer, 200, idempotent=True))

    stack = SipStack(handler, user_agent="camgrid")
    stack.transports.send = lambda out, to: sent.append((out, to)) or True  # type: ignore[method-assign]
    try:
        stack._receive(data, Peer("udp", host, port))
    except Exception:  # noqa: BLE001 - the handler's parse errors: no answer
        return None
    if not answered:
        return None
    out, to = sent[-1]
    return out, (to.host, to.port)


def without_to_tag(answer: bytes) -> bytes:
    return re.sub(rb"(\r\nTo: [^\r]*);tag=[0-9a-z]+\r\n", rb"\1;tag=X\r\n", answer)


@native
@pytest.mark.parametrize("via,host", [
    ("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK77", "10.1.1.1"),   # NAT: received and rport
    ("SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK77", "192.168.1.64"),       # nothing to change
    ("SIP/2.0/UDP 192.168.1.64;branch=z9hG4bK77;rport", "192.168.1.64"),      # no port, rport last
    ("SIP/2.0/UDP   cam.example ; branch = z9hG4bK77 ;rport", "10.0.0.9"),     # blanks, a host name
])
def test_keepalive_answer_is_what_the_stack_sends(via, host):
    data = request(body=keepalive_body(), via=via)
    fast = fastpath.keepalive(data, host, 40000, "camgrid")
    assert fast is not None
    sender, utf8, reply_port, answer = fast
    reference, (ref_host, ref_port) = python_answer(data, host, 40000)
    assert sender == DEVICE and utf8 is False
    assert (host, reply_port) == (ref_host, ref_port)
    assert without_to_tag(answer) == without_to_tag(reference)
    assert b";tag=n" in answer  # the native module's own tag prefix


@native
def test_keepalive_charset_and_existing_to_tag():
    data = request(body=keepalive_body(decl="<?xml version='1.0' ENCODING = 'utf-8' ?>"), to_tag=";tag=dev1")
    sender, utf8, _, answer = fastpath.keepalive(data, "127.0.0.1", 5060, "camgrid")
    assert utf8 is True and manscdp.parse_manscdp(request_body(data)).charset == "UTF-8"
    assert b"To: <sip:34020000002000000001@3402000000>;tag=dev1\r\n" in answer


def request_body(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[1]


@native
@pytest.mark.parametrize("data", [
    request(body=keepalive_body().replace(b"Keepalive", b"Catalog")),        # another command
    request(body=keepalive_body(), content_type="text/plain"),               # not MANSCDP
    request("NOTIFY", body=keepalive_body()),                                # not a MESSAGE
    request(body=keepalive_body().replace(b"<Status>OK</Status>", b"<Status>OK</Status><Info/>")),
    request(body=keepalive_body(), via="SIP/2.0/UDP 1.2.3.4;branch=z;received=5.6.7.8"),
    request(body=keepalive_body(), via="SIP/2.0/TCP 1.2.3.4;branch=z"),
])
def test_other_shapes_go_the_general_way(data):
    assert fastpath.keepalive(data, "127.0.0.1", 5060, "camgrid") is None


@native
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(["10.0.0.1", "192.168.1.64"]), st.integers(1, 65535))
def test_native_keepalive_declines_or_answers_as_the_stack(data, host, port):
    fast = fastpath.keepalive(data, host, port, "camgrid")
    if fast is None:
        return
    sender, utf8, reply_port, answer = fast
    msg = parse_message_python(data)
    body = manscdp.parse_manscdp(msg.body)
    assert (body.root, body.cmd_type) == ("Notify", "Keepalive")
    assert sender == user_of(msg.get("From") or "")
    assert utf8 == (body.charset == "UTF-8")
    reference = python_answer(data, host, port)
    assert reference is not None
    assert without_to_tag(answer) == without_to_tag(reference[0])
    assert (host, reply_port) == reference[1]


# -- UDP batches ---------------------------------------------------------------------------------
@pytest.mark.skipif(fastpath.recv_batch is None, reason="recvmmsg/sendmmsg: Linux with the native module")
def test_recv_and_send_batches_on_loopback():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client.bind(("127.0.0.1", 0))
    server.setblocking(False)
    client.settimeout(2)
    try:
        assert fastpath.recv_batch(server.fileno(), 8, 2048) == []
        for i in range(5):
            client.sendto(b"datagram %d" % i, server.getsockname())
        got = fastpath.recv_batch(server.fileno(), 8, 2048)
        assert [(d, h, p) for d, h, p in got] == [(b"datagram %d" % i, "127.0.0.1", client.getsockname()[1]) for i in range(5)]
        answers = [(b"answer %d" % i, "127.0.0.1", client.getsockname()[1]) for i in range(3)]
        assert fastpath.send_batch(server.fileno(), answers) == 3
        assert [client.recvfrom(100)[0] for _ in range(3)] == [b"answer 0", b"answer 1", b"answer 2"]
        with pytest.raises(ValueError, match="numeric address"):
            fastpath.send_batch(server.fileno(), [(b"x", "not-an-address", 1)])
        with pytest.raises(ValueError):
            fastpath.recv_batch(server.fileno(), 0, 10)
    finally:
        server.close()
        client.close()


# -- the fallback ----------------------------------------------------------------------------------
def test_the_python_path_runs_the_sip_tests_with_native_off():
    env = dict(os.environ, CAMGRID_NATIVE="0")
    tests = ROOT / "tests"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(tests / "gb28181" / "sip" / "test_message.py"), str(tests / "gb28181" / "sip" / "test_stack.py"),
         str(tests / "signaling" / "test_registrar.py"), str(tests / "signaling" / "test_fast_keepalive.py"),
         str(tests / "signaling" / "test_fast_register.py"), str(tests / "signaling" / "test_overload.py"),
         str(tests / "signaling" / "test_register_replay.py")],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_a_module_built_from_other_source_is_not_used(monkeypatch):
    import types

    monkeypatch.delenv("CAMGRID_NATIVE", raising=False)
    stale = types.ModuleType("camgrid.gb28181.sip._sipfast")  # an old build: no API_VERSION
    monkeypatch.setitem(sys.modules, "camgrid.gb28181.sip._sipfast", stale)
    module, reason = fastpath._load()
    assert module is None and "rebuild" in reason
    monkeypatch.setenv("CAMGRID_NATIVE", "off")
    assert fastpath._load() == (None, "turned off (CAMGRID_NATIVE=off)")
