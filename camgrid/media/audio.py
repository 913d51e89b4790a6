"""Audio as GB/T 28181 devices send it in the PS stream: G.711 A-law / µ-law (stream_type 0x90 /
0x91, 8 kHz mono, one byte a sample) and AAC (0x0F) in ADTS frames.

`parse_adts` reads one ADTS header (ISO/IEC 13818-7 / 14496-3) and `split_adts` cuts a PES
payload into raw AAC frames (the headers go: MP4 keeps the AudioSpecificConfig once, in esds).
`AudioClock` places audio on a video track's forward-only timeline (camgrid.media.timeline): the
PES PTS (90 kHz) is taken relative to the newest video frame's raw DTS, so audio and video stay
in step across the device's clock wraps and resets; small jitter is smoothed into back-to-back
samples. `AudioTrackBuilder` turns demuxed audio units into `AudioSample`s for fMP4.

Bad input raises `AudioError` with what was wrong; callers on the packet path catch it and count
the unit as bad, so a device's broken audio never ends its video. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

ADTS_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AAC_FRAME_SAMPLES = 1024
G711_RATE = 8000
G711_CODECS = ("g711a", "g711u")
AUDIO_CODECS = ("aac", *G711_CODECS)
TS_MASK = (1 << 33) - 1
MAX_JUMP_TICKS = 10 * 90_000  # audio further than this from the video is a discontinuity
SMOOTH_S = 0.1  # audio within this of where the previous sample ended follows it back to back
MAX_UNIT_BYTES = 1 << 16  # one PES of audio larger than this is no audio a device sends


class AudioError(ValueError):
    """Audio that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    object_type: int  # MPEG-4 audio object type: profile + 1 (2 = AAC LC)
    rate_index: int
    sample_rate: int
    channels: int  # channel_configuration (1-7)
    frame_length: int  # header included
    header_length: int  # 7, or 9 with CRC
    blocks: int  # raw data blocks in the frame (1 almost always)


def parse_adts(data: bytes | memoryview, pos: int = 0) -> AdtsHeader:
    """The ADTS header at `pos`; AudioError if there is none or it cannot be right."""
    if len(data) - pos < 7:
        raise AudioError(f"ADTS header cut short: {len(data) - pos} bytes at offset {pos}, 7 needed")
    b = data[pos:pos + 7]
    if b[0] != 0xFF or b[1] & 0xF6 != 0xF0:
        raise AudioError(f"no ADTS sync word at offset {pos} (bytes {bytes(b[:2]).hex()}, expected fff)")
    protection_absent = b[1] & 0x01
    profile = b[2] >> 6
    rate_index = (b[2] >> 2) & 0x0F
    channels = ((b[2] & 0x01) << 2) | (b[3] >> 6)
    frame_length = ((b[3] & 0x03) << 11) | (b[4] << 3) | (b[5] >> 5)
    blocks = (b[6] & 0x03) + 1
    header_length = 7 if protection_absent else 9
    if rate_index >= len(ADTS_SAMPLE_RATES):
        raise AudioError(f"ADTS sampling frequency index {rate_index} is reserved")
    if channels == 0:
        raise AudioError("ADTS channel configuration 0 (configuration in the stream) is not supported")
    if profile == 3:
        raise AudioError("ADTS profile 3 (reserved in MPEG-2, AAC LTP in MPEG-4) is not supported")
    if frame_length <= header_length:
        raise AudioError(f"ADTS frame length {frame_length} leaves no room for audio after the {header_length}-byte header")
    return AdtsHeader(profile + 1, rate_index, ADTS_SAMPLE_RATES[rate_index], channels, frame_length, header_length, blocks)


def split_adts(data: bytes) -> list[tuple[AdtsHeader, bytes]]:
    """Each ADTS frame of a PES payload as (header, raw AAC frame without the header)."""
    if not data:
        raise AudioError("empty AAC unit")
    out, pos = [], 0
    while pos < len(data):
        header = parse_adts(data, pos)
        end = pos + header.frame_length
        if end > len(data):
            raise AudioError(f"ADTS frame at offset {pos} declares {header.frame_length} bytes but only "
                             f"{len(data) - pos} follow")
        if out and (header.rate_index, header.channels, header.object_type) != (
                out[0][0].rate_index, out[0][0].channels, out[0][0].object_type):
            raise AudioError("ADTS frames of one unit disagree on rate, channels or profile")
        out.append((header, data[pos + header.header_length:end]))
        pos = end
    return out


def audio_specific_config(object_type: int, rate_index: int, channels: int) -> bytes:
    """The 2-byte AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) MP4's esds carries."""
    if not 1 <= object_type <= 30 or not 0 <= rate_index <= 12 or not 1 <= channels <= 7:
        raise AudioError(f"no AudioSpecificConfig for object type {object_type}, rate index {rate_index}, "
                         f"{channels} channels")
    value = (object_type << 11) | (rate_index << 7) | (channels << 3)
    return value.to_bytes(2, "big")


def adts_header(object_type: int, rate_index: int, channels: int, payload_bytes: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame of `payload_bytes` (as devices write it)."""
    length = payload_bytes + 7
    if not 1 <= object_type <= 3 or not 0 <= rate_index <= 12 or not 1 <= channels <= 7 or length >= 1 << 13:
        raise AudioError(f"no ADTS header for object type {object_type}, rate index {rate_index}, {channels} "
                         f"channels, {payload_bytes} bytes")
    return bytes([
        0xFF, 0xF1,  # sync, MPEG-4, layer 0, no CRC
        ((object_type - 1) << 6) | (rate_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,  # buffer fullness 0x7FF: variable rate
        0xFC,  # ... and one raw data block
    ])


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """An audio track: what the MP4 sample entry says and what a player needs to know."""

    codec: str  # aac | g711a | g711u
    sample_rate: int
    channels: int
    asc: bytes = b""  # AAC: AudioSpecificConfig

    @property
    def timescale(self) -> int:
        return self.sample_rate

    @property
    def codec_string(self) -> str | None:
        """RFC 6381 codecs parameter for MSE; None for G.711, which browsers' MSE cannot play."""
        if self.codec == "aac":
            return f"mp4a.40.{self.asc[0] >> 3 if self.asc else 2}"
        return None

    @property
    def browser_playable(self) -> bool:
        return self.codec == "aac"

    def describe(self) -> dict:
        return {"codec": self.codec, "codec_string": self.codec_string, "sample_rate": self.sample_rate,
                "channels": self.channels}


def aac_config(header: AdtsHeader) -> AudioConfig:
    return AudioConfig("aac", header.sample_rate, header.channels,
                       audio_specific_config(header.object_type, header.rate_index, header.channels))


def g711_config(codec: str) -> AudioConfig:
    if codec not in G711_CODECS:
        raise AudioError(f"{codec!r} is not G.711 (g711a or g711u)")
    return AudioConfig(codec, G711_RATE, 1)


def g711_duration_s(data: bytes) -> float:
    """G.711 is one byte a sample at 8 kHz (mono, as GB/T 28181 devices send it)."""
    return len(data) / G711_RATE


@dataclass(slots=True)
class AudioSample:
    data: bytes  # one raw AAC frame, or a run of G.711 bytes
    time: int  # decode time in the track's timescale (its sample rate), on the video's timeline
    duration: int  # in the same timescale


def _signed33(value: int) -> int:
    value &= TS_MASK
    return value - (1 << 33) if value >= 1 << 32 else value


class AudioClock:
    """Audio times on the timeline of a video track.

    `video(raw, placed)` is told each video frame's raw DTS (90 kHz, from the device) and where
    the video's Timeline placed it; `place(pts, duration)` gives an audio unit's start in the audio
    timescale, or None when it lies before the track began (the unit is dropped). Audio within
    SMOOTH_S of where the last sample ended follows it back to back; further ahead leaves a gap;
    behind (or without a usable PTS) it is put right after the last sample (`resyncs` counts)."""

    __slots__ = ("rate", "_ref", "_next", "resyncs")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._ref: tuple[int, int] | None = None  # (raw video DTS, placed video DTS), 90 kHz
        self._next: int | None = None  # where the last audio sample ended
        self.resyncs = 0

    def video(self, raw: int | None, placed: int) -> None:
        if raw is not None:
            self._ref = (raw & TS_MASK, placed)

    def reset(self) -> None:
        """A new track (new init segment): audio times start again from the video."""
        self._next = None

    def place(self, pts: int | None, duration: int) -> int | None:
        expected = self._next
        at = None
        if pts is not None and self._ref is not None:
            diff = _signed33(pts - self._ref[0])
            if abs(diff) <= MAX_JUMP_TICKS:
                at = (self._ref[1] + diff) * self.rate // 90_000
        if at is None:
            if expected is None:
                return None  # nothing to tie it to yet
            self.resyncs += pts is not None  # a PTS too far from the video's
            at = expected
        elif expected is not None:
            if abs(at - expected) <= SMOOTH_S * self.rate:
                at = expected
            elif at < expected:
                self.resyncs += 1
                at = expected
        if at < 0:
            return None
        self._next = at + duration
        return at


class AudioTrackBuilder:
    """Demuxed audio units (codec, PTS, PES payload) → AudioSamples on a video timeline.

    The config is learnt from the first good unit (and from every ADTS header after it: a change
    of rate or channels is a new config). `bad_units` counts units that could not be read."""

    def __init__(self) -> None:
        self.config: AudioConfig | None = None
        self.clock: AudioClock | None = None
        self.bad_units = 0
        self.last_error: str | None = None
        self._video_ref: tuple[int | None, int] | None = None

    def video(self, raw: int | None, placed: int) -> None:
        """A video frame's raw DTS and where the video's Timeline placed it (see AudioClock)."""
        if self.clock is not None:
            self.clock.video(raw, placed)
        self._video_ref = (raw, placed)

    def config_of(self, codec: str, data: bytes) -> tuple[AudioConfig, list[bytes]]:
        """The unit's config and its frames; raises AudioError."""
        if len(data) > MAX_UNIT_BYTES:
            raise AudioError(f"audio unit of {len(data)} bytes is larger than any device sends")
        if codec == "aac":
            frames = split_adts(data)
            return aac_config(frames[0][0]), [f for _, f in frames]
        if codec in G711_CODECS:
            if not data:
                raise AudioError("empty G.711 unit")
            return g711_config(codec), [data]
        raise AudioError(f"audio codec {codec!r} is not supported (G.711A, G.711U and AAC are)")

    def push(self, codec: str, pts: int | None, data: bytes) -> tuple[AudioConfig | None, list[AudioSample]]:
        """(the config, when it is new or changed; the samples). Bad units give (None, [])."""
        try:
            config, frames = self.config_of(codec, data)
        except AudioError as exc:
            self.bad_units += 1
            self.last_error = str(exc)
            return None, []
        changed = config != self.config
        if changed:
            self.config = config
            self.clock = AudioClock(config.sample_rate)
            if self._video_ref is not None:
                self.clock.video(*self._video_ref)
        assert self.clock is not None
        samples: list[AudioSample] = []
        for i, frame in enumerate(frames):
            duration = AAC_FRAME_SAMPLES if config.codec == "aac" else len(frame) // config.channels
            at = self.clock.place(pts if i == 0 else None, duration)
            if at is not None:
                samples.append(AudioSample(frame, at, duration))
        return (config if changed else None), samples
