"""Simulated cameras' sending side: footage (camgrid.sim.video) muxed into MPEG-PS, cut into RTP
packets and paced out over UDP or RFC 4571 TCP at the camera's frame rate, with pause, resume,
seek and speed for playback sessions (MANSRTSP): `PsRtpSender`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

from camgrid.media.ps import AUDIO_ID, VIDEO_ID, mux_ps
from camgrid.media.rtp import RtpPacket, frame_tcp
from camgrid.sim.video import CLOCK_HZ, AudioUnit, Footage, FootageFrame

log = logging.getLogger(__name__)

SENDER_MODES = ("udp", "tcp-connect", "tcp-listen")
MAX_MTU_PAYLOAD = 65_000  # an RTP packet must fit a UDP datagram and a 2-byte RFC 4571 length
MAX_LAG_S = 1.0  # further behind schedule than this (a slow TCP peer), pacing restarts from now


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
