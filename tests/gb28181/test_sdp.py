from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camgrid.gb28181.sdp import MediaDescription, SdpError, SessionDescription, build_sdp, make_ssrc, parse_sdp

PLATFORM_INVITE = b"""v=0
o=34020000002000000001 0 0 IN IP4 10.0.0.5
s=Play
c=IN IP4 10.0.0.5
t=0 0
m=video 30000 RTP/AVP 96 97 98 99
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:97 MPEG4/90000
a=rtpmap:98 H264/90000
a=rtpmap:99 H265/90000
y=0102003853
"""

DEVICE_ANSWER = (
    "v=0\r\no=34020000001320000001 2510 2510 IN IP4 192.168.1.64\r\ns=Play\r\nc=IN IP4 192.168.1.64\r\n"
    "t=0 0\r\nm=video 15060 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n"
    "a=username:34020000001320000001\r\na=password:12345678\r\na=filesize:0\r\n"
    "y=0102003853\r\nf=v/2/5/25/1/4096a/1/8/1\r\n"
).encode()

PLAYBACK_TCP = b"""v=0
o=34020000002000000001 0 0 IN IP4 10.0.0.5
s=Playback
u=34020000001320000001:0
c=IN IP4 10.0.0.5
t=1715925600 1715929200
m=video 30002 TCP/RTP/AVP 96
a=recvonly
a=setup:passive
a=connection:new
a=rtpmap:96 PS/90000
a=downloadspeed:4
y=1102000001
"""


def test_platform_invite() -> None:
    sd = parse_sdp(PLATFORM_INVITE)
    assert (sd.origin_user, sd.origin_address, sd.session_name, sd.connection_address) == (
        "34020000002000000001", "10.0.0.5", "Play", "10.0.0.5")
    assert (sd.time_start, sd.time_end, sd.ssrc, sd.f_field, sd.uri) == (0, 0, "0102003853", None, None)
    (m,) = sd.media
    assert (m.media, m.port, m.proto, m.formats, m.direction, m.is_tcp) == (
        "video", 30000, "RTP/AVP", ["96", "97", "98", "99"], "recvonly", False)
    assert m.rtpmap == {96: "PS/90000", 97: "MPEG4/90000", 98: "H264/90000", 99: "H265/90000"}


def test_build_round_trip_and_crlf() -> None:
    for raw in (PLATFORM_INVITE, DEVICE_ANSWER, PLAYBACK_TCP):
        sd = parse_sdp(raw)
        built = build_sdp(sd)
        assert built.endswith(b"\r\n") and b"\n" not in built.replace(b"\r\n", b"")
        assert parse_sdp(built) == sd
    text = build_sdp(parse_sdp(PLATFORM_INVITE)).decode()
    assert text == PLATFORM_INVITE.decode().replace("\n", "\r\n")  # canonical order kept exactly


def test_device_answer() -> None:
    sd = parse_sdp(DEVICE_ANSWER)
    m = sd.media[0]
    assert (m.direction, m.file_size, m.attribute("username"), sd.ssrc, sd.f_field) == (
        "sendonly", 0, "34020000001320000001", "0102003853", "v/2/5/25/1/4096a/1/8/1")
    assert sd.media_address == "192.168.1.64" and sd.origin_session_id == "2510"


def test_playback_over_tcp() -> None:
    sd = parse_sdp(PLAYBACK_TCP)
    m = sd.media[0]
    assert (sd.session_name, sd.uri, sd.time_start, sd.time_end) == ("Playback", "34020000001320000001:0", 1715925600, 1715929200)
    assert (m.is_tcp, m.setup, m.tcp_connection, m.download_speed, m.attribute("absent")) == (True, "passive", "new", 4, None)


def test_built_from_scratch() -> None:
    sd = SessionDescription(origin_user="34020000002000000001", origin_address="10.0.0.5", session_name="Download",
                            uri="34020000001320000001:0", connection_address="10.0.0.5", time_start=1, time_end=2,
                            media=[MediaDescription("video", 30004, "RTP/AVP", ["96"], {96: "PS/90000"},
                                                    [("recvonly", None), ("downloadspeed", "8")])],
                            ssrc=make_ssrc(True, "3402000000", 12))
    text = build_sdp(sd).decode()
    assert "a=downloadspeed:8\r\n" in text and text.endswith("y=1200000012\r\n")
    assert parse_sdp(text.encode()) == sd
    sd.session_name = "Play\r\nb=evil"
    with pytest.raises(SdpError, match="line break"):
        build_sdp(sd)


def test_media_level_connection_and_tolerance() -> None:
    raw = b"\r\n v=0\no=- 0 0 IN IP4 1.2.3.4\nt=0 0\nm=audio 8000/2 RTP/AVP 8\nc=IN IP4 5.6.7.8\nb=AS:64\na=sendrecv\n\n"
    sd = parse_sdp(raw)
    assert (sd.session_name, sd.media_address, sd.media[0].port_count, sd.media[0].other_lines) == (
        "Play", "5.6.7.8", 2, [("b", "AS:64")])
    assert parse_sdp(build_sdp(sd)) == sd


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "start with v=0"),
    (b"hello world", "start with v=0"),
    (b"v=0\ns=Play\n", "no o= line"),
    (b"v=0\no=a b c\n", "o= must be"),
    (b"v=0\no=a 0 0 IN IP4 x\nt=now 0\n", "t= must be two integers"),
    (b"v=0\no=a 0 0 IN IP4 x\nm=video 70000 RTP/AVP 96\n", "port must be 0-65535"),
    (b"v=0\no=a 0 0 IN IP4 x\nm=video\n", "m= must be"),
    (b"v=0\no=a 0 0 IN IP4 x\nc=IP4 x\n", "c= must be"),
    (b"v=0\no=a 0 0 IN IP4 x\nm=video 1 RTP/AVP 96\na=rtpmap:x PS/90000\n", "a=rtpmap"),
    (b"v=0\no=a 0 0 IN IP4 x\nnot a line\n", "not an SDP line"),
    (b"v=0\no=a 0 0 IN IP4 x\nv=0\n", "second v="),
    (b"v=0\no=a 0 0 IN IP4 \xff\xff\xff\n", "neither UTF-8 nor GB18030"),
    (b"v=0\n" + b"a=x\n" * 5000, "limit"),
])
def test_garbage_raises_sdp_error(raw: bytes, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_sdp(raw)


def test_make_ssrc() -> None:
    assert make_ssrc(False, "3402000000", 1) == "0200000001"
    assert make_ssrc(True, "34020000002000000001", 3853) == "1200003853"
    assert make_ssrc(False, "4401020049", 3853) == "0102003853"  # the notes' y= example
    assert make_ssrc(False, "4401020049", 10001) == "0102000001"  # the sequence wraps at 10000
    with pytest.raises(ValueError, match="realm"):
        make_ssrc(False, "3402", 1)
    with pytest.raises(ValueError, match="seq"):
        make_ssrc(False, "3402000000", -1)


@given(st.booleans(), st.from_regex(r"\A[0-9]{10}\Z"), st.integers(0, 10**6))
def test_ssrc_shape(history: bool, realm: str, seq: int) -> None:
    ssrc = make_ssrc(history, realm, seq)
    assert len(ssrc) == 10 and ssrc.isdigit() and ssrc[0] == str(int(history)) and ssrc[1:6] == realm[3:8]
