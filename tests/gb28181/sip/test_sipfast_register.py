"""The native REGISTER reader (_sipfast.register) against the Python reference.

The contract: for any datagram it declines (None) or gives what the general path reads of it
(the From user, Authorization, Contact, Expires, X-GB-Ver, as SipMessage.get gives them), the
head of an answer that is byte for byte what SipStack.respond sends (only the To tag differs:
each side has its own counter), and digest fields that equal Credentials.parse of the same
Authorization. Clean shapes must be taken, or the fast path would be silently idle.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camgrid.gb28181.sip import fastpath
from camgrid.gb28181.sip.digest import Credentials, DigestError
from camgrid.gb28181.sip.headers import NameAddr
from camgrid.gb28181.sip.message import SipError, SipMessage, parse_message_python
from camgrid.gb28181.sip.stack import SipStack
from camgrid.gb28181.sip.transport import Peer
from sip_mutations import mutations

native = pytest.mark.skipif(not fastpath.NATIVE, reason=f"native SIP path not available: {fastpath.REASON}")

PLATFORM = "34020000002000000001"
DEVICE = "34020000001320000001"
AUTH = ('Digest username="34020000001320000001", realm="3402000000", nonce="AAAA+/8=", '
        'uri="sip:34020000002000000001@3402000000", response="9a0b", algorithm=MD5, cnonce="c1", qop=auth, nc=00000001')


def register(*, via: str = "SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK9", auth: str | None = None,
             extra: str = "Expires: 3600\r\n", to_tag: str = "") -> bytes:
    return (f"REGISTER sip:{PLATFORM}@3402000000 SIP/2.0\r\n"
            f"Via: {via}\r\n"
            f"From: <sip:{DEVICE}@3402000000>;tag=r1\r\n"
            f"To: <sip:{DEVICE}@3402000000>{to_tag}\r\n"
            f"Call-ID: 77a1@192.168.1.64\r\n"
            f"CSeq: 2 REGISTER\r\n"
            f"Contact: <sip:{DEVICE}@192.168.1.64:5060>\r\n"
            + (f"Authorization: {auth}\r\n" if auth is not None else "")
            + f"Max-Forwards: 70\r\nUser-Agent: IPC\r\n{extra}Content-Length: 0\r\n\r\n").encode()


CORPUS = [
    register(),
    register(auth=AUTH),
    register(auth=AUTH.replace("algorithm=MD5, ", ""), extra="X-GB-Ver: 3.0\r\nExpires: 0\r\n"),
    register(auth='Digest username="34020000001320000001",realm="3402000000",nonce="n",uri="sip:x@y",response="r"'),
    register(via="SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKx", extra="", to_tag=";tag=dev"),
    register(extra="Expires: 3600\r\nRecord-Route: <sip:proxy;lr>\r\n"),
]


def python_answer(data: bytes, host: str, port: int) -> tuple[SipMessage, bytes, tuple[str, int]] | None:
    """The request as the general path reads it, and its 401 as SipStack.respond sends it."""
    sent: list[tuple[bytes, Peer]] = []
    seen: list[SipMessage] = []

    def handler(req: SipMessage, peer: Peer) -> None:
        seen.append(req)
        stack.respond(req, peer, 401, headers=[("WWW-Authenticate", 'Digest realm="r", nonce="n"')], idempotent=True)

    stack = SipStack(handler, user_agent="camgrid")
    stack.transports.send = lambda out, to: sent.append((out, to)) or True  # type: ignore[method-assign]
    stack._receive(data, Peer("udp", host, port))
    if not seen or not sent:
        return None
    out, to = sent[-1]
    return seen[-1], out, (to.host, to.port)


def native_answer(head: bytes) -> bytes:
    return (b"SIP/2.0 401 Unauthorized\r\n" + head + b'WWW-Authenticate: Digest realm="r", nonce="n"\r\n'
            + b"Content-Length: 0\r\n\r\n")


def without_to_tag(answer: bytes) -> bytes:
    return re.sub(rb"(\r\nTo: [^\r]*);tag=[0-9a-z]+\r\n", rb"\1;tag=X\r\n", answer)


def credentials_fields(header: str) -> tuple | None:
    try:
        c = Credentials.parse(header)
    except DigestError:
        return None
    return (c.username, c.realm, c.nonce, c.uri, c.response, c.algorithm, c.qop, c.nc, c.cnonce)


def assert_agrees(data: bytes, host: str, port: int) -> tuple | None:
    fast = fastpath.register(data, host, port, "camgrid")
    if fast is None:
        return None
    user, authorization, contact, expires, gb_ver, reply_port, head, digest = fast
    reference = python_answer(data, host, port)
    assert reference is not None, "taken natively but the general path does not answer it"
    req, answer, to = reference
    assert req.method == "REGISTER" and req.body == b""
    assert user == NameAddr.parse(req.get("From") or "").uri.user
    assert (authorization, contact, expires, gb_ver) == (req.get("Authorization"), req.get("Contact"),
                                                         req.get("Expires"), req.get("X-GB-Ver"))
    assert (host, reply_port) == to
    assert without_to_tag(native_answer(head)) == without_to_tag(answer)
    if digest is not None:
        assert digest == credentials_fields(authorization)
    return fast


@native
@pytest.mark.parametrize("data", CORPUS, ids=range(len(CORPUS)))
def test_clean_registers_are_taken_natively_and_read_the_same(data):
    fast = assert_agrees(data, "10.1.1.1", 40000)
    assert fast is not None
    if fast[1] is not None:  # a clean Authorization is parsed in C too
        assert fast[7] is not None


@native
def test_the_answer_head_rewrites_via_and_keeps_an_existing_to_tag():
    _, _, _, _, _, reply_port, head, _ = fastpath.register(CORPUS[4], "10.0.0.2", 5062, "camgrid")
    assert reply_port == 5062
    assert head.startswith(b"Via: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKx\r\n")
    assert b"To: <sip:34020000001320000001@3402000000>;tag=dev\r\n" in head
    _, _, _, _, _, reply_port, head, _ = fastpath.register(CORPUS[0], "10.9.9.9", 41000, "camgrid")
    assert reply_port == 41000 and b";rport=41000;branch=z9hG4bK9;received=10.9.9.9\r\n" in head
    assert re.search(rb"\r\nTo: <sip:34020000001320000001@3402000000>;tag=n[0-9a-f]+\r\n", b"\r\n" + head)


@native
@pytest.mark.parametrize("data", [
    register().replace(b"REGISTER sip", b"OPTIONS sip").replace(b"2 REGISTER", b"2 OPTIONS"),  # not a REGISTER
    register().replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 2\r\n\r\nhi"),           # a body
    register(via="SIP/2.0/TCP 1.2.3.4;branch=z"),                                                # not UDP
    register(via="SIP/2.0/UDP 1.2.3.4;branch=z;received=5.6.7.8"),                               # received already
    register().replace(b"From: <sip:", b"From: sip:").replace(b">;tag=r1", b";tag=r1"),          # From without <>
    register().replace(b"@3402000000>;tag=r1", b"@:3402000000>;tag=r1"),                         # no host (Python: 400)
    register().replace(b"@3402000000>;tag=r1", b"@f: ,3402000000>;tag=r1"),                      # a port that is no number
    register().replace(b"@3402000000>;tag=r1", b"@3402000000:70000>;tag=r1"),                    # port out of range
    register().replace(b"@3402000000>;tag=r1", b"@a@3402000000>;tag=r1"),                       # two '@'
    register().replace(b"@3402000000>;tag=r1", b"@3402000000?x=1>;tag=r1"),                     # URI headers
    register().replace(b"From: <sip:", b'From: "a<b" <sip:'),                                    # a '<' before the URI
])
def test_other_shapes_go_the_general_way(data):
    assert fastpath.register(data, "127.0.0.1", 5060, "camgrid") is None


# Edits that devices and attackers make: casing, compact names, blanks, commas, odd bytes.
_EDITS = [b" ", b"\t", b"\r\n", b"\n", b",", b":", b";", b"=", b'"', b"\\", b"\x00", b"\xe4\xb8\xad", b"\r",
          b"Digest ", b"username=", b"nonce=", b"qop=", b"algorithm=sha-256", b"f: ", b"Expires: 0", b"tag=", b"rport"]


def mutated():
    return mutations(CORPUS, _EDITS)


@native
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(["10.0.0.1", "192.168.1.64"]), st.integers(1, 65535))
def test_native_register_declines_or_reads_as_the_general_path(data, host, port):
    try:
        assert_agrees(data, host, port)
    except SipError:  # the reference could not read what C took: a disagreement
        pytest.fail("the native reader took a REGISTER the Python parser refuses")


_REQUIRED = [("username", DEVICE), ("nonce", "AAAA+/8="), ("uri", "sip:a@b"), ("response", "9a0b")]
_OPTIONAL = ["realm", "algorithm", "qop", "nc", "cnonce", "opaque", "UserName", "NONCE", "x"]
_VALUES = ["34020000001320000001", "3402000000", "AAAA+/8=", "md5", "SHA-256", "auth", "auth,auth-int", "", "a,b",
           "x y", 'q\\"t', "00000001"]


@st.composite
def authorization(draw):
    """Mostly usable Authorization values (the required fields, in any order and case) with
    optional, repeated and odd parameters, odd quoting and separators."""
    params = list(_REQUIRED)
    if draw(st.integers(0, 9)) == 0:
        params.pop(draw(st.integers(0, len(params) - 1)))
    params += [(k, draw(st.sampled_from(_VALUES))) for k in draw(st.lists(st.sampled_from(_OPTIONAL), max_size=5))]
    params = draw(st.permutations(params))
    parts = []
    for key, value in params:
        if draw(st.integers(0, 4)) == 0:
            key = key.upper()
        eq = draw(st.sampled_from(["=", "=", " = ", "= "]))
        parts.append(f'{key}{eq}"{value}"' if draw(st.booleans()) else f"{key}{eq}{value}")
    sep = draw(st.sampled_from([", ", ",", ", ", " ,  ", ",,"]))
    scheme = draw(st.sampled_from(["Digest", "Digest", "digest", "DIGEST", "Basic", "Digest "]))
    return f"{scheme} {sep.join(parts)}"


@native
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(authorization())
def test_digest_fields_decline_or_equal_credentials_parse(header):
    fast = fastpath.register(register(auth=header), "10.0.0.1", 5060, "camgrid")
    assert fast is not None  # the header is plain ASCII; only the digest part may be declined
    assert fast[1] == header.strip()
    if fast[7] is not None:
        assert fast[7] == credentials_fields(header)


@native
def test_a_typical_authorization_is_parsed_in_c():
    for header in (AUTH, AUTH.replace(", ", ","), AUTH.replace("Digest ", "Digest  "), AUTH.lower().replace("digest", "Digest")):
        fast = fastpath.register(register(auth=header), "10.0.0.1", 5060, "camgrid")
        assert fast[7] is not None and fast[7] == credentials_fields(header)
