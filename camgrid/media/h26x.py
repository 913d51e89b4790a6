"""H.264 and H.265 elementary streams: NAL units, sequence parameter sets, decoder configuration.

Devices send Annex B (start-code delimited NAL units); MP4 wants each NAL unit behind a 4-byte
length and the parameter sets in the sample entry (avcC / hvcC). `track_from_frame` reads a key
frame's parameter sets into a `VideoTrack`: its size in pixels (after cropping), the profile and
level for the MSE codec string, and what the decoder configuration records copy.

The SPS parsers read only as far as the picture size and bit depths: the rest (VUI, reference
picture sets) is not needed here. They check every count that drives a loop or a size, so a
damaged or hostile SPS raises `H26xError` with the reason; nothing here raises IndexError.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from camgrid.media.fastpath import native as _native

H264_SPS, H264_PPS, H264_AUD = 7, 8, 9
H265_VPS, H265_SPS, H265_PPS, H265_AUD = 32, 33, 34, 35
MAX_DIMENSION = 0xFFFF  # the sample entry's width and height are 16 bits
# H.264 profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1)
_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_U32 = struct.Struct(">I")


class H26xError(ValueError):
    """An H.264/H.265 parameter set that cannot be read."""


# -- Annex B ----------------------------------------------------------------------------------
def nal_bounds(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit in Annex B data, start codes excluded. Bytes before the
    first start code are not a NAL unit; zero bytes before a start code (the first byte of a
    4-byte start code, trailing_zero_8bits) belong to none, since a NAL unit never ends in 0x00."""
    bounds = []
    find = data.find
    i = find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        i = find(b"\x00\x00\x01", start)
        end = len(data) if i < 0 else i
        if end > start and data[end - 1] == 0:  # usually the first byte of a 4-byte start code
            end -= 1
            if end > start and data[end - 1] == 0:  # more (trailing_zero_8bits): rare, so a copy is fine
                end = start + len(data[start:end].rstrip(b"\x00"))
        if end > start:
            bounds.append((start, end))
    return bounds


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of Annex B data, without start codes (bounds found natively when the C
    module is loaded: the same bounds, see camgrid.media.fastpath)."""
    bounds = _native.nal_bounds(data) if _native is not None else nal_bounds(data)
    return [data[start:end] for start, end in bounds]


def to_length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units each behind a 4-byte big-endian length, as MP4 samples hold them."""
    parts = []
    for nal in nals:
        parts += (_U32.pack(len(nal)), nal)
    return b"".join(parts)


def nal_type(codec: str, nal: bytes) -> int:
    if not nal:
        raise H26xError("empty NAL unit")
    if codec == "h264":
        return nal[0] & 0x1F
    if codec == "h265":
        return (nal[0] >> 1) & 0x3F
    raise H26xError(f"not an H.264/H.265 codec: {codec!r}")


# -- bits -------------------------------------------------------------------------------------
def unescape_rbsp(data: bytes) -> bytes:
    """The RBSP inside a NAL unit payload: each emulation prevention byte (the 03 of 00 00 03) removed.
    A left-to-right replace is exactly the standard's scan (7.3.1): after 00 00 03 the zero count restarts."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


class BitReader:
    """MSB-first reader of fixed-width and exp-Golomb fields; reading past the end raises H26xError."""

    __slots__ = ("_data", "_pos", "_end", "what")

    def __init__(self, data: bytes, what: str = "RBSP") -> None:
        self._data, self._pos, self._end, self.what = data, 0, len(data) * 8, what

    def u(self, n: int) -> int:
        """An n-bit unsigned field."""
        if n == 0:
            return 0
        pos = self._pos
        if pos + n > self._end:
            raise H26xError(f"{self.what} truncated ({self._end // 8} bytes)")
        first, last = pos >> 3, (pos + n + 7) >> 3
        chunk = int.from_bytes(self._data[first:last], "big")
        self._pos = pos + n
        return (chunk >> (last * 8 - pos - n)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def skip(self, n: int) -> None:
        if self._pos + n > self._end:
            raise H26xError(f"{self.what} truncated ({self._end // 8} bytes)")
        self._pos += n

    def ue(self) -> int:
        """An unsigned exp-Golomb code (ue(v)), at most 32 bits of value as the standards allow."""
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise H26xError(f"{self.what}: exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """A signed exp-Golomb code (se(v)): 1, -1, 2, -2, ..."""
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)

    def ue_max(self, name: str, maximum: int) -> int:
        """ue(v) that the standard bounds; a larger value means a damaged parameter set."""
        value = self.ue()
        if value > maximum:
            raise H26xError(f"{self.what}: {name} {value} out of range (at most {maximum})")
        return value


# -- sequence parameter sets ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SpsInfo:
    width: int  # pixels, after the cropping / conformance window
    height: int
    profile_idc: int
    level_idc: int  # H.264: 10 × level (31 = 3.1); H.265: 30 × level (93 = 3.1)
    constraint_flags: int  # H.264: the byte after profile_idc; H.265: the 48 constraint indicator bits
    chroma_format_idc: int = 1  # 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8
    # H.265 only
    profile_space: int = 0
    tier: int = 0
    compatibility_flags: int = 0  # general_profile_compatibility_flag[0] is the most significant bit
    max_sub_layers: int = 1
    temporal_id_nesting: bool = False


def _scaling_list(bits: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            delta = bits.se()
            if not -128 <= delta <= 127:
                raise H26xError(f"{bits.what}: delta_scale {delta} out of range")
            nxt = (last + delta) & 0xFF
        last = nxt or last


def _cropped(what: str, width: int, height: int, crop_x: int, crop_y: int) -> tuple[int, int]:
    width, height = width - crop_x, height - crop_y
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise H26xError(f"{what}: picture size {width}x{height} out of range")
    return width, height


def parse_h264_sps(nal: bytes) -> SpsInfo:
    """An H.264 SPS NAL unit (header byte included), 7.3.2.1.1."""
    bits = BitReader(unescape_rbsp(nal[1:]), "H.264 SPS")
    profile_idc, constraint_flags, level_idc = bits.u(8), bits.u(8), bits.u(8)
    bits.ue_max("seq_parameter_set_id", 31)
    chroma_format_idc, separate_planes, depth_luma, depth_chroma = 1, False, 8, 8
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = bits.ue_max("chroma_format_idc", 3)
        if chroma_format_idc == 3:
            separate_planes = bits.flag()
        depth_luma = 8 + bits.ue_max("bit_depth_luma_minus8", 6)
        depth_chroma = 8 + bits.ue_max("bit_depth_chroma_minus8", 6)
        bits.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.flag():
                    _scaling_list(bits, 16 if i < 6 else 64)
    bits.ue_max("log2_max_frame_num_minus4", 12)
    poc_type = bits.ue_max("pic_order_cnt_type", 2)
    if poc_type == 0:
        bits.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)
    elif poc_type == 1:
        bits.skip(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue_max("pic_width_in_mbs_minus1", MAX_DIMENSION // 16) + 1
    height_units = bits.ue_max("pic_height_in_map_units_minus1", MAX_DIMENSION // 16) + 1
    frame_mbs_only = bits.flag()
    if not frame_mbs_only:
        bits.skip(1)  # mb_adaptive_frame_field_flag
    bits.skip(1)  # direct_8x8_inference_flag
    crop_x = crop_y = 0
    if bits.flag():  # frame_cropping_flag
        left, right, top, bottom = (bits.ue() for _ in range(4))
        # Crop offsets count chroma samples (and field pairs for interlaced coding), 7.4.2.1.1
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        unit_x = 1 if chroma_array_type in (0, 3) else 2
        unit_y = (2 if chroma_array_type == 1 else 1) * (1 if frame_mbs_only else 2)
        crop_x, crop_y = (left + right) * unit_x, (top + bottom) * unit_y
    height_mbs = height_units * (1 if frame_mbs_only else 2)
    width, height = _cropped(bits.what, width_mbs * 16, height_mbs * 16, crop_x, crop_y)
    return SpsInfo(width, height, profile_idc, level_idc, constraint_flags, chroma_format_idc, depth_luma, depth_chroma)


def _profile_tier_level(bits: BitReader, max_sub_layers_minus1: int) -> tuple[int, int, int, int, int, int]:
    """The general profile fields of profile_tier_level(1, max_sub_layers_minus1), 7.3.3; the
    sub-layer fields are skipped."""
    profile_space, tier, profile_idc = bits.u(2), bits.u(1), bits.u(5)
    compatibility, constraints, level_idc = bits.u(32), bits.u(48), bits.u(8)
    present = [(bits.flag(), bits.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        bits.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        bits.skip((88 if profile_present else 0) + (8 if level_present else 0))
    return profile_space, tier, profile_idc, compatibility, constraints, level_idc


def parse_h265_sps(nal: bytes) -> SpsInfo:
    """An H.265 SPS NAL unit (2-byte header included), 7.3.2.2."""
    bits = BitReader(unescape_rbsp(nal[2:]), "H.265 SPS")
    bits.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    if max_sub_layers_minus1 > 6:
        raise H26xError(f"{bits.what}: sps_max_sub_layers_minus1 {max_sub_layers_minus1} out of range")
    nesting = bits.flag()
    space, tier, profile_idc, compatibility, constraints, level_idc = _profile_tier_level(bits, max_sub_layers_minus1)
    bits.ue_max("sps_seq_parameter_set_id", 15)
    chroma_format_idc = bits.ue_max("chroma_format_idc", 3)
    separate_planes = chroma_format_idc == 3 and bits.flag()
    width = bits.ue_max("pic_width_in_luma_samples", MAX_DIMENSION)
    height = bits.ue_max("pic_height_in_luma_samples", MAX_DIMENSION)
    crop_x = crop_y = 0
    if bits.flag():  # conformance_window_flag
        left, right, top, bottom = (bits.ue() for _ in range(4))
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        sub_width = 2 if chroma_array_type in (1, 2) else 1
        sub_height = 2 if chroma_array_type == 1 else 1
        crop_x, crop_y = (left + right) * sub_width, (top + bottom) * sub_height
    depth_luma = 8 + bits.ue_max("bit_depth_luma_minus8", 8)
    depth_chroma = 8 + bits.ue_max("bit_depth_chroma_minus8", 8)
    width, height = _cropped(bits.what, width, height, crop_x, crop_y)
    return SpsInfo(width, height, profile_idc, level_idc, constraints, chroma_format_idc, depth_luma, depth_chroma,
                   space, tier, compatibility, max_sub_layers_minus1 + 1, nesting)


@functools.lru_cache(maxsize=1024)  # each key frame repeats its stream's SPS: parsed once (85 µs); SpsInfo is frozen
def parse_sps(codec: str, nal: bytes) -> SpsInfo:
    if codec == "h264":
        return parse_h264_sps(nal)
    if codec == "h265":
        return parse_h265_sps(nal)
    raise H26xError(f"not an H.264/H.265 codec: {codec!r}")


# -- tracks -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VideoTrack:
    """One video stream's decoder configuration; equal tracks can share an init segment."""

    codec: str  # h264 | h265
    width: int
    height: int
    sps: bytes  # NAL units, header included, no start code
    pps: bytes
    vps: bytes  # H.265; b"" for H.264
    info: SpsInfo

    @property
    def codec_string(self) -> str:
        """The RFC 6381 codecs parameter for MSE and HLS: avc1.PPCCLL, or hvc1 per ISO/IEC 14496-15 Annex E."""
        i = self.info
        if self.codec == "h264":
            return f"avc1.{i.profile_idc:02x}{i.constraint_flags:02x}{i.level_idc:02x}"
        space = ("", "A", "B", "C")[i.profile_space]
        compatibility = int(f"{i.compatibility_flags:032b}"[::-1], 2)  # flag 0 becomes the least significant bit
        constraint_bytes = i.constraint_flags.to_bytes(6, "big").rstrip(b"\x00")  # trailing zero bytes omitted
        parts = [f"hvc1.{space}{i.profile_idc}", f"{compatibility:X}", f"{'LH'[i.tier]}{i.level_idc}"]
        return ".".join(parts + [f"{b:X}" for b in constraint_bytes])


def track_from_frame(codec: str, frame: bytes) -> VideoTrack | None:
    """The track described by a frame's parameter sets (normally a key frame's); None when the
    frame lacks one of them (SPS and PPS, and VPS for H.265). The first of each type is used."""
    return track_and_extent(codec, frame)[0]


def track_and_extent(codec: str, frame: bytes) -> tuple[VideoTrack | None, int]:
    """track_from_frame's track, and how many bytes at the start of the frame decide it: a frame
    that begins with the same bytes has the same first parameter sets, so the same track (the
    extent runs to the start of the NAL unit after the last of them, start code included; 0 when
    the frame has no track). Only the parameter sets are copied out of the frame."""
    if codec not in ("h264", "h265"):
        raise H26xError(f"not an H.264/H.265 codec: {codec!r}")
    if codec == "h264":
        wanted = {H264_SPS: "sps", H264_PPS: "pps"}
    else:
        wanted = {H265_VPS: "vps", H265_SPS: "sps", H265_PPS: "pps"}
    found: dict[str, bytes] = {}
    bounds = _native.nal_bounds(frame) if _native is not None else nal_bounds(frame)
    for i, (start, end) in enumerate(bounds):
        name = wanted.get(nal_type(codec, frame[start:start + 1]))
        if name and name not in found:
            found[name] = frame[start:end]
            if len(found) == len(wanted):
                extent = bounds[i + 1][0] if i + 1 < len(bounds) else len(frame)
                info = parse_sps(codec, found["sps"])
                track = VideoTrack(codec, info.width, info.height, found["sps"], found["pps"], found.get("vps", b""), info)
                return track, extent
    return None, 0


# -- MP4 decoder configuration records (ISO/IEC 14496-15) -------------------------------------
def _u16_prefixed(nal: bytes) -> bytes:
    if len(nal) > 0xFFFF:
        raise H26xError(f"parameter set of {len(nal)} bytes does not fit a decoder configuration record")
    return struct.pack(">H", len(nal)) + nal


def avcc(track: VideoTrack) -> bytes:
    """AVCDecoderConfigurationRecord (5.3.3.1), 4-byte NAL lengths."""
    i = track.info
    out = [bytes([1, i.profile_idc, i.constraint_flags, i.level_idc, 0xFC | 3, 0xE0 | 1]), _u16_prefixed(track.sps),
           b"\x01", _u16_prefixed(track.pps)]
    if i.profile_idc not in (66, 77, 88):  # the later editions' rule, as FFmpeg writes it
        depths = (0xF8 | (i.bit_depth_luma - 8), 0xF8 | (i.bit_depth_chroma - 8))
        out.append(bytes([0xFC | i.chroma_format_idc, *depths, 0]))  # no SPS extensions
    return b"".join(out)


def hvcc(track: VideoTrack) -> bytes:
    """HEVCDecoderConfigurationRecord (8.3.3.1) with complete VPS, SPS and PPS arrays, 4-byte NAL lengths."""
    i = track.info
    head = struct.pack(
        ">BBI6sBHBBBBHBB",
        1, (i.profile_space << 6) | (i.tier << 5) | i.profile_idc, i.compatibility_flags,
        i.constraint_flags.to_bytes(6, "big"), i.level_idc,
        0xF000,  # min_spatial_segmentation_idc 0: unknown
        0xFC,  # parallelismType 0: unknown
        0xFC | i.chroma_format_idc, 0xF8 | (i.bit_depth_luma - 8), 0xF8 | (i.bit_depth_chroma - 8),
        0,  # avgFrameRate: unspecified
        (i.max_sub_layers << 3) | (int(i.temporal_id_nesting) << 2) | 3,  # constantFrameRate 0, lengthSizeMinusOne 3
        3,  # numOfArrays
    )
    arrays = [bytes([0x80 | nal_type_]) + b"\x00\x01" + _u16_prefixed(nal)  # array_completeness 1, one NAL unit
              for nal_type_, nal in ((H265_VPS, track.vps), (H265_SPS, track.sps), (H265_PPS, track.pps))]
    return head + b"".join(arrays)
