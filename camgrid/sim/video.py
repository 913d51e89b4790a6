"""Real video for simulated cameras: footage encoded once, then sent as MPEG-PS over RTP.

A platform under test has to receive what a GB/T 28181 camera sends: H.264 or H.265 in an
MPEG-2 program stream, cut into RTP packets, over UDP or RFC 4571 TCP, at the camera's frame
rate, forever. Encoding in real time per camera would cap a simulator at a handful of cameras,
so `load_footage` decodes a file once and re-encodes it with x264/x265 into Annex B frames
(no B-frames, so decode order is display order and PTS equals DTS; parameter sets repeated in
every key frame so a viewer can join at any of them), optionally cached on disk. Every simulated
camera then only muxes, packetizes and paces those frames: `PsRtpSender`.

Audio, as cameras with a microphone send it: `with_audio` adds the file's own sound or, for a
file without any (or the test pattern), a 440 Hz tone with a beep every second, encoded as
G.711A, G.711U (8 kHz, 40 ms a PES) or AAC (ADTS, 16 kHz, one frame a PES); the sender
interleaves it with the video by time, as PES 0xC0 listed in the program stream map.

PyAV (libav*) is the only dependency beyond the standard library; numpy is not needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av

from camgrid.media.audio import adts_header
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, mux_ps
from camgrid.media.rtp import RtpPacket, frame_tcp

log = logging.getLogger(__name__)

CLOCK_HZ = 90_000  # RTP and PS clock for video
ENCODERS = {"h264": "libx264", "h265": "libx265"}
DEFAULT_FPS = 25
SENDER_MODES = ("udp", "tcp-connect", "tcp-listen")
MAX_MTU_PAYLOAD = 65_000  # an RTP packet must fit a UDP datagram and a 2-byte RFC 4571 length
MAX_LAG_S = 1.0  # further behind schedule than this (a slow TCP peer), pacing restarts from now
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


# -- RTP --------------------------------------------------------------------------------------
def packetize(ps: bytes, *, ssrc: int, seq: int, timestamp: int, payload_type: int = 96,
              mtu_payload: int = 1400) -> list[bytes]:
    """One frame's PS bytes as RTP packets of at most `mtu_payload` payload bytes, sequence
    numbers from `seq` (wrapping), the marker bit on the last."""
    if mtu_payload <= 0:
        raise ValueError(f"mtu_payload must be positive, not {mtu_payload}")
    chunks = [ps[i:i + mtu_payload] for i in range(0, len(ps), mtu_payload)]
    return [RtpPacket(payload_type, (seq + i) & 0xFFFF, timestamp, ssrc, chunk, marker=i == len(chunks) - 1).to_bytes()
            for i, chunk in enumerate(chunks)]


def mode_for_offer(is_tcp: bool, setup: str | None) -> str:
    """The sender mode for a platform's SDP offer: a=setup:passive means the platform listens and
    the camera connects; a=setup:active means the platform connects to the camera."""
    if not is_tcp:
        return "udp"
    return "tcp-listen" if (setup or "").lower() == "active" else "tcp-connect"


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, sender: PsRtpSender) -> None:
        self._sender = sender

    def error_received(self, exc: Exception) -> None:
        # e.g. ConnectionRefusedError from an ICMP port unreachable: nobody listens yet; go on.
        self._sender.send_errors += 1


class PsRtpSender:
    """Sends one Footage as PS over RTP, paced by the frames' timestamps, looping for ever.

    mode: "udp" (to host:port), "tcp-connect" (the platform offered a=setup:passive: connect to
    host:port) or "tcp-listen" (a=setup:active: `await listen(host)` for the port to answer
    with, then the platform connects). `speed` divides the pacing (playback at 0.5x-8x); the
    media timestamps stay those of the footage. With `end_after_s`, sending stops after that
    much media time and `on_end()` is called (the camera then sends MediaStatus 121). A failure
    (the TCP peer gone, no connection within `connect_timeout_s`) ends sending: `error` says
    why and `on_error(error)` is called. Callbacks may be plain functions or coroutines.
    `bytes_sent` counts RTP packets (headers included, not the TCP length prefix); for UDP,
    `send_errors` counts errors the socket reported (ICMP port unreachable) while sending went on.
    `seek(seconds)` goes on from that point of the (looped) footage, as a camera playing its
    recording does after `Range: npt=<seconds>-`: from the key frame at or before it, with media
    timestamps that say where in the range it is (and so end_after_s still ends at the range's end).
    """

    def __init__(self, footage: Footage, ssrc: int, *, mode: str = "udp", host: str | None = None,
                 port: int | None = None, payload_type: int = 96, mtu_payload: int = 1400, speed: float = 1.0,
                 end_after_s: float | None = None, on_end: Callable[[], Any] | None = None,
                 on_error: Callable[[str], Any] | None = None, connect_timeout_s: float = 10.0) -> None:
        if mode not in SENDER_MODES:
            raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(SENDER_MODES)}")
        if mode != "tcp-listen" and (host is None or port is None):
            raise ValueError(f"mode {mode} needs the destination host and port")
        if not 0 < mtu_payload <= MAX_MTU_PAYLOAD:
            raise ValueError(f"mtu_payload must be 1..{MAX_MTU_PAYLOAD}, not {mtu_payload}")
        first_key = next((i for i, f in enumerate(footage.frames) if f.keyframe), None)
        if first_key is None:
            raise ValueError("the footage has no key frame to start from")
        self.footage, self.ssrc, self.mode, self.host, self.port = footage, ssrc, mode, host, port
        self.payload_type, self.mtu_payload = payload_type, mtu_payload
        self.speed = speed
        self.end_after_s, self.on_end, self.on_error = end_after_s, on_end, on_error
        self.connect_timeout_s = connect_timeout_s
        self._frames = footage.frames[first_key:]
        self._streams = {VIDEO_ID: footage.codec}
        if footage.audio_codec and footage.audio:
            self._streams[AUDIO_ID] = footage.audio_codec
        self._seq = random.getrandbits(16)
        self._ts_base = random.getrandbits(32)  # RFC 3550: random initial timestamp and sequence
        self.packets_sent = self.bytes_sent = self.frames_sent = self.send_errors = self.audio_sent = 0
        self.error: str | None = None
        self.seeks = 0  # seeks carried out (the next frame sent was the new position's key frame)
        self._seek_to: int | None = None  # media ticks asked for, not yet acted on
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._task: asyncio.Task | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._accepted: asyncio.Future | None = None
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"speed must be positive, not {value}")
        self._speed = float(value)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    async def listen(self, host: str = "0.0.0.0", port: int = 0) -> int:
        """tcp-listen: bind and return the local port (for the SDP answer); call before start()."""
        if self.mode != "tcp-listen":
            raise RuntimeError(f"listen() is for mode tcp-listen, not {self.mode}")
        if self._server is None:
            self._accepted = asyncio.get_running_loop().create_future()
            self._server = await asyncio.start_server(self._on_connection, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Begin sending in the background (connecting or waiting for the platform first for TCP).
        A sender sends once: after stop() or the end, make a new one."""
        if self._stopped:
            raise RuntimeError("this sender has stopped; make a new one")
        if self._task is not None:
            return
        if self.mode == "tcp-listen" and self._server is None:
            raise RuntimeError("tcp-listen: call listen() first, for the port to answer with")
        self._task = asyncio.create_task(self._run(), name=f"ps-rtp-{self.ssrc:010d}")

    async def stop(self) -> None:
        """Stop sending and close the sockets; safe to call more than once, or from a callback."""
        self._stopped = True
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
        self._close()

    async def wait(self) -> None:
        """Until sending has ended (end_after_s reached, an error, or stop())."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def pause(self) -> None:
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def seek(self, seconds: float) -> None:
        """Go on from `seconds` of media time since the start (a playback's npt); resumes if paused."""
        if not seconds >= 0:
            raise ValueError(f"a seek position must be 0 or more seconds, not {seconds}")
        self._seek_to = round(seconds * CLOCK_HZ)
        self._resumed.set()

    def key_position(self, ticks: int) -> int:
        """Media ticks of the key frame at or before `ticks`, where sending goes on after a seek there."""
        origin = self._frames[0].pts
        loop_ticks = self._frames[-1].pts - origin + self.footage.frame_period
        base, within = divmod(ticks, loop_ticks)
        key = max(f.pts - origin for f in self._frames if f.keyframe and f.pts - origin <= within)
        return base * loop_ticks + key

    # -- sending ------------------------------------------------------------------------------
    async def _run(self) -> None:
        ended = False
        try:
            await self._open()
            ended = await self._stream()
        except OSError as exc:  # includes ConnectionError and TimeoutError
            self.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.info("stream ssrc=%010d to %s:%s ended: %s", self.ssrc, self.host, self.port, self.error)
        finally:
            self._close()
            self._stopped = True
        if ended and self.on_end is not None:
            await _call(self.on_end)
        elif self.error is not None and self.on_error is not None:
            await _call(self.on_error, self.error)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.mode == "udp":
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self),
                                                               remote_addr=(self.host, self.port))
        elif self.mode == "tcp-connect":
            _, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                     self.connect_timeout_s)
        else:
            try:
                _, self._writer = await asyncio.wait_for(asyncio.shield(self._accepted), self.connect_timeout_s)
            except TimeoutError:
                raise TimeoutError(f"the platform did not connect within {self.connect_timeout_s:g} s") from None
            self._accepted = None
            self._server.close()  # one connection per stream

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._accepted is not None and not self._accepted.done():
            self._accepted.set_result((reader, writer))
        else:
            writer.close()

    def _schedule(self, start: int = 0) -> Iterator[tuple[int, FootageFrame | AudioUnit]]:
        """(media time in 90 kHz ticks since the start, frame or audio unit), in time order,
        looping: time keeps increasing. From `start` (the key frame at or before it) on."""
        origin = self._frames[0].pts
        loop_ticks = self._frames[-1].pts - origin + self.footage.frame_period
        audio = [u for u in self.footage.audio if origin <= u.pts < origin + loop_ticks] if AUDIO_ID in self._streams else []
        first = self.key_position(start)
        offset = first - first % loop_ticks
        skip = first % loop_ticks + origin  # in the first loop, what comes before the key frame is not sent
        while True:
            i = 0
            for frame in self._frames:
                while i < len(audio) and audio[i].pts < frame.pts:
                    if audio[i].pts >= skip:
                        yield offset + audio[i].pts - origin, audio[i]
                    i += 1
                if frame.pts >= skip:
                    yield offset + frame.pts - origin, frame
            for unit in audio[i:]:
                if unit.pts >= skip:
                    yield offset + unit.pts - origin, unit
            offset += loop_ticks
            skip = origin

    async def _stream(self) -> bool:
        """Send until cancelled or, with end_after_s, until that much media time: then True."""
        loop = asyncio.get_running_loop()
        end_ticks = round(self.end_after_s * CLOCK_HZ) if self.end_after_s is not None else None
        start = 0
        while True:
            deadline, previous = loop.time(), None
            for media, frame in self._schedule(start):
                if previous is not None:
                    deadline += (media - previous) / CLOCK_HZ / self._speed
                previous = media
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -MAX_LAG_S:
                    deadline = loop.time()  # far behind: carry on from now rather than burst
                if not self._resumed.is_set():
                    await self._resumed.wait()
                    deadline = loop.time()
                if self._seek_to is not None:
                    break  # a seek (during the wait or the pause): start over from there
                if end_ticks is not None and media >= end_ticks:
                    return True
                await self._send_frame(media, frame)
            else:
                return False  # not reached: the schedule never ends
            start, self._seek_to = self._seek_to, None
            self.seeks += 1

    async def _send_frame(self, media: int, frame: FootageFrame | AudioUnit) -> None:
        if isinstance(frame, AudioUnit):
            ps = mux_ps(AUDIO_ID, frame.data, media)
        else:
            ps = mux_ps(VIDEO_ID, frame.data, media, streams=self._streams, keyframe=frame.keyframe)
        packets = packetize(ps, ssrc=self.ssrc, seq=self._seq, timestamp=(self._ts_base + media) & 0xFFFFFFFF,
                            payload_type=self.payload_type, mtu_payload=self.mtu_payload)
        self._seq = (self._seq + len(packets)) & 0xFFFF
        if self._udp is not None:
            for packet in packets:
                self._udp.sendto(packet)  # errors arrive in _UdpProtocol.error_received
        else:
            self._writer.write(b"".join(frame_tcp(p) for p in packets))
            await self._writer.drain()  # raises ConnectionResetError / BrokenPipeError once the peer is gone
        if isinstance(frame, AudioUnit):
            self.audio_sent += 1
        else:
            self.frames_sent += 1
        self.packets_sent += len(packets)
        self.bytes_sent += sum(map(len, packets))

    def _close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._accepted is not None and self._accepted.done() and not self._accepted.cancelled():
            _, writer = self._accepted.result()  # accepted, but stopped before sending began
            writer.close()
        elif self._accepted is not None:
            self._accepted.cancel()
        self._accepted = None


async def _call(callback: Callable[..., Any], *args: Any) -> None:
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("stream callback %r failed", callback)
