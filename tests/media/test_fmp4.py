"""Fragmented MP4: the box layout of init segments and fragments, and round trips through FFmpeg
(PyAV): real H.264/H.265 frames muxed one or many to a fragment decode to the same count, size
and timestamps; with the in-band parameter sets removed they decode from avcC/hvcC alone."""

from __future__ import annotations

import struct

import pytest
from test_h26x import encode  # the encoded test streams, cached across both files

from camgrid.media.fmp4 import NON_SYNC_SAMPLE, SYNC_SAMPLE, FragmentWriter, Sample, init_segment, read_boxes
from camgrid.media.h26x import (
    H264_AUD, H264_PPS, H264_SPS, H265_AUD, H265_PPS, H265_SPS, H265_VPS, avcc, hvcc, nal_type, split_annexb, track_from_frame,
)

BASE = 90000 * 3600  # an hour in: decode times need not start at zero
# codec, width, height, pix_fmt, profile: cropped sizes, and the avcC trailer's chroma format and bit depths
STREAMS = {
    "h264-high": ("h264", 1278, 718, "yuv420p", "high"),
    "h264-baseline": ("h264", 320, 240, "yuv420p", "baseline"),
    "h264-444": ("h264", 321, 243, "yuv444p", None),
    "h265-main": ("h265", 638, 358, "yuv420p", None),
    "h265-main10": ("h265", 320, 240, "yuv420p10le", None),
}
H264, H265 = STREAMS["h264-high"], STREAMS["h265-main"]


def samples_of(codec: str, width: int, height: int, pix_fmt: str = "yuv420p", profile: str | None = None) -> list[Sample]:
    """The encoder's packets as samples; its DTS start below zero (B-frames), so all move up by BASE."""
    packets = encode(codec, width, height, pix_fmt=pix_fmt, profile=profile)
    out = []
    for i, (data, pts, dts, key) in enumerate(packets):
        next_dts = packets[i + 1][2] if i + 1 < len(packets) else dts + 3600
        out.append(Sample(data, BASE + dts, BASE + pts, next_dts - dts, key))
    return out


def children(data: bytes, box: tuple[str, int, int], skip: int = 0) -> dict[str, tuple[str, int, int]]:
    """The boxes inside `box`; `skip` bytes of its own fields come first (full box header, entry counts)."""
    _, offset, size = box
    return {b[0]: b for b in read_boxes(data, offset + 8 + skip, offset + size)}


def body(data: bytes, box: tuple[str, int, int]) -> bytes:
    return data[box[1] + 8:box[1] + box[2]]


def path(data: bytes, *names: str) -> tuple[str, int, int]:
    skips = {"stsd": 8, "dref": 8, "avc1": 78, "hvc1": 78}  # fields before the child boxes
    box = {b[0]: b for b in read_boxes(data)}[names[0]]
    for name in names[1:]:
        box = children(data, box, skips.get(box[0], 0))[name]
    return box


# -- layout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [H264, H265], ids=["h264", "h265"])
def test_init_segment_layout(stream):
    track = track_from_frame(stream[0], samples_of(*stream)[0].data)
    init = init_segment(track)
    assert [b[0] for b in read_boxes(init)] == ["ftyp", "moov"] and sum(b[2] for b in read_boxes(init)) == len(init)
    entry, record = ("avc1", avcc(track)) if track.codec == "h264" else ("hvc1", hvcc(track))
    assert body(init, path(init, "ftyp")) == b"isom\x00\x00\x02\x00isomiso6mp41" + entry.encode()
    assert list(children(init, path(init, "moov"))) == ["mvhd", "trak", "mvex"]
    assert struct.unpack(">I", body(init, path(init, "moov", "mvhd"))[12:16]) == (90000,)
    tkhd = body(init, path(init, "moov", "trak", "tkhd"))
    assert tkhd[:4] == b"\x00\x00\x00\x03" and struct.unpack(">II", tkhd[-8:]) == (track.width << 16, track.height << 16)
    assert body(init, path(init, "moov", "trak", "mdia", "hdlr"))[8:12] == b"vide"
    stbl = path(init, "moov", "trak", "mdia", "minf", "stbl")
    assert list(children(init, stbl)) == ["stsd", "stts", "stsc", "stsz", "stco"]
    sample_entry = body(init, path(init, "moov", "trak", "mdia", "minf", "stbl", "stsd", entry))
    assert struct.unpack(">HH", sample_entry[24:28]) == (track.width, track.height)
    assert body(init, path(init, "moov", "trak", "mdia", "minf", "stbl", "stsd", entry, entry[:3] + "C")) == record
    assert path(init, "moov", "trak", "mdia", "minf", "dinf", "dref", "url ")[2] == 12
    assert body(init, path(init, "moov", "mvex", "trex"))[4:12] == b"\x00\x00\x00\x01\x00\x00\x00\x01"


def test_fragment_layout():
    samples = samples_of(*H264)[:5]  # I P B B P: composition offsets both ways
    writer = FragmentWriter(track_id=7)
    data = writer.fragment(samples)
    moof, mdat = read_boxes(data)
    assert (moof[0], mdat[0], mdat[1] + mdat[2]) == ("moof", "mdat", len(data))
    assert struct.unpack(">II", body(data, children(data, moof)["mfhd"])) == (0, 1)
    traf = children(data, moof)["traf"]
    assert struct.unpack(">II", body(data, children(data, traf)["tfhd"])) == (0x020000, 7)
    assert struct.unpack(">IQ", body(data, children(data, traf)["tfdt"])) == (1 << 24, samples[0].dts)
    trun = body(data, children(data, traf)["trun"])
    flags, count, data_offset = struct.unpack(">IIi", trun[:12])
    assert (flags, count, data_offset) == (0x01000F01, 5, moof[2] + 8)
    fields = [struct.unpack(">IIIi", trun[12 + 16 * i:28 + 16 * i]) for i in range(count)]
    assert [f[0] for f in fields] == [s.duration for s in samples]
    assert [f[2] for f in fields] == [SYNC_SAMPLE] + [NON_SYNC_SAMPLE] * 4
    decode_times = [samples[0].dts + sum(s.duration for s in samples[:i]) for i in range(count)]
    assert [f[3] + t for f, t in zip(fields, decode_times)] == [s.pts for s in samples]
    assert any(f[3] < 0 for f in fields) or any(f[3] > 0 for f in fields)
    # the mdat holds each frame's NAL units behind 4-byte lengths, start codes gone
    pos = moof[1] + data_offset
    for sample, (_, size, _, _) in zip(samples, fields):
        nals, end = [], pos + size
        while pos < end:
            length = int.from_bytes(data[pos:pos + 4])
            nals.append(data[pos + 4:pos + 4 + length])
            pos += 4 + length
        assert pos == end and nals == split_annexb(sample.data)
    assert pos == len(data)
    assert [read_boxes(writer.fragment(samples[i:i + 1]))[0][0] for i in range(2)] == ["moof", "moof"]
    assert writer.sequence == 3


def test_fragment_rejects_what_mp4_cannot_hold():
    writer = FragmentWriter()
    with pytest.raises(ValueError):
        writer.fragment([])
    with pytest.raises(ValueError, match="NAL"):
        writer.fragment([Sample(b"no start code", 0, 0, 3600, True)])
    with pytest.raises(ValueError, match="DTS"):
        writer.fragment([Sample(b"\x00\x00\x01\x65", -1, 0, 3600, True)])
    with pytest.raises(ValueError, match="composition offset"):
        writer.fragment([Sample(b"\x00\x00\x01\x65", 0, 1 << 31, 3600, True)])
    assert writer.sequence == 0  # nothing was written


def test_read_boxes_stops_at_a_box_cut_short():
    boxes = struct.pack(">I4s", 12, b"free") + b"abcd" + struct.pack(">I4sQ", 1, b"mdat", 20) + b"1234"
    assert read_boxes(boxes) == [("free", 0, 12), ("mdat", 12, 20)]
    assert read_boxes(boxes[:-1]) == [("free", 0, 12)]
    assert read_boxes(boxes + struct.pack(">I4s", 0, b"mdat") + b"rest") == [("free", 0, 12), ("mdat", 12, 20), ("mdat", 32, 12)]
    assert read_boxes(boxes + struct.pack(">I4s", 3, b"bad!") + bytes(8)) == [("free", 0, 12), ("mdat", 12, 20)]
    assert read_boxes(b"\x00\x00\x00") == []


# -- round trips through FFmpeg ---------------------------------------------------------------
def strip_parameter_sets(sample: Sample, codec: str) -> Sample:
    drop = {H264_SPS, H264_PPS, H264_AUD} if codec == "h264" else {H265_VPS, H265_SPS, H265_PPS, H265_AUD}
    kept = b"".join(b"\x00\x00\x00\x01" + nal for nal in split_annexb(sample.data) if nal_type(codec, nal) not in drop)
    return Sample(kept, sample.dts, sample.pts, sample.duration, sample.keyframe)


def decode_fmp4(tmp_path, data: bytes) -> tuple[list, tuple[int, int]]:
    av = pytest.importorskip("av")
    file = tmp_path / "out.mp4"
    file.write_bytes(data)
    with av.open(str(file)) as container:
        stream = container.streams.video[0]
        frames = [(frame.pts, frame.width, frame.height) for frame in container.decode(stream)]
        return frames, (stream.codec_context.width, stream.codec_context.height)


@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
@pytest.mark.parametrize("per_fragment", [1, 4, "gop"])
@pytest.mark.parametrize("in_band", [True, False], ids=["in-band", "config-only"])
def test_fragments_decode_with_ffmpeg(tmp_path, stream, per_fragment, in_band):
    codec, width, height = stream[:3]
    samples = samples_of(*stream)
    track = track_from_frame(codec, samples[0].data)
    if not in_band:  # then only avcC/hvcC can tell the decoder the parameter sets
        samples = [strip_parameter_sets(s, codec) for s in samples]
    writer = FragmentWriter()
    if per_fragment == "gop":  # a fragment per GOP, as an HLS segment would cut it
        keys = [i for i, s in enumerate(samples) if s.keyframe] + [len(samples)]
        groups = [samples[a:b] for a, b in zip(keys, keys[1:])]
    else:
        groups = [samples[i:i + per_fragment] for i in range(0, len(samples), per_fragment)]
    data = init_segment(track) + b"".join(writer.fragment(group) for group in groups)
    assert writer.sequence == len(groups)
    frames, size = decode_fmp4(tmp_path, data)
    assert size == (width, height)
    assert len(frames) == len(samples) == 24
    assert all((w, h) == (width, height) for _, w, h in frames)
    assert [pts for pts, _, _ in frames] == sorted(s.pts for s in samples)


@pytest.mark.parametrize("codec, width, height, pix_fmt", [
    ("h264", 320, 240, "yuv420p"), ("h264", 1278, 718, "yuv420p"), ("h265", 638, 358, "yuv420p"),
    ("h265", 320, 240, "yuv420p10le")])
def test_the_codec_string_read_back_from_an_init_segment_is_the_tracks(codec, width, height, pix_fmt):
    from camgrid.media.fmp4 import codec_string_of
    from camgrid.media.h26x import track_from_frame

    track = track_from_frame(codec, encode(codec, width, height, pix_fmt=pix_fmt)[0][0])
    init = init_segment(track)
    assert codec_string_of(init) == track.codec_string
    assert codec_string_of(init[:40]) is None  # cut short: no answer rather than a wrong one
    assert codec_string_of(b"") is None
