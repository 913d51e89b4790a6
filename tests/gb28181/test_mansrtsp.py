"""MANSRTSP playback control: what we send parses back; what devices send is read leniently."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camgrid.gb28181 import mansrtsp


@pytest.mark.parametrize("control", [mansrtsp.pause(3), mansrtsp.resume(4), mansrtsp.seek(5, 120), mansrtsp.speed(6, 4.0),
                                     mansrtsp.speed(7, 0.5)])
def test_round_trip(control):
    assert mansrtsp.parse(control.to_bytes()) == control


def test_device_spellings():
    c = mansrtsp.parse(b"play rtsp/1.0\ncseq: 9\nscale: 2.0\nrange: NPT=30.5-\n")
    assert (c.method, c.cseq, c.scale, c.npt) == ("PLAY", 9, 2.0, 30.5)
    assert mansrtsp.parse(b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=now-\r\n\r\n").npt is None


@pytest.mark.parametrize("body", [b"", b"GET / HTTP/1.1\r\nCSeq: 1", b"PLAY RTSP/1.0\r\n", b"PLAY RTSP/1.0\r\nCSeq: x",
                                  b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: fast", b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: clock=1-",
                                  b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=-5-", "PLAY RTSP/1.0\r\nCSeq: 1 \u00e9".encode()])
def test_bad_bodies_are_named(body):
    with pytest.raises(mansrtsp.MansrtspError):
        mansrtsp.parse(body)


def test_speeds_outside_the_gb_set_are_refused():
    with pytest.raises(mansrtsp.MansrtspError):
        mansrtsp.speed(1, 3.0)


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_else(data):
    try:
        mansrtsp.parse(data)
    except mansrtsp.MansrtspError:
        pass
