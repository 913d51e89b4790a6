"""H.264/H.265 elementary streams: Annex B splitting, exp-Golomb, SPS sizes and profiles from real
encoder output (libx264/libx265 through PyAV), codec strings, decoder configuration records,
and fuzzing: a damaged parameter set raises H26xError, never anything else."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from camgrid.media.h26x import (
    BitReader, H26xError, SpsInfo, VideoTrack, avcc, hvcc, nal_bounds, nal_type, parse_sps, split_annexb,
    to_length_prefixed, track_from_frame, unescape_rbsp,
)

X264_FAST = {"preset": "ultrafast", "x264-params": "keyint=10:bframes=2"}
X265_FAST = {"preset": "ultrafast", "x265-params": "log-level=none:keyint=10:bframes=2"}


def encode(codec: str, width: int, height: int, frames: int = 24, pix_fmt: str = "yuv420p",
           profile: str | None = None) -> tuple[tuple[bytes, int, int, bool], ...]:
    """`frames` frames of a moving gradient as the encoder's Annex B packets: (data, pts, dts,
    keyframe), 90 kHz at 25 fps, in decode order. Cached: the fMP4 tests use the same streams."""
    return _encode(codec, width, height, frames, pix_fmt, profile)


@lru_cache(maxsize=None)
def _encode(codec: str, width: int, height: int, frames: int, pix_fmt: str, profile: str | None):
    av = pytest.importorskip("av")
    ctx = av.CodecContext.create("libx264" if codec == "h264" else "libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base, ctx.framerate = Fraction(1, 90000), Fraction(25)
    ctx.options = dict(X264_FAST if codec == "h264" else X265_FAST)
    if profile == "baseline":  # no B-frames
        ctx.options["x264-params"] = "keyint=10"
    elif profile == "high":  # x264 picks the lowest profile that fits: the 8x8 transform needs High
        ctx.options["x264-params"] += ":8x8dct=1"
    if profile:
        ctx.profile = profile
    ctx.open()
    packets, pattern = [], b""
    for i in range(frames):
        frame = av.VideoFrame(width, height, pix_fmt)
        if not pattern:  # planes have padded rows, and 10-bit samples take two bytes
            pattern = bytes(range(256)) * (max(plane.buffer_size for plane in frame.planes) // 256 + 2)
        for k, plane in enumerate(frame.planes):
            shift = (i * 7 + k * 40) % 256  # the gradient moves, so there are real P/B frames
            plane.update(pattern[shift:shift + plane.buffer_size])
        frame.pts, frame.time_base = i * 3600, Fraction(1, 90000)
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return tuple((bytes(p), p.pts, p.dts, p.is_keyframe) for p in packets)


# (codec, width, height, pix_fmt, profile option, profile_idc, chroma_format_idc, bit depth)
STREAMS = [
    ("h264", 320, 240, "yuv420p", "baseline", 66, 1, 8),
    ("h264", 1278, 718, "yuv420p", "high", 100, 1, 8),  # cropped: 80x45 macroblocks less 2 pixels each way
    ("h264", 322, 243, "yuv422p", None, 122, 2, 8),  # 4:2:2: vertical crop unit 1
    ("h264", 321, 243, "yuv444p", None, 244, 3, 8),  # 4:4:4: crop unit 1 both ways
    ("h265", 320, 240, "yuv420p", None, 1, 1, 8),
    ("h265", 638, 358, "yuv420p", None, 1, 1, 8),  # cropped to 8x8 coding blocks: 640x360 less 2 each way
    ("h265", 321, 243, "yuv444p", None, 4, 3, 8),
    ("h265", 320, 240, "yuv420p10le", None, 2, 1, 10),
]


# -- Annex B ----------------------------------------------------------------------------------
def test_split_annexb_takes_3_and_4_byte_start_codes_and_drops_zeros_between():
    data = b"junk\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x00\x00\x01\x65\x88\x00\x00"
    assert split_annexb(data) == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]
    assert split_annexb(b"") == [] and split_annexb(b"\x65\x88") == [] and split_annexb(b"\x00\x00\x01") == []
    assert split_annexb(b"\x00\x00\x01\x00\x00\x01\x41") == [b"\x41"]  # an empty NAL unit is no NAL unit
    assert nal_bounds(b"\x00\x00\x01\x41\x00") == [(3, 4)]


def test_nal_types_and_length_prefixes():
    assert nal_type("h264", b"\x67\x42") == 7 and nal_type("h264", b"\x65") == 5
    assert nal_type("h265", b"\x40\x01") == 32 and nal_type("h265", b"\x26\x01") == 19
    with pytest.raises(H26xError):
        nal_type("h264", b"")
    with pytest.raises(H26xError):
        nal_type("mpeg4", b"\x00")
    assert to_length_prefixed([b"\x67\x42", b"\x65" * 3]) == b"\x00\x00\x00\x02\x67\x42\x00\x00\x00\x03\x65\x65\x65"


def test_emulation_prevention_bytes_are_removed():
    assert unescape_rbsp(b"\x00\x00\x03\x01") == b"\x00\x00\x01"
    assert unescape_rbsp(b"\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x00\x00"  # the zero count restarts after 03
    assert unescape_rbsp(b"\x00\x03\x00\x00\x03\x03") == b"\x00\x03\x00\x00\x03"
    assert unescape_rbsp(b"\x12\x34") == b"\x12\x34"


def test_bit_reader_reads_fixed_and_exp_golomb_fields():
    # 1 | 010 | 011 | 00100 | 00101 | 101 ... : ue 0, 1, 2, 3, 4, then u(3) = 5
    bits = BitReader(bytes([0b10100110, 0b01000010, 0b11010000]))
    assert [bits.ue() for _ in range(5)] == [0, 1, 2, 3, 4] and bits.u(3) == 5
    signed = BitReader(bytes([0b01001100, 0b10000101, 0b00000000]))  # ue 1, 2, 3, 4 → se 1, -1, 2, -2
    assert [signed.se() for _ in range(4)] == [1, -1, 2, -2]
    with pytest.raises(H26xError, match="truncated"):
        BitReader(b"\xff").u(9)
    with pytest.raises(H26xError, match="longer than 32 bits"):
        BitReader(bytes(5) + b"\xff").ue()


# -- real streams -----------------------------------------------------------------------------
@pytest.mark.parametrize("codec,width,height,pix_fmt,profile,profile_idc,chroma,depth", STREAMS)
def test_key_frames_give_the_encoded_size_and_profile(codec, width, height, pix_fmt, profile, profile_idc, chroma, depth):
    packets = encode(codec, width, height, pix_fmt=pix_fmt, profile=profile)
    keys = [data for data, _, _, key in packets if key]
    track = track_from_frame(codec, keys[0])
    assert track is not None and (track.codec, track.width, track.height) == (codec, width, height)
    info = track.info
    assert (info.profile_idc, info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma) == (
        profile_idc, chroma, depth, depth)
    types = {nal_type(codec, nal): nal for nal in split_annexb(keys[0])}
    sps_type = 7 if codec == "h264" else 33
    assert track.sps == types[sps_type] and track.pps == types[sps_type + 1]
    if codec == "h264":
        assert track.vps == b"" and track.codec_string == "avc1." + track.sps[1:4].hex()
        assert re.fullmatch(rf"avc1\.{profile_idc:02x}[0-9a-f]{{4}}", track.codec_string)
    else:
        assert track.vps == types[32] and info.max_sub_layers >= 1
        assert re.fullmatch(rf"hvc1\.{profile_idc}\.[0-9A-F]+\.L\d+(\.[0-9A-F]{{1,2}}){{0,6}}", track.codec_string)
    # frames without parameter sets describe no track
    assert all(track_from_frame(codec, data) is None for data, _, _, key in packets if not key)


def test_codec_strings_for_known_streams():
    assert track_from_frame("h264", encode("h264", 1278, 718, profile="high")[0][0]).codec_string == "avc1.64001f"
    assert track_from_frame("h264", encode("h264", 320, 240, profile="baseline")[0][0]).codec_string.startswith("avc1.42")
    main = track_from_frame("h265", encode("h265", 638, 358)[0][0])
    # Main (compatible with Main and Main 10), main tier, progressive frames
    assert main.codec_string == f"hvc1.1.6.L{main.info.level_idc}.90" and main.info.level_idc in (63, 90)
    assert track_from_frame("h265", encode("h265", 320, 240, pix_fmt="yuv420p10le")[0][0]).codec_string.startswith("hvc1.2.4.")


def test_hvc1_codec_string_follows_annex_e():
    def string(**fields) -> str:
        info = SpsInfo(**{"width": 16, "height": 16, "profile_idc": 1, "level_idc": 93,
                          "constraint_flags": 0xB0 << 40, "compatibility_flags": 0x60000000, **fields})
        return VideoTrack("h265", 16, 16, b"", b"", b"", info).codec_string

    assert string() == "hvc1.1.6.L93.B0"  # the standard's own example
    assert string(profile_space=1, tier=1, level_idc=120) == "hvc1.A1.6.H120.B0"
    assert string(constraint_flags=0xB0_00_23_00_00_00) == "hvc1.1.6.L93.B0.0.23"  # only trailing zero bytes go
    assert string(constraint_flags=0, compatibility_flags=0x80000000) == "hvc1.1.1.L93"


def test_decoder_configuration_records():
    h264 = track_from_frame("h264", encode("h264", 1278, 718, profile="high")[0][0])
    record = avcc(h264)
    assert record[:5] == bytes([1]) + h264.sps[1:4] + b"\xff"  # 4-byte lengths
    assert record[5] == 0xE1 and record[6:8] == len(h264.sps).to_bytes(2, "big")
    pps_at = 8 + len(h264.sps)
    assert record[8:pps_at] == h264.sps and record[pps_at] == 1
    assert record[pps_at + 3:pps_at + 3 + len(h264.pps)] == h264.pps
    assert record[-4:] == bytes([0xFD, 0xF8, 0xF8, 0])  # High: 4:2:0, 8 bits, no SPS extensions
    baseline = track_from_frame("h264", encode("h264", 320, 240, profile="baseline")[0][0])
    assert len(avcc(baseline)) == 11 + len(baseline.sps) + len(baseline.pps)  # no trailer

    h265 = track_from_frame("h265", encode("h265", 320, 240, pix_fmt="yuv420p10le")[0][0])
    record = hvcc(h265)
    rbsp = unescape_rbsp(h265.sps[2:])
    assert record[0] == 1 and record[1:13] == rbsp[1:13]  # general profile_tier_level, byte for byte
    assert record[16:19] == bytes([0xFD, 0xFA, 0xFA])  # 4:2:0, 10-bit luma and chroma
    assert record[21] & 3 == 3 and record[22] == 3
    pos, arrays = 23, []
    for _ in range(3):
        kind, count, size = record[pos] & 0x3F, int.from_bytes(record[pos + 1:pos + 3]), int.from_bytes(record[pos + 3:pos + 5])
        arrays.append((record[pos] >> 7, kind, count, record[pos + 5:pos + 5 + size]))
        pos += 5 + size
    assert pos == len(record)
    assert arrays == [(1, 32, 1, h265.vps), (1, 33, 1, h265.sps), (1, 34, 1, h265.pps)]


# -- damaged input ----------------------------------------------------------------------------
def test_truncated_parameter_sets_raise_h26x_error():
    for codec, width, height in (("h264", 1278, 718), ("h265", 638, 358)):
        track = track_from_frame(codec, encode(codec, width, height)[0][0])
        header = 1 if codec == "h264" else 2
        for cut in range(header, len(track.sps) - 1):
            sps = track.sps[:cut]
            try:
                info = parse_sps(codec, sps)
            except H26xError:
                continue
            # a few cuts only lose trailing fields (VUI) that the parser does not read
            assert (info.width, info.height) == (width, height)
        with pytest.raises(H26xError, match="truncated"):
            parse_sps(codec, track.sps[:header + 3])


def ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def rbsp(bits: str) -> bytes:
    bits += "1"  # rbsp_stop_one_bit, then zeros to a byte boundary
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def baseline_sps(width_mbs_minus1: int, height_units_minus1: int, crop: tuple[int, int, int, int] | None = None,
                 frame_mbs_only: bool = True) -> bytes:
    bits = ue(0) + ue(0) + ue(2) + ue(1) + "0" + ue(width_mbs_minus1) + ue(height_units_minus1)
    bits += ("1" if frame_mbs_only else "00") + "1"  # (mb_adaptive_frame_field_flag), direct_8x8_inference_flag
    bits += "1" + "".join(map(ue, crop)) if crop else "0"
    return b"\x67" + bytes([66, 0xC0, 30]) + rbsp(bits + "0")  # no VUI


def test_hand_made_sps_sizes_and_cropping():
    assert (parse_sps("h264", baseline_sps(19, 14)).width, parse_sps("h264", baseline_sps(19, 14)).height) == (320, 240)
    cropped = parse_sps("h264", baseline_sps(119, 67, (0, 0, 0, 4)))  # 1920x1088 less 8 rows: 4:2:0 counts pairs
    assert (cropped.width, cropped.height) == (1920, 1080)
    interlaced = parse_sps("h264", baseline_sps(44, 17, (0, 0, 0, 2), frame_mbs_only=False))  # map units are field MB rows
    assert (interlaced.width, interlaced.height) == (720, 576 - 8)


def test_damaged_sizes_raise_h26x_error():
    with pytest.raises(H26xError, match="pic_width_in_mbs_minus1"):
        parse_sps("h264", baseline_sps(1 << 20, 14))
    with pytest.raises(H26xError, match="picture size"):
        parse_sps("h264", baseline_sps(19, 14, (0, 160, 0, 0)))  # cropped to nothing
    with pytest.raises(H26xError, match="longer than 32 bits"):
        track_from_frame("h264", b"\x00\x00\x01\x67\x42\xc0\x1e" + bytes(6) + b"\x80\x00\x00\x01\x68\xce")
    with pytest.raises(H26xError, match="codec"):
        track_from_frame("mjpeg", b"")


NAL_HEADERS = [b"\x67", b"\x40\x01", b"\x42\x01", b"\x68", b"\x44\x01"]


@hsettings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(NAL_HEADERS), st.sampled_from(["h264", "h265"]))
def test_fuzzed_parameter_sets_raise_only_h26x_error(body, header, codec):
    frame = (b"\x00\x00\x00\x01\x40\x01\x0c" + b"\x00\x00\x01" + header + body
             + b"\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x44\x01\xc0")
    for data in (frame, body, header + body):
        try:
            track = track_from_frame(codec, data)
        except H26xError:
            continue
        assert track is None or (0 < track.width <= 0xFFFF and 0 < track.height <= 0xFFFF and track.codec_string)


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_annexb_splits_into_nonempty_units_without_start_codes(data):
    nals = split_annexb(data)
    assert all(nals) and not any(b"\x00\x00\x01" in nal or nal.endswith(b"\x00") for nal in nals)
    assert sum(map(len, nals)) <= len(data)


@hsettings(max_examples=100, deadline=None)
@given(st.data())
def test_fuzzed_real_sps_bits(data):
    """Real parameter sets with bytes changed: a readable SPS or H26xError."""
    codec = data.draw(st.sampled_from(["h264", "h265"]))
    track = track_from_frame(codec, encode(codec, *((1278, 718) if codec == "h264" else (638, 358)))[0][0])
    sps = bytearray(track.sps)
    for _ in range(data.draw(st.integers(1, 4))):
        sps[data.draw(st.integers(1, len(sps) - 1))] = data.draw(st.integers(0, 255))
    try:
        info = parse_sps(codec, bytes(sps))
    except H26xError:
        return
    assert 0 < info.width <= 0xFFFF and 0 < info.height <= 0xFFFF
