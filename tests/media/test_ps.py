"""Program Stream demuxing as devices send it: frames across RTP payload cuts, the map's codecs,
PTS/DTS, key frames, garbage, and fuzzing."""

from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from camgrid.media.ps import AUDIO_ID, VIDEO_ID, PsDemuxer, guess_video_codec, mux_ps

SPS, PPS = b"\x00\x00\x00\x01\x67\x42\x00\x1e\xab", b"\x00\x00\x00\x01\x68\xce\x3c\x80"
IDR, P = b"\x00\x00\x00\x01\x65", b"\x00\x00\x00\x01\x41"
H265_VPS, H265_IDR = b"\x00\x00\x00\x01\x40\x01\x0c", b"\x00\x00\x00\x01\x26\x01"
STREAMS = {VIDEO_ID: "h264", AUDIO_ID: "g711a"}


def h264_frames(n: int, size: int = 3000) -> list[tuple[bytes, int, bool]]:
    frames = []
    for i in range(n):
        key = i % 25 == 0
        body = (SPS + PPS + IDR if key else P) + bytes((i * 7 + j) % 251 for j in range(size + i * 13))
        frames.append((body, 3600 * i + 900000, key))
    return frames


def stream(frames, with_map=True) -> bytes:
    return b"".join(mux_ps(VIDEO_ID, data, pts, streams=STREAMS if with_map else None, keyframe=key)
                    for data, pts, key in frames)


def demux_in_cuts(data: bytes, cut: int) -> tuple[PsDemuxer, list]:
    demux, units = PsDemuxer(), []
    for i in range(0, len(data), cut):
        units += demux.feed(data[i:i + cut])
    return demux, units + demux.flush()


def test_frames_come_back_whole_however_the_stream_is_cut():
    frames = h264_frames(30)
    data = stream(frames)
    for cut in (1400, 1, 7, 65536):
        demux, units = demux_in_cuts(data, cut)
        assert [u.data for u in units] == [f[0] for f in frames]
        assert [u.pts for u in units] == [f[1] for f in frames]
        assert [u.keyframe for u in units] == [f[2] for f in frames]
        assert {u.codec for u in units} == {"h264"} and demux.resyncs == 0 and demux.packs == 30


def test_large_frames_span_several_pes_packets():
    big = SPS + PPS + IDR + bytes(range(256)) * 800  # ~200 KB: four PES packets
    data = mux_ps(VIDEO_ID, big, 1234567, 1230000, streams=STREAMS, keyframe=True)
    assert data.count(b"\x00\x00\x01\xe0") >= 4
    _, units = demux_in_cuts(data, 1400)
    assert len(units) == 1 and units[0].data == big and (units[0].pts, units[0].dts) == (1234567, 1230000)


def test_the_map_names_h265_and_audio():
    streams = {VIDEO_ID: "h265", AUDIO_ID: "g711a"}
    data = (mux_ps(VIDEO_ID, H265_VPS + H265_IDR + b"\x11" * 500, 90000, streams=streams, keyframe=True)
            + mux_ps(AUDIO_ID, b"\xd5" * 320, 90000) + mux_ps(VIDEO_ID, b"\x00\x00\x01\x02\x01" + b"\x22" * 300, 93600))
    _, units = demux_in_cuts(data, 500)
    assert [(u.codec, u.is_video, u.keyframe) for u in units] == [
        ("h265", True, True), ("g711a", False, True), ("h265", True, False)]


def test_without_a_map_video_is_recognised_by_its_nal_units():
    _, units = demux_in_cuts(stream(h264_frames(3), with_map=False), 1400)
    assert [u.codec for u in units] == ["h264"] * 3
    assert guess_video_codec(H265_VPS + H265_IDR) == "h265" and guess_video_codec(b"\x01\x02") == "unknown"


def test_garbage_between_packs_is_skipped_and_counted():
    frames = h264_frames(6)
    packs = [mux_ps(VIDEO_ID, d, p, streams=STREAMS, keyframe=k) for d, p, k in frames]
    data = packs[0] + packs[1] + b"\xff\x13garbage\x00\x00" + packs[2] + packs[3][:40] + packs[4] + packs[5]
    demux, units = demux_in_cuts(data, 1400)
    got = [u.pts for u in units]
    assert [frames[i][1] for i in (0, 1, 2, 4, 5)] == [p for p in got if p != frames[3][1]]
    assert demux.resyncs > 0 and demux.dropped_bytes > 0


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 600))
def test_random_bytes_never_raise(data, cut):
    demux_in_cuts(data, cut)


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=2000), min_size=1, max_size=8), st.integers(1, 3000))
def test_any_payloads_round_trip(payloads, cut):
    data = b"".join(mux_ps(AUDIO_ID, p, 1000 * (i + 1)) for i, p in enumerate(payloads))
    _, units = demux_in_cuts(data, cut)
    assert [u.data for u in units] == payloads


def test_a_frame_that_lost_a_piece_is_dropped_and_the_next_survives():
    big = SPS + PPS + IDR + bytes(range(256)) * 600  # three PES packets
    first = mux_ps(VIDEO_ID, big, 90000, streams=STREAMS, keyframe=True)
    second_pes = first.find(b"\x00\x00\x01\xe0", first.find(b"\x00\x00\x01\xe0") + 4)
    damaged = first[:second_pes + 100]  # the second PES is cut short
    after = mux_ps(VIDEO_ID, P + b"\x33" * 400, 93600)
    demux, units = demux_in_cuts(damaged + after, 1400)
    assert [(u.pts, u.data[:5]) for u in units] == [(93600, P)]
    assert demux.resyncs >= 1
