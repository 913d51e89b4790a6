"""Real video for simulated cameras: footage encoded once (sent by camgrid.sim.rtp_sender).

A platform under test has to receive what a GB/T 28181 camera sends: H.264 or H.265 in an
MPEG-2 program stream, cut into RTP packets, over UDP or RFC 4571 TCP, at the camera's frame
rate, forever. Encoding in real time per camera would cap a simulator at a handful of cameras,
so `load_footage` decodes a file once and re-encodes it with x264/x265 into Annex B frames
(no B-frames, so decode order is display order and PTS equals DTS; parameter sets repeated in
every key frame so a viewer can join at any of them), optionally cached on disk. Every simulated
camera then only muxes, packetizes and paces those frames (`camgrid.sim.rtp_sender.PsRtpSender`).

Audio, as cameras with a microphone send it: `with_audio` adds the file's own sound or, for a
file without any (or the test pattern), a 440 Hz tone with a beep every second, encoded as
G.711A, G.711U (8 kHz, 40 ms a PES) or AAC (ADTS, 16 kHz, one frame a PES); the sender
interleaves it with the video by time, as PES 0xC0 listed in the program stream map.

PyAV (libav*) is the only dependency beyond the standard library; numpy is not needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av

from camgrid.media.audio import adts_header

log = logging.getLogger(__name__)

CLOCK_HZ = 90_000  # RTP and PS clock for video
ENCODERS = {"h264": "libx264", "h265": "libx265"}
DEFAULT_FPS = 25
_CACHE_MAGIC = b"CGFOOT1\n"  # part of the cache key too: change it when the encoder settings change
_CACHE_FRAME = struct.Struct(">QBI")  # pts (90 kHz), key frame, length


class FootageError(ValueError):
    """Footage that cannot be loaded or encoded; the message says why."""


class FootageFrame(NamedTuple):
    data: bytes  # one access unit, Annex B
    pts: int  # 90 kHz; equal to the DTS (no B-frames)
    keyframe: bool


class AudioUnit(NamedTuple):
    data: bytes  # one PES payload: a run of G.711 bytes, or one ADTS frame
    pts: int  # 90 kHz, on the video's clock (0 = the footage's start)


AUDIO_CHOICES = ("auto", "none", "g711a", "g711u", "aac")
AUDIO_RATES = {"g711a": 8000, "g711u": 8000, "aac": 16000}
G711_UNIT_BYTES = 320  # 40 ms at 8 kHz


@dataclass
class Footage:
    codec: str  # h264 | h265
    width: int
    height: int
    fps: float
    frames: list[FootageFrame] = field(repr=False)  # decode order, which is display order
    duration_s: float = 0.0
    audio_codec: str | None = None  # g711a | g711u | aac, with `audio`
    audio: list[AudioUnit] = field(default_factory=list, repr=False)  # in time order, within one loop

    @property
    def frame_period(self) -> int:
        """One frame's duration in 90 kHz ticks."""
        return max(1, round(CLOCK_HZ / self.fps))


# -- encoding ---------------------------------------------------------------------------------
def _encoder(codec: str, width: int, height: int, fps: Fraction, gop_s: float) -> av.CodecContext:
    keyint = max(1, round(gop_s * fps))
    # keyint = min-keyint and no scene cut: a key frame exactly every gop_s, as cameras do.
    # The context has no GLOBAL_HEADER flag, so x264 repeats SPS/PPS before every IDR;
    # x265 needs repeat-headers for VPS/SPS/PPS, and no open GOP so key frames are IDR.
    if codec == "h264":
        options = {"preset": "veryfast", "tune": "zerolatency",
                   "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"}
    else:
        options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x265-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:open-gop=0"
                                  ":repeat-headers=1:log-level=error"}
    try:
        ctx = av.CodecContext.create(ENCODERS[codec], "w")
    except (av.error.FFmpegError, ValueError) as exc:  # UnknownCodecError is a ValueError
        raise FootageError(f"this PyAV build has no {ENCODERS[codec]} encoder: {exc}") from exc
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = 1 / fps, fps
    ctx.options = options
    return ctx


def _source_fps(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or not 0 < rate <= 240:
        return Fraction(DEFAULT_FPS)
    return Fraction(rate).limit_denominator(1001)  # e.g. 214748359/3579125 → 60


def _even(n: int) -> int:
    return max(2, n - n % 2)  # 4:2:0 needs even dimensions


def _transcode(container: av.container.InputContainer, codec: str, gop_s: float, max_seconds: float | None,
               size: tuple[int, int] | None) -> Footage:
    if not container.streams.video:
        raise FootageError(f"{container.name}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    fps = _source_fps(stream)
    width, height = size or (stream.codec_context.width, stream.codec_context.height)
    width, height = _even(width), _even(height)
    limit = max(1, round(max_seconds * fps)) if max_seconds is not None else None
    encoder = _encoder(codec, width, height, fps, gop_s)
    packets: list[av.Packet] = []
    count = 0
    for frame in container.decode(stream):
        if limit is not None and count >= limit:
            break
        frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts, frame.time_base = count, encoder.time_base
        # A decoded frame keeps its source picture type, which x264 would obey as a forced key frame.
        frame.pict_type = av.video.frame.PictureType.NONE
        packets += encoder.encode(frame)
        count += 1
    packets += encoder.encode(None)
    if not packets:
        raise FootageError(f"{container.name}: no video frames could be decoded")
    frames = [FootageFrame(bytes(p), round(p.pts * CLOCK_HZ / fps), p.is_keyframe) for p in packets]
    return Footage(codec, width, height, float(fps), frames, len(frames) / float(fps))


def _check_options(codec: str, gop_s: float, size: tuple[int, int] | None) -> None:
    if codec not in ENCODERS:
        raise FootageError(f"unknown codec {codec!r}: expected one of {', '.join(ENCODERS)}")
    if not gop_s > 0:
        raise FootageError(f"gop_s must be positive, not {gop_s}")
    if size is not None and (len(size) != 2 or min(size) < 2):
        raise FootageError(f"size must be (width, height) of at least 2x2, not {size!r}")


def load_footage(path: str | os.PathLike[str], *, codec: str = "h264", gop_s: float = 1.0,
                 max_seconds: float | None = None, size: tuple[int, int] | None = None,
                 cache_dir: Path | None = None) -> Footage:
    """The video of a file (any format FFmpeg reads), re-encoded for sending as a camera would.

    `size` scales to (width, height); `max_seconds` keeps only the start. With `cache_dir`, the
    result is kept there, keyed by the file (path, size, mtime) and the options, and reused.
    """
    _check_options(codec, gop_s, size)
    source = Path(path)
    if not source.is_file():
        raise FootageError(f"{source}: no such file")
    cache_file = _cache_path(cache_dir, source, codec, gop_s, max_seconds, size) if cache_dir else None
    if cache_file is not None and (cached := _read_cache(cache_file)) is not None:
        return cached
    try:
        with av.open(str(source)) as container:
            footage = _transcode(container, codec, gop_s, max_seconds, size)
    except av.error.FFmpegError as exc:
        raise FootageError(f"{source}: cannot decode: {exc}") from exc
    if cache_file is not None:
        _write_cache(cache_file, footage)
    return footage


def synthetic_footage(codec: str = "h264", width: int = 640, height: int = 360, fps: float = 25, seconds: float = 10,
                      gop_s: float = 1.0) -> Footage:
    """A moving test pattern (FFmpeg's testsrc2: colour bars, a running clock), for when no file
    is given and for tests."""
    _check_options(codec, gop_s, (width, height))
    rate = Fraction(fps).limit_denominator(1001)
    spec = f"testsrc2=size={_even(width)}x{_even(height)}:rate={rate}:duration={seconds}"
    try:
        with av.open(spec, format="lavfi") as container:
            return _transcode(container, codec, gop_s, None, None)
    except av.error.FFmpegError as exc:
        raise FootageError(f"cannot generate a test pattern ({spec}): {exc}") from exc


# -- audio ------------------------------------------------------------------------------------
def _audio_encoder(codec: str) -> av.CodecContext:
    name = {"g711a": "pcm_alaw", "g711u": "pcm_mulaw", "aac": "aac"}[codec]
    ctx = av.CodecContext.create(name, "w")
    ctx.sample_rate, ctx.layout = AUDIO_RATES[codec], "mono"
    ctx.format = "fltp" if codec == "aac" else "s16"
    ctx.time_base = Fraction(1, AUDIO_RATES[codec])
    if codec == "aac":
        ctx.bit_rate = 32_000
    ctx.open()
    return ctx


def _encode_audio(frames: Iterator[av.AudioFrame], codec: str, seconds: float) -> list[AudioUnit]:
    """Decoded audio → PES payloads of `codec` covering the first `seconds`."""
    rate = AUDIO_RATES[codec]
    encoder = _audio_encoder(codec)
    resampler = av.AudioResampler(format=encoder.format.name, layout="mono", rate=rate)
    fifo = av.AudioFifo()
    step = encoder.frame_size or 1024
    limit = round(seconds * rate)
    packets: list[av.Packet] = []
    taken = 0
    for frame in frames:
        for converted in resampler.resample(frame):
            converted.pts = None
            fifo.write(converted)
        while fifo.samples >= step and taken < limit:
            chunk = fifo.read(step)
            chunk.pts = taken
            taken += chunk.samples
            packets += encoder.encode(chunk)
        if taken >= limit:
            break
    packets += encoder.encode(None)
    if codec != "aac":
        data = b"".join(bytes(p) for p in packets)[:limit]
        return [AudioUnit(data[i:i + G711_UNIT_BYTES], i * CLOCK_HZ // rate)
                for i in range(0, len(data), G711_UNIT_BYTES)]
    asc = bytes(encoder.extradata or b"\x14\x08")
    object_type, rate_index, channels = asc[0] >> 3, ((asc[0] & 7) << 1) | (asc[1] >> 7), (asc[1] >> 3) & 0x0F
    return [AudioUnit(adts_header(object_type, rate_index, channels, p.size) + bytes(p), p.pts * CLOCK_HZ // rate)
            for p in packets if p.pts is not None and 0 <= p.pts < limit]


def _tone(seconds: float) -> Iterator[av.AudioFrame]:
    """440 Hz with a 880 Hz beep every second (FFmpeg's sine source): something to hear and to check."""
    with av.open(f"sine=frequency=440:beep_factor=2:sample_rate=48000:duration={seconds + 1}", format="lavfi") as container:
        yield from container.decode(audio=0)


def with_audio(footage: Footage, audio: str = "auto", source: str | os.PathLike[str] | None = None) -> Footage:
    """The footage with sound: `source`'s first audio stream if it has one, else (for a codec
    choice, not "auto") a tone; encoded as `audio` ("auto": AAC, and only a file's own sound);
    "none" gives the footage as it is. The sound is cut to the footage's loop, so both loop alike."""
    if audio not in AUDIO_CHOICES:
        raise FootageError(f"unknown audio {audio!r}: expected one of {', '.join(AUDIO_CHOICES)}")
    if audio == "none":
        return footage
    codec = "aac" if audio == "auto" else audio
    frames = footage.frames
    seconds = (frames[-1].pts - frames[0].pts) / CLOCK_HZ + 1 / footage.fps if frames else 0.0
    units: list[AudioUnit] = []
    try:
        if source is not None:
            with av.open(str(source)) as container:
                if container.streams.audio:
                    units = _encode_audio(container.decode(audio=0), codec, seconds)
        if not units and audio != "auto":
            units = _encode_audio(_tone(seconds), codec, seconds)
    except av.error.FFmpegError as exc:
        raise FootageError(f"cannot encode {codec} audio: {exc}") from exc
    if not units:
        return footage
    origin = frames[0].pts if frames else 0
    units = [AudioUnit(u.data, u.pts + origin) for u in units]
    return Footage(footage.codec, footage.width, footage.height, footage.fps, footage.frames, footage.duration_s,
                   codec, units)


# -- cache ------------------------------------------------------------------------------------
def _cache_path(cache_dir: Path, source: Path, codec: str, gop_s: float, max_seconds: float | None,
                size: tuple[int, int] | None) -> Path:
    st = source.stat()
    key = json.dumps([str(source.resolve()), st.st_size, st.st_mtime_ns, codec, gop_s, max_seconds,
                      list(size) if size else None, _CACHE_MAGIC.decode().strip()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{source.stem}-{codec}-{digest}.footage"


def _write_cache(file: Path, footage: Footage) -> None:
    """Magic, a JSON header with its length, then per frame (pts, key, length) and the bytes.
    Written to a temporary name and renamed, so a reader never sees half a file."""
    header = json.dumps({"codec": footage.codec, "width": footage.width, "height": footage.height,
                         "fps": footage.fps, "frames": len(footage.frames)}).encode()
    tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(_CACHE_MAGIC + struct.pack(">I", len(header)) + header)
            for f in footage.frames:
                out.write(_CACHE_FRAME.pack(f.pts, f.keyframe, len(f.data)))
                out.write(f.data)
        os.replace(tmp, file)
    except OSError as exc:  # a cache that cannot be written costs time, not correctness
        log.warning("footage cache %s not written: %s", file, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def _read_cache(file: Path) -> Footage | None:
    try:
        data = file.read_bytes()
    except OSError:
        return None
    try:
        if not data.startswith(_CACHE_MAGIC):
            raise ValueError("not a footage cache file")
        pos = len(_CACHE_MAGIC)
        (header_len,) = struct.unpack_from(">I", data, pos)
        header = json.loads(data[pos + 4:pos + 4 + header_len])
        pos += 4 + header_len
        frames = []
        for _ in range(header["frames"]):
            pts, key, length = _CACHE_FRAME.unpack_from(data, pos)
            pos += _CACHE_FRAME.size
            if pos + length > len(data):
                raise ValueError("truncated")
            frames.append(FootageFrame(data[pos:pos + length], pts, bool(key)))
            pos += length
        fps = header["fps"]
        return Footage(header["codec"], header["width"], header["height"], fps, frames, len(frames) / fps)
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        log.warning("footage cache %s ignored: %s", file, exc)
        return None
