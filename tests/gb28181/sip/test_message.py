import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camgrid.gb28181.sip.message import (
    MessageTooLarge,
    SipError,
    SipMessage,
    SipParseError,
    canonical_name,
    frame_stream,
    parse_message,
)

REGISTER = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1234\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=abc\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 1@192.168.1.64\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Expires: 3600\r\n"
    b"X-GB-Ver: 3.0\r\n"
    b"Content-Length: 0\r\n\r\n"
)

KEEPALIVE_BODY = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>7</SN>\r\n'
    "<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
).encode()


def message_with_body(body: bytes, compact: bool = False) -> bytes:
    head = (
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        + ("v: " if compact else "Via: ") + "SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bKk1\r\n"
        + ("f: " if compact else "From: ") + "<sip:34020000001320000001@3402000000>;tag=1\r\n"
        + ("t: " if compact else "To: ") + "<sip:34020000002000000001@3402000000>\r\n"
        + ("i: " if compact else "Call-ID: ") + "k1\r\n"
        "CSeq: 20 MESSAGE\r\n"
        + ("c: " if compact else "Content-Type: ") + "Application/MANSCDP+xml\r\n"
        + ("l: " if compact else "Content-Length: ") + f"{len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_parses_a_register():
    msg = parse_message(REGISTER)
    assert msg.method == "REGISTER" and msg.uri == "sip:34020000002000000001@3402000000"
    assert msg.cseq == (1, "REGISTER")
    assert msg.get("x-gb-ver") == "3.0"
    assert msg.get("EXPIRES") == "3600"
    assert msg.body == b""


def test_compact_forms_and_body_as_bytes():
    msg = parse_message(message_with_body(KEEPALIVE_BODY, compact=True))
    assert msg.get("Via").startswith("SIP/2.0/TCP")
    assert msg.call_id == "k1"
    assert msg.content_type == "application/manscdp+xml"
    assert msg.body == KEEPALIVE_BODY


def test_round_trip_keeps_headers_and_body():
    original = parse_message(message_with_body(KEEPALIVE_BODY))
    again = parse_message(original.to_bytes())
    assert again.headers == original.headers
    assert again.body == original.body


def test_gb18030_bytes_in_a_header_survive_a_round_trip():
    raw = REGISTER.replace(b"From: <", b'From: "\xc9\xe3\xcf\xf1\xbb\xfa" <')
    msg = parse_message(raw)
    assert parse_message(msg.to_bytes()).get("From") == msg.get("From")
    assert b'"\xc9\xe3\xcf\xf1\xbb\xfa"' in msg.to_bytes()


def test_folded_headers_and_comma_joined_vias():
    raw = REGISTER.replace(b"Max-Forwards: 70\r\n", b"Subject: a,\r\n  b\r\n").replace(
        b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1234",
        b"Via: SIP/2.0/UDP 1.1.1.1;branch=z9hG4bKa, SIP/2.0/UDP 2.2.2.2;branch=z9hG4bKb")
    msg = parse_message(raw)
    assert msg.get("Subject") == "a, b"
    assert msg.get_all("Via") == ["SIP/2.0/UDP 1.1.1.1;branch=z9hG4bKa", "SIP/2.0/UDP 2.2.2.2;branch=z9hG4bKb"]


def test_udp_body_beyond_content_length_is_ignored():
    raw = message_with_body(KEEPALIVE_BODY) + b"trailing junk"
    assert parse_message(raw).body == KEEPALIVE_BODY


@pytest.mark.parametrize("raw, fragment", [
    (b"", "empty"),
    (b"HELLO\r\n\r\n", "request line"),
    (REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: x REGISTER"), "CSeq"),
    (REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: 1 INVITE"), "does not match"),
    (REGISTER.replace(b"Call-ID: 1@192.168.1.64\r\n", b""), "Call-ID"),
    (REGISTER.replace(b"Content-Length: 0", b"Content-Length: 50"), "Content-Length"),
    (REGISTER.replace(b"Content-Length: 0", b"Content-Length: -1"), "negative"),
    (REGISTER.replace(b"Max-Forwards: 70", b"Max Forwards 70"), "malformed header"),
    (b"SIP/2.0 999 Nope\r\nVia: x\r\n\r\n", "out of range"),
])
def test_malformed_messages_get_clear_errors(raw, fragment):
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert fragment.lower() in str(err.value).lower()


def test_oversize_message_is_refused_with_413():
    with pytest.raises(MessageTooLarge) as err:
        parse_message(message_with_body(b"x" * 70000))
    assert err.value.status == 413


def test_stream_framing_takes_whole_messages_and_waits_for_the_rest():
    one = message_with_body(KEEPALIVE_BODY)
    buf = bytearray(b"\r\n\r\n" + one + one[:50])
    assert frame_stream(buf) == one
    assert frame_stream(buf) is None
    buf += one[50:]
    assert frame_stream(buf) == one
    assert buf == bytearray()


def test_stream_framing_refuses_an_oversize_declared_body():
    buf = bytearray(message_with_body(b"").replace(b"Content-Length: 0", b"Content-Length: 999999"))
    with pytest.raises(MessageTooLarge):
        frame_stream(buf)


def test_header_helpers():
    msg = SipMessage(method="OPTIONS", uri="sip:a@b")
    msg.add("via", "SIP/2.0/UDP h;branch=z9hG4bKx")
    msg.add("Via", "SIP/2.0/UDP g;branch=z9hG4bKy")
    msg.set("VIA", "SIP/2.0/UDP only")
    assert msg.get_all("Via") == ["SIP/2.0/UDP only"]
    msg.remove("via")
    assert msg.get("Via") is None
    assert canonical_name("call-id") == "Call-ID" and canonical_name("i") == "Call-ID"
    assert canonical_name("x-custom-thing") == "X-Custom-Thing"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_sip_errors(data):
    try:
        parse_message(data)
    except SipError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_messages_raise_only_sip_errors(data):
    raw = bytearray(message_with_body(KEEPALIVE_BODY))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "delete" and len(raw) > 1:
            del raw[pos]
        else:
            raw.insert(pos, data.draw(st.sampled_from(b"\r\n:; <>\"=,\x00\xff")))
    try:
        parse_message(bytes(raw))
    except SipError:
        pass
    buf = bytearray(raw)
    try:
        frame_stream(buf)
    except SipError:
        pass
