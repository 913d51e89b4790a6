"""Asking a device for its sub-stream in the Play INVITE's SDP, in each vendor's dialect, and
reading it back as a device would (camgrid.gb28181.sdp.stream_selector / requested_stream)."""

import pytest

from camgrid.gb28181.sdp import (MediaDescription, SdpError, SessionDescription, build_sdp, parse_sdp,
                                 requested_stream, stream_selector)


def offer(attrs):
    m = MediaDescription(port=30000, formats=["96"], rtpmap={96: "PS/90000"}, attributes=[("recvonly", None), *attrs])
    sd = SessionDescription(origin_user="34020000002000000001", origin_address="10.0.0.1", connection_address="10.0.0.1",
                            media=[m], ssrc="0100000001")
    return build_sdp(sd)


@pytest.mark.parametrize(("dialect", "line"), [
    ("streamnumber", b"a=streamnumber:1\r\n"), ("streamprofile", b"a=streamprofile:1\r\n"),
    ("stream", b"a=stream:1\r\n"), ("streammode", b"a=streamMode:sub\r\n")])
def test_each_dialect_writes_its_line_and_a_device_that_knows_it_reads_it(dialect, line):
    text = offer(stream_selector(dialect, 1))
    assert line in text and text.index(b"a=rtpmap") < text.index(line) < text.index(b"y=")
    media = parse_sdp(text).media[0]
    assert requested_stream(media, (dialect,)) == 1
    others = tuple(d for d in ("streamnumber", "streamprofile", "stream", "streammode") if d != dialect)
    assert requested_stream(media, others) is None  # a device of another vendor sends its main stream


def test_all_writes_every_dialect_and_none_writes_nothing():
    assert [k for k, _ in stream_selector("all", 1)] == ["streamnumber", "streamprofile", "stream", "streamMode"]
    assert stream_selector("none", 1) == []
    assert stream_selector("streammode", 0) == [("streamMode", "main")]
    assert requested_stream(parse_sdp(offer(stream_selector("all", 0))).media[0]) == 0
    assert requested_stream(parse_sdp(offer([])).media[0]) is None


def test_bad_values_are_refused_or_ignored():
    with pytest.raises(SdpError):
        stream_selector("substream", 1)
    with pytest.raises(SdpError):
        stream_selector("stream", 10)
    assert requested_stream(MediaDescription(attributes=[("streamprofile", "x"), ("streamMode", "hd")])) is None
