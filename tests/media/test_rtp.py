"""RTP packets and RFC 4571 framing: round trips, the fields GB devices use, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from camgrid.media.rtp import RtpError, RtpPacket, TcpDeframer, frame_tcp, parse_rtp, seq_after


def test_round_trip_with_marker_csrcs_and_extension():
    pkt = RtpPacket(96, 65535, 90000 * 3, 0x0A0B0C0D, b"\x00\x00\x01\xba" + b"x" * 100, marker=True,
                    csrcs=(1, 2), extension=(0xBEDE, b"\x10\x20\x30\x40"))
    data = pkt.to_bytes()
    assert data[0] == 0x80 | 0x10 | 2 and data[1] == 0x80 | 96
    assert parse_rtp(data) == pkt


def test_padding_is_removed():
    body = RtpPacket(96, 1, 2, 3, b"abc").to_bytes()
    padded = bytes([body[0] | 0x20]) + body[1:] + b"\x00\x00\x03"
    assert parse_rtp(padded).payload == b"abc"


@pytest.mark.parametrize("data,words", [
    (b"\x80" * 11, "shorter"),
    (bytes([0x40]) + b"\x00" * 11, "version 1"),
    (bytes([0x8F]) + b"\x00" * 11, "CSRC"),
    (bytes([0x90]) + b"\x00" * 11 + b"\x00\x00\x00\x05", "extension"),
    (bytes([0xA0]) + b"\x00" * 11 + b"\x00\x00\x00\x09", "padding"),
])
def test_broken_packets_are_refused_with_a_reason(data, words):
    with pytest.raises(RtpError, match=words):
        parse_rtp(data)


def test_sequence_order_wraps():
    assert seq_after(1, 0) and seq_after(0, 65535) and not seq_after(65535, 0) and not seq_after(5, 5)
    assert seq_after(0x7FFF, 0) and not seq_after(0x8000, 0)


def test_tcp_frames_survive_any_cut_and_skip_empty_frames():
    packets = [RtpPacket(96, i, i * 3600, 7, bytes([i]) * (i * 97 % 1400)).to_bytes() for i in range(20)]
    stream = b"".join(frame_tcp(p) for p in packets[:10]) + b"\x00\x00" + b"".join(frame_tcp(p) for p in packets[10:])
    for step in (1, 3, 1000, len(stream)):
        deframer = TcpDeframer()
        got = []
        for i in range(0, len(stream), step):
            got += deframer.feed(stream[i:i + step])
        assert got == packets and deframer.pending == 0
    with pytest.raises(RtpError):
        frame_tcp(b"x" * 70000)


@hsettings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_datagrams_parse_or_raise_rtp_error(data):
    try:
        pkt = parse_rtp(data)
    except RtpError:
        return
    assert len(pkt.payload) <= len(data) - 12


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10), st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_deframer_returns_exactly_what_was_framed(payloads, cuts):
    stream = b"".join(frame_tcp(p) for p in payloads)
    deframer, got, pos, i = TcpDeframer(), [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += deframer.feed(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    assert got == [p for p in payloads if p] and deframer.pending == 0
