"""Fragmented MP4 (ISO/IEC 14496-12) for Media Source Extensions, HLS fMP4 segments and recordings.

A stream is an init segment (ftyp + moov: one video track, no samples, mvex saying fragments
follow) and then fragments (moof + mdat), each holding one or more whole frames. The init
segment changes only when the track does (new parameter sets), so a viewer joining late gets
the init segment and the fragments from the next key frame on.

Samples keep their parameter sets (and AUD/SEI) in-band: decoders take repeated identical
parameter sets in their stride, and a key frame then decodes on its own. Fragment timing is the
first sample's DTS (tfdt) plus the durations; each sample's composition offset is taken from
that running decode time, so presentation times come out exactly as given even when the
caller's DTS and durations disagree.

`FragmentWriter.fragment` runs for every frame of every live stream and every recorded part:
with the native module (camgrid.media.fastpath) the NAL units are found with memchr and the
fragment is built in one allocation; the Python path copies each frame's data once (slices are
memoryviews until the final join) and stays the reference.

Pure: no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from camgrid.media import fastpath
from camgrid.media.h26x import VideoTrack, avcc, hvcc, nal_bounds

SYNC_SAMPLE = 0x02000000  # sample_depends_on = 2: depends on no other sample
NON_SYNC_SAMPLE = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # identity
_BOX_HEADER = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_TRUN_SAMPLE = struct.Struct(">IIIi")  # duration, size, flags, composition time offset
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800  # data offset and all four per-sample fields
_DEFAULT_BASE_IS_MOOF = 0x020000


@dataclass(slots=True)
class Sample:
    data: bytes  # one frame, Annex B
    dts: int  # in the init segment's timescale (90 kHz by default), unwrapped: never going back
    pts: int
    duration: int
    keyframe: bool


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return _BOX_HEADER.pack(8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, _U32.pack((version << 24) | flags), *payload)


# -- init segment -----------------------------------------------------------------------------
def _sample_entry(track: VideoTrack) -> bytes:
    if track.codec == "h264":
        kind, config = b"avc1", _box(b"avcC", avcc(track))
    elif track.codec == "h265":
        kind, config = b"hvc1", _box(b"hvcC", hvcc(track))
    else:
        raise ValueError(f"no MP4 sample entry for codec {track.codec!r}")
    compressor = bytes(32)  # a Pascal string, here empty
    return _box(
        kind,
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16),  # pre_defined, reserved, pre_defined[3]
        struct.pack(">HHIIIH", track.width, track.height, 0x480000, 0x480000, 0, 1),  # 72 dpi, frame_count 1
        compressor,
        struct.pack(">Hh", 0x18, -1),  # depth: colour, no alpha; pre_defined
        config,
    )


def init_segment(track: VideoTrack, timescale: int = 90000, *, track_id: int = 1) -> bytes:
    """ftyp + moov for one video track whose samples come in fragments."""
    brand = b"avc1" if track.codec == "h264" else b"hvc1"
    ftyp = _box(b"ftyp", b"isom", _U32.pack(0x200), b"isom", b"iso6", b"mp41", brand)
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x10000, 0x100), bytes(10),  # rate 1.0, volume 1.0, reserved
        _MATRIX, bytes(24),  # pre_defined
        _U32.pack(track_id + 1),  # next_track_ID
    )
    tkhd = _full_box(
        b"tkhd", 0, 0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),  # creation, modification, track_ID, reserved, duration
        bytes(8), struct.pack(">hhhH", 0, 0, 0, 0),  # reserved; layer, alternate_group, volume 0 (video), reserved
        _MATRIX, struct.pack(">II", track.width << 16, track.height << 16),
    )
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))  # language "und"
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, _U32.pack(1), _full_box(b"url ", 0, 1)))  # 1: in this file
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, _U32.pack(1), _sample_entry(track)),
        _full_box(b"stts", 0, 0, _U32.pack(0)),
        _full_box(b"stsc", 0, 0, _U32.pack(0)),
        _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full_box(b"stco", 0, 0, _U32.pack(0)),
    )
    minf = _box(b"minf", _full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    trex = _full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    return ftyp + _box(b"moov", mvhd, trak, _box(b"mvex", trex))


# -- fragments --------------------------------------------------------------------------------
class FragmentWriter:
    """moof + mdat fragments of one track, numbered from 1.

    `native` (default: whether camgrid.media.fastpath loaded the C module) builds the mdat
    payload in C: the frames are scanned for NAL units with memchr and the fragment is written
    in one allocation. The Python path below is the reference; both give the same bytes."""

    def __init__(self, track_id: int = 1, *, native: bool | None = None) -> None:
        self.track_id = track_id
        self.sequence = 0  # of the last fragment written
        self._native = fastpath.native if native is None or native else None
        if native and self._native is None:
            raise RuntimeError(f"the native fragment path is not available: {fastpath.REASON}")

    def fragment(self, samples: list[Sample], *, sequence: int | None = None) -> bytes:
        """moof + mdat of the samples; `sequence` numbers it (default: one more than the last)."""
        if not samples:
            raise ValueError("a fragment needs at least one sample")
        base = samples[0].dts
        if not 0 <= base < 1 << 64:
            raise ValueError(f"first sample's DTS {base} is out of range for tfdt")
        native = self._native
        payload: list[bytes | memoryview] = []
        if native is not None:
            datas = [sample.data for sample in samples]
            sizes = native.length_prefixed_sizes(datas)
        else:
            sizes = []
            for sample in samples:
                data, size = memoryview(sample.data), 0
                for start, end in nal_bounds(sample.data):
                    payload += (_U32.pack(end - start), data[start:end])
                    size += 4 + end - start
                sizes.append(size)
        entries: list[bytes] = []
        mdat_size, decode_time = 8, base
        for n, (sample, size) in enumerate(zip(samples, sizes)):
            if not size:
                raise ValueError(f"sample {n} holds no Annex B NAL unit")
            offset = sample.pts - decode_time
            if not (0 <= sample.duration < 1 << 32 and -(1 << 31) <= offset < 1 << 31):
                raise ValueError(f"sample {n}: duration {sample.duration} or composition offset {offset} out of range")
            flags = SYNC_SAMPLE if sample.keyframe else NON_SYNC_SAMPLE
            entries.append(_TRUN_SAMPLE.pack(sample.duration, size, flags, offset))
            mdat_size += size
            decode_time += sample.duration
        if mdat_size >= 1 << 32:
            raise ValueError(f"fragment of {mdat_size} bytes is too large for one mdat")
        self.sequence = self.sequence + 1 if sequence is None else sequence
        count = len(samples)
        trun_size = 20 + 16 * count
        traf_size = 8 + 16 + 20 + trun_size  # traf header, tfhd, tfdt, trun
        moof_size = 8 + 16 + traf_size  # moof header, mfhd
        head = (
            _BOX_HEADER.pack(moof_size, b"moof"),
            _BOX_HEADER.pack(16, b"mfhd"), struct.pack(">II", 0, self.sequence),
            _BOX_HEADER.pack(traf_size, b"traf"),
            _BOX_HEADER.pack(16, b"tfhd"), struct.pack(">II", _DEFAULT_BASE_IS_MOOF, self.track_id),
            _BOX_HEADER.pack(20, b"tfdt"), struct.pack(">IQ", 1 << 24, base),  # version 1: 64-bit time
            _BOX_HEADER.pack(trun_size, b"trun"),
            struct.pack(">IIi", (1 << 24) | _TRUN_FLAGS, count, moof_size + 8),  # version 1: signed offsets
            *entries,
            _BOX_HEADER.pack(mdat_size, b"mdat"),
        )
        if native is not None:  # the header and every frame's NAL units, copied once into the result
            return native.join_length_prefixed(b"".join(head), datas, mdat_size - 8)
        return b"".join((*head, *payload))


def read_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each box from `start` to `end` (default: the end of data), without
    descending into them; call again on a box's body for its children. A box cut short, or with a
    size that cannot be right, ends the list, so its sum shows how much of a file is whole."""
    end = len(data) if end is None else end
    boxes, pos = [], start
    while pos + 8 <= end:
        size, kind = _BOX_HEADER.unpack_from(data, pos)
        header = 8
        if size == 1:  # 64-bit largesize follows the type
            if pos + 16 > end:
                break
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:  # extends to the end
            size = end - pos
        if size < header or pos + size > end:
            break
        boxes.append((kind.decode("latin-1"), pos, size))
        pos += size
    return boxes


_VISUAL_SAMPLE_ENTRY_FIELDS = 78  # from the end of the sample entry's header to its first child box


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    """(body start, box end) of the first `kind` box among data[start:end]."""
    for name, pos, size in read_boxes(data, start, end):
        if name == kind:
            return pos + 8, pos + size
    return None


def codec_string_of(init: bytes) -> str | None:
    """The RFC 6381 codecs parameter of an init segment's first video track (what MSE's
    addSourceBuffer needs), read from its avcC / hvcC; None when there is none."""
    span: tuple[int, int] | None = (0, len(init))
    for kind in ("moov", "trak", "mdia", "minf", "stbl", "stsd"):
        span = _child(init, span[0], span[1], kind)
        if span is None:
            return None
    entries = read_boxes(init, span[0] + 8, span[1])  # stsd: version/flags and entry count first
    if not entries:
        return None
    name, pos, size = entries[0]
    body = pos + 8 + _VISUAL_SAMPLE_ENTRY_FIELDS
    if name in ("avc1", "avc3"):
        config = _child(init, body, pos + size, "avcC")
        if config is None or config[1] - config[0] < 4:
            return None
        profile, constraints, level = init[config[0] + 1:config[0] + 4]
        return f"{name}.{profile:02x}{constraints:02x}{level:02x}"
    if name in ("hvc1", "hev1"):
        config = _child(init, body, pos + size, "hvcC")
        if config is None or config[1] - config[0] < 13:
            return None
        c = init[config[0]:config[1]]
        space, tier, profile = c[1] >> 6, (c[1] >> 5) & 1, c[1] & 0x1F
        compatibility = int(f"{int.from_bytes(c[2:6], 'big'):032b}"[::-1], 2)
        constraint_bytes = bytes(c[6:12]).rstrip(b"\x00")
        parts = [f"{name}.{('', 'A', 'B', 'C')[space]}{profile}", f"{compatibility:X}", f"{'LH'[tier]}{c[12]}"]
        return ".".join(parts + [f"{b:X}" for b in constraint_bytes])
    return None
