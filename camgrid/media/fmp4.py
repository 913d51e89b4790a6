"""Fragmented MP4 (ISO/IEC 14496-12) for Media Source Extensions, HLS fMP4 segments and recordings.

A stream is an init segment (ftyp + moov: one video track, and an audio track when the device
sends audio; no samples; mvex saying fragments follow) and then fragments (moof + mdat), each
holding one or more whole frames (and the audio of about the same time, in a second traf whose
samples follow the video's in the mdat). The init
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
from camgrid.media.audio import AudioConfig, AudioSample
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


def _esds(config: AudioConfig) -> bytes:
    """ES_Descriptor (ISO/IEC 14496-1) with the AudioSpecificConfig: MPEG-4 audio (0x40)."""
    def descriptor(tag: int, body: bytes) -> bytes:
        return bytes([tag, len(body)]) + body
    decoder_specific = descriptor(0x05, config.asc)
    decoder_config = descriptor(0x04, bytes([0x40, 0x15]) + bytes(3) + bytes(8) + decoder_specific)  # audio stream; buffer, bitrates unknown
    es = descriptor(0x03, b"\x00\x00\x00" + decoder_config + descriptor(0x06, b"\x02"))  # ES_ID 0, no flags; SL predefined 2
    return _full_box(b"esds", 0, 0, es)


# G.711 takes the QuickTime sample entries 'alaw' / 'ulaw', which FFmpeg's MP4 reader (and so the
# usual players) knows; ISO BMFF registers none of its own for it.
_AUDIO_ENTRY = {"aac": b"mp4a", "g711a": b"alaw", "g711u": b"ulaw"}


def _audio_sample_entry(config: AudioConfig) -> bytes:
    try:
        kind = _AUDIO_ENTRY[config.codec]
    except KeyError:
        raise ValueError(f"no MP4 sample entry for audio codec {config.codec!r}") from None
    if not 0 < config.sample_rate < 1 << 16:
        raise ValueError(f"sample rate {config.sample_rate} does not fit an audio sample entry")
    return _box(
        kind,
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(8),  # version 0, revision, vendor
        struct.pack(">HHHHI", config.channels, 16, 0, 0, config.sample_rate << 16),  # channels, sample size, rate 16.16
        _esds(config) if config.codec == "aac" else b"",
    )


def _audio_trak(config: AudioConfig, track_id: int) -> bytes:
    tkhd = _full_box(
        b"tkhd", 0, 0x000003,
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),
        bytes(8), struct.pack(">hhhH", 0, 1, 0x100, 0),  # layer 0, alternate_group 1, volume 1.0 (audio)
        _MATRIX, struct.pack(">II", 0, 0),
    )
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, config.timescale, 0, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"soun", bytes(12), b"SoundHandler\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, _U32.pack(1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, _U32.pack(1), _audio_sample_entry(config)),
        _full_box(b"stts", 0, 0, _U32.pack(0)),
        _full_box(b"stsc", 0, 0, _U32.pack(0)),
        _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full_box(b"stco", 0, 0, _U32.pack(0)),
    )
    minf = _box(b"minf", _full_box(b"smhd", 0, 0, bytes(4)), dinf, stbl)
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))


def init_segment(track: VideoTrack, timescale: int = 90000, *, track_id: int = 1,
                 audio: AudioConfig | None = None, audio_track_id: int = 2) -> bytes:
    """ftyp + moov for one video track (and, with `audio`, an audio track whose timescale is its
    sample rate) whose samples come in fragments. Without audio the bytes are those of a
    video-only stream exactly."""
    brand = b"avc1" if track.codec == "h264" else b"hvc1"
    ftyp = _box(b"ftyp", b"isom", _U32.pack(0x200), b"isom", b"iso6", b"mp41", brand)
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x10000, 0x100), bytes(10),  # rate 1.0, volume 1.0, reserved
        _MATRIX, bytes(24),  # pre_defined
        _U32.pack(max(track_id, audio_track_id if audio else 0) + 1),  # next_track_ID
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
    if audio is None:
        return ftyp + _box(b"moov", mvhd, trak, _box(b"mvex", trex))
    # Audio samples default to sync samples (flags 0): every AAC frame / G.711 run stands alone.
    audio_trex = _full_box(b"trex", 0, 0, struct.pack(">IIIII", audio_track_id, 1, 0, 0, 0))
    return ftyp + _box(b"moov", mvhd, trak, _audio_trak(audio, audio_track_id), _box(b"mvex", trex, audio_trex))


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

    def fragment(self, samples: list[Sample], *, sequence: int | None = None,
                 audio: list[AudioSample] | None = None, audio_track_id: int = 2) -> bytes:
        """moof + mdat of the samples; `sequence` numbers it (default: one more than the last).
        With `audio` (samples in the audio track's timescale, in order), a second traf carries
        them and their bytes follow the video's in the mdat; each audio sample lasts until the
        next one starts (the last: its own duration), so a gap is absorbed, never played twice."""
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
        audio_traf: bytes | None = None
        if audio:
            video_payload = mdat_size - 8
            audio_traf, audio_bytes = _audio_traf(audio, audio_track_id)
            mdat_size += len(audio_bytes)
        if mdat_size >= 1 << 32:
            raise ValueError(f"fragment of {mdat_size} bytes is too large for one mdat")
        self.sequence = self.sequence + 1 if sequence is None else sequence
        count = len(samples)
        trun_size = 20 + 16 * count
        traf_size = 8 + 16 + 20 + trun_size  # traf header, tfhd, tfdt, trun
        moof_size = 8 + 16 + traf_size  # moof header, mfhd
        if audio_traf is not None:
            return self._with_audio(samples, entries, payload, base, audio_traf, audio_bytes, video_payload,
                                    moof_size + len(audio_traf), mdat_size, traf_size, trun_size)
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

    def _with_audio(self, samples: list[Sample], entries: list[bytes], payload: list, base: int, audio_traf: bytes,
                    audio_bytes: bytes, video_payload: int, moof_size: int, mdat_size: int, traf_size: int,
                    trun_size: int) -> bytes:
        """moof (mfhd, the video traf, the audio traf) + mdat (video samples, then audio)."""
        audio_traf = bytearray(audio_traf)
        struct.pack_into(">i", audio_traf, _AUDIO_TRUN_OFFSET_AT, moof_size + 8 + video_payload)
        head = b"".join((
            _BOX_HEADER.pack(moof_size, b"moof"),
            _BOX_HEADER.pack(16, b"mfhd"), struct.pack(">II", 0, self.sequence),
            _BOX_HEADER.pack(traf_size, b"traf"),
            _BOX_HEADER.pack(16, b"tfhd"), struct.pack(">II", _DEFAULT_BASE_IS_MOOF, self.track_id),
            _BOX_HEADER.pack(20, b"tfdt"), struct.pack(">IQ", 1 << 24, base),
            _BOX_HEADER.pack(trun_size, b"trun"),
            struct.pack(">IIi", (1 << 24) | _TRUN_FLAGS, len(samples), moof_size + 8),
            *entries,
            bytes(audio_traf),
            _BOX_HEADER.pack(mdat_size, b"mdat"),
        ))
        if self._native is not None:
            return self._native.join_length_prefixed(head, [s.data for s in samples], video_payload) + audio_bytes
        return b"".join((head, *payload, audio_bytes))


_AUDIO_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200  # data offset, duration and size per sample
_AUDIO_TRUN_OFFSET_AT = 8 + 16 + 20 + 16  # traf header, tfhd, tfdt, trun header + version/flags + count


def _audio_traf(audio: list[AudioSample], track_id: int) -> tuple[bytes, bytes]:
    """The audio traf (its trun's data offset left 0, filled in once the moof's size is known) and
    the samples' bytes."""
    base = audio[0].time
    if not 0 <= base < 1 << 64:
        raise ValueError(f"first audio sample's time {base} is out of range for tfdt")
    entries = []
    for n, sample in enumerate(audio):
        duration = audio[n + 1].time - sample.time if n + 1 < len(audio) else sample.duration
        if not 0 <= duration < 1 << 32 or not sample.data:
            raise ValueError(f"audio sample {n}: duration {duration} out of range, or no data")
        entries.append(struct.pack(">II", duration, len(sample.data)))
    trun_size = 20 + 8 * len(audio)
    traf_size = 8 + 16 + 20 + trun_size
    traf = b"".join((
        _BOX_HEADER.pack(traf_size, b"traf"),
        _BOX_HEADER.pack(16, b"tfhd"), struct.pack(">II", _DEFAULT_BASE_IS_MOOF, track_id),
        _BOX_HEADER.pack(20, b"tfdt"), struct.pack(">IQ", 1 << 24, base),
        _BOX_HEADER.pack(trun_size, b"trun"), struct.pack(">IIi", _AUDIO_TRUN_FLAGS, len(audio), 0),
        *entries,
    ))
    return traf, b"".join(sample.data for sample in audio)


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


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    handler: str  # vide | soun
    timescale: int
    entry: str  # the sample entry: avc1, hvc1, mp4a, alaw, ulaw, ...
    codec_string: str | None  # RFC 6381, for MSE; None where browsers have none (G.711)


def _descriptors(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, body start, body end) of the MPEG-4 descriptors (ISO/IEC 14496-1) in data[start:end]."""
    out, pos = [], start
    while pos + 2 <= end:
        tag, pos, length = data[pos], pos + 1, 0
        for _ in range(4):  # the length: 7 bits a byte, the high bit says another byte follows
            if pos >= end:
                return out
            byte = data[pos]
            pos += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if pos + length > end:
            return out
        out.append((tag, pos, pos + length))
        pos += length
    return out


def _mp4a_codec_string(init: bytes, entry_pos: int, entry_size: int) -> str:
    """mp4a.40.<audio object type> from the esds's AudioSpecificConfig (LC when it cannot be read)."""
    esds = _child(init, entry_pos + 8 + 28, entry_pos + entry_size, "esds")  # after the AudioSampleEntry fields
    if esds is not None:
        for tag, start, end in _descriptors(init, esds[0] + 4, esds[1]):
            if tag != 0x03 or end - start < 3:
                continue
            flags, at = init[start + 2], start + 3
            at += (2 if flags & 0x80 else 0) + (1 + init[at] if flags & 0x40 and at < end else 0) + (2 if flags & 0x20 else 0)
            for dtag, dstart, dend in _descriptors(init, at, end):
                if dtag == 0x04 and dend - dstart > 13 and init[dstart] == 0x40:  # MPEG-4 audio
                    for itag, istart, iend in _descriptors(init, dstart + 13, dend):
                        if itag == 0x05 and iend > istart:
                            return f"mp4a.40.{init[istart] >> 3}"
    return "mp4a.40.2"


def tracks_of(init: bytes) -> list[TrackInfo]:
    """The tracks of an init segment, in order."""
    moov = _child(init, 0, len(init), "moov")
    if moov is None:
        return []
    out = []
    for name, pos, size in read_boxes(init, moov[0], moov[1]):
        if name != "trak":
            continue
        try:
            tkhd = _child(init, pos + 8, pos + size, "tkhd")
            mdia = _child(init, pos + 8, pos + size, "mdia")
            mdhd = _child(init, mdia[0], mdia[1], "mdhd")
            hdlr = _child(init, mdia[0], mdia[1], "hdlr")
            version = init[tkhd[0]]
            track_id = struct.unpack_from(">I", init, tkhd[0] + (20 if version == 1 else 12))[0]
            version = init[mdhd[0]]
            timescale = struct.unpack_from(">I", init, mdhd[0] + (20 if version == 1 else 12))[0]
            handler = init[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
            span = mdia
            for kind in ("minf", "stbl", "stsd"):
                span = _child(init, span[0], span[1], kind)
            entries = read_boxes(init, span[0] + 8, span[1])
        except (TypeError, struct.error):  # a box missing: not a track this module can describe
            continue
        if not entries:
            continue
        entry, epos, esize = entries[0]
        if handler == "vide":
            video_only = _box(b"moov", init[pos:pos + size])
            codec_string = codec_string_of(video_only)
        elif entry == "mp4a":
            codec_string = _mp4a_codec_string(init, epos, esize)
        else:
            codec_string = None
        out.append(TrackInfo(track_id, handler, timescale, entry, codec_string))
    return out


def mse_codecs(init: bytes) -> str | None:
    """The codecs parameter for MSE of every track a browser can play ("avc1.64001f,mp4a.40.2")."""
    strings = [t.codec_string for t in tracks_of(init) if t.codec_string]
    return ",".join(strings) if strings else None


def without_track(init: bytes, track_id: int) -> bytes:
    """The init segment with one track (and its trex) removed."""
    boxes = read_boxes(init)
    remaining = [t.track_id for t in tracks_of(init) if t.track_id != track_id]
    out = []
    for name, pos, size in boxes:
        if name != "moov":
            out.append(init[pos:pos + size])
            continue
        kept = []
        for child, cpos, csize in read_boxes(init, pos + 8, pos + size):
            if child == "trak" and any(t.track_id == track_id for t in tracks_of(_box(b"moov", init[cpos:cpos + csize]))):
                continue
            if child == "mvhd" and remaining:
                kept.append(init[cpos:cpos + csize - 4] + _U32.pack(max(remaining) + 1))  # next_track_ID
                continue
            if child == "mvex":
                trexes = [init[p:p + s] for n, p, s in read_boxes(init, cpos + 8, cpos + csize)
                          if not (n == "trex" and struct.unpack_from(">I", init, p + 12)[0] == track_id)]
                kept.append(_box(b"mvex", *trexes))
                continue
            kept.append(init[cpos:cpos + csize])
        out.append(_box(b"moov", *kept))
    return b"".join(out)


def fragment_without_track(fragment: bytes, track_id: int) -> bytes:
    """A moof + mdat as FragmentWriter writes them (the video traf first, its samples first in
    the mdat) with the traf of `track_id` and its bytes at the end of the mdat removed."""
    boxes = read_boxes(fragment)
    if len(boxes) != 2 or boxes[0][0] != "moof" or boxes[1][0] != "mdat":
        raise ValueError("not one moof + mdat")
    _, moof_pos, moof_size = boxes[0]
    kept, cut_from = [], None
    for name, pos, size in read_boxes(fragment, moof_pos + 8, moof_pos + moof_size):
        if name == "traf":
            tfhd = _child(fragment, pos + 8, pos + size, "tfhd")
            trun = _child(fragment, pos + 8, pos + size, "trun")
            if tfhd is not None and struct.unpack_from(">I", fragment, tfhd[0] + 4)[0] == track_id:
                if trun is None or not fragment[trun[0] + 3] & 0x01:
                    raise ValueError("the track's trun has no data offset")
                cut_from = struct.unpack_from(">i", fragment, trun[0] + 8)[0]
                continue
        kept.append(bytearray(fragment[pos:pos + size]))
    if cut_from is None:
        return fragment
    removed = moof_size - 8 - sum(map(len, kept))
    new_moof_size = moof_size - removed
    for box in kept:  # the remaining trafs' data offsets count from the (now smaller) moof
        if box[4:8] != b"traf":
            continue
        for name, pos, size in read_boxes(bytes(box), 8, len(box)):
            if name == "trun" and box[pos + 11] & 0x01:
                struct.pack_into(">i", box, pos + 16, struct.unpack_from(">i", box, pos + 16)[0] - removed)
    mdat_pos = boxes[1][1]
    payload = fragment[mdat_pos + 8:moof_pos + cut_from]
    return _box(b"moof", *map(bytes, kept)) + _box(b"mdat", payload)
