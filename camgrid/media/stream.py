"""One incoming stream on a media node: RTP packets in, video frames out to its consumers.

packet → SSRC check → reorder buffer (UDP only) → PS demuxer → access units → live feed (and,
later, the recorder). Every stage counts what it saw, so that a stream that shows nothing can
be explained to the operator: no packets at all, packets with another SSRC, packets that are
not PS, or PS without video. Pure apart from the clock the caller passes; sockets live in
camgrid.media.ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from camgrid.media.fastpath import native as _native
from camgrid.media.jitter import JitterBuffer, Lost
from camgrid.media.live import LiveFeed
from camgrid.media.ps import AccessUnit, PsDemuxer
from camgrid.media.rtp import RtpError, RtpPacket, parse_rtp

TRANSPORTS = ("udp", "tcp-passive", "tcp-active")


@dataclass
class StreamSpec:
    stream_id: str
    transport: str = "udp"  # udp | tcp-passive (the device connects to us) | tcp-active (we connect)
    ssrc: int | None = None  # expected SSRC (the y= we offered); None accepts any
    ssrc_strict: bool = False  # drop packets with another SSRC instead of following them
    no_media_timeout_s: float = 10.0


class MediaStream:
    def __init__(self, spec: StreamSpec, *, created_at: float, latency_s: float = 0.2, audio_transcode: bool = True) -> None:
        if spec.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {spec.transport!r}")
        self.spec = spec
        self.created_at = created_at
        # TCP delivers in order; a reorder buffer there would only add latency.
        self.jitter = JitterBuffer(latency_s=latency_s) if spec.transport == "udp" else None
        self.demuxer = PsDemuxer()
        self.live = LiveFeed(audio_transcode=audio_transcode)
        self.consumers: list[Callable[[AccessUnit], None]] = []  # e.g. a recorder
        self.packets = self.bytes = self.bad_packets = 0
        self.ssrc_mismatch = 0
        self.ssrc_seen: int | None = None
        self.payload_types: set[int] = set()
        self.first_packet_at: float | None = None
        self.last_packet_at: float | None = None
        self.first_frame_at: float | None = None
        self.video_frames = self.audio_units = 0
        self.connected = False  # TCP: a connection is up
        self.error: str | None = None  # a transport failure the operator should see
        self.closed = False
        self.last_viewer_left_at: float | None = None

    # -- packets ----------------------------------------------------------------------------------
    def on_packet(self, data: bytes, now: float) -> None:
        self.packets += 1
        self.bytes += len(data)
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.bad_packets += 1
            return
        expected = self.spec.ssrc
        if expected is not None and packet.ssrc != expected:
            self.ssrc_mismatch += 1
            self.ssrc_seen = packet.ssrc
            if self.spec.ssrc_strict:
                return
        self.ssrc_seen = packet.ssrc
        if self.first_packet_at is None:
            self.first_packet_at = now
        self.last_packet_at = now
        self.payload_types.add(packet.payload_type)
        if self.jitter is None:
            self._deliver(packet, now)
            return
        for item in self.jitter.push(packet, now):
            self._deliver(item, now)

    def on_datagrams(self, datagrams: list[bytes], now: float) -> None:
        """A batch of datagrams from one socket read (or one TCP read's frames), exactly as
        `on_packet` for each in turn. With the native demuxer, runs of plain packets in order (the
        usual case) go to it in one call (NativePsDemuxer.feed_rtp): C checks each header
        (version, SSRC, sequence number, payload type), feeds the payload straight from the
        datagram and flushes at each marker, as `_deliver` would; no RtpPacket, no bytes object
        per payload, no reorder buffer, which is told how many went by. A run also ends after a
        datagram that completed a video key frame, so that `_units` reads the demuxer's codecs
        as `on_packet` would have. Anything else (a gap, a reordered, padded, extended or foreign
        packet, a first packet) takes `on_packet`. CAMGRID_NATIVE=0: `on_packet` for each."""
        feed_rtp = getattr(self.demuxer, "feed_rtp", None) if _native is not None else None
        expected = -1 if self.spec.ssrc is None else self.spec.ssrc
        if feed_rtp is None or not 0 <= expected + 1 <= 0x1_0000_0000:  # an SSRC no packet can carry
            for data in datagrams:
                self.on_packet(data, now)
            return
        jitter, on_packet, i, n = self.jitter, self.on_packet, 0, len(datagrams)
        while i < n:
            if jitter is not None:
                seq = jitter.in_order  # None while packets wait in the reorder buffer
            else:
                seq = -1 if self.first_packet_at is not None else None  # TCP: in order by nature
            if seq is None:
                on_packet(datagrams[i], now)
                i += 1
                continue
            units, count, payload_type, ssrc, wire = feed_rtp(datagrams, i, expected, seq)
            if not count:
                on_packet(datagrams[i], now)
                i += 1
                continue
            i += count
            self.on_run(units, count, payload_type, ssrc, wire, now)

    def on_run(self, units: list[AccessUnit], count: int, payload_type: int, ssrc: int, wire: int, now: float) -> None:
        """`count` in-order datagrams (`wire` bytes, the last with `ssrc`) went through the native
        demuxer in one run and finished `units` (NativePsDemuxer.feed_rtp, or the native UdpDrain of
        camgrid.media.ingest, which reads the run's state from `demuxer`, `spec.ssrc`,
        `jitter.in_order` and `first_packet_at` as on_datagrams does): the counters and the reorder
        buffer as `on_packet` would have left them, then the units."""
        self.packets += count
        self.bytes += wire
        self.ssrc_seen = ssrc
        self.last_packet_at = now
        self.payload_types.add(payload_type)
        if self.jitter is not None:
            self.jitter.passed(count)
        if units:
            self._units(units, now)

    def poll(self, now: float) -> None:
        """Release packets whose wait in the reorder buffer is over (call a few times a second)."""
        if self.jitter is not None:
            for item in self.jitter.poll(now):
                self._deliver(item, now)

    def _deliver(self, item: RtpPacket | Lost, now: float) -> None:
        if isinstance(item, Lost):
            self.demuxer.lost()
            return
        units = self.demuxer.feed(item.payload)
        if item.marker:
            units += self.demuxer.flush()
        if units:
            self._units(units, now)

    def _units(self, units: list[AccessUnit], now: float) -> None:
        live, consumers = self.live, self.consumers
        for unit in units:
            if 0xE0 <= unit.stream_id <= 0xEF:  # unit.is_video, without a property call per frame
                self.video_frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = now
                if unit.keyframe:  # the map came with it: an audio stream it lists is awaited
                    live.announce_audio(next((c for sid, c in self.demuxer.codecs.items() if 0xC0 <= sid <= 0xDF), None))
                live.push(unit)
            else:
                self.audio_units += 1
                live.push_audio(unit)
            for consumer in consumers:
                consumer(unit)

    # -- state -------------------------------------------------------------------------------------
    @property
    def lost_packets(self) -> int:
        return self.jitter.lost if self.jitter is not None else 0

    def no_media_reason(self, media_address: str) -> str:
        """Why nothing playable arrived, in words an operator can act on."""
        spec = self.spec
        if self.error:
            return self.error
        if self.packets == 0:
            if spec.transport == "tcp-passive":
                return (f"the device never connected to {media_address} (TCP passive): check that the SDP address "
                        "is reachable from the device (NAT, LAN vs public address) and that the port is open")
            if spec.transport == "tcp-active":
                return "no data on the TCP connection to the device"
            return (f"no RTP packet reached {media_address}: check that the SDP address is reachable from the "
                    "device (NAT, LAN vs public address) and that the UDP port is open in any firewall")
        if spec.ssrc is not None and self.ssrc_mismatch == self.packets - self.bad_packets and spec.ssrc_strict:
            return (f"SSRC mismatch: the device sends SSRC {self.ssrc_seen} but {spec.ssrc} was offered "
                    "(relax the SSRC check for this device)")
        if self.bad_packets == self.packets:
            return f"{self.packets} packets arrived but none was RTP"
        if self.video_frames == 0:
            pts = ",".join(str(p) for p in sorted(self.payload_types))
            return (f"RTP arrived (payload type {pts}) but carried no MPEG-PS video the demuxer could read "
                    f"({self.demuxer.resyncs} resyncs)")
        if self.live.init is None:
            return f"{self.video_frames} video frames arrived but none was a key frame with parameter sets"
        return "the stream stopped sending media"

    def stats(self) -> dict:
        track = self.live.track
        return {
            "stream_id": self.spec.stream_id, "transport": self.spec.transport, "ssrc": self.spec.ssrc,
            "ssrc_strict": self.spec.ssrc_strict, "ssrc_seen": self.ssrc_seen, "ssrc_mismatch": self.ssrc_mismatch,
            "packets": self.packets, "bytes": self.bytes, "bad_packets": self.bad_packets,
            "lost_packets": self.lost_packets, "video_frames": self.video_frames, "audio_units": self.audio_units,
            "keyframes": self.live.keyframes, "codec": track.codec if track else None,
            "codec_string": track.codec_string if track else None,
            "width": track.width if track else None, "height": track.height if track else None,
            "audio": (self.live.init_info() or {}).get("audio"), "audio_bad_units": self.live.audio_bad_units,
            "viewers": self.live.viewers, "connected": self.connected, "error": self.error,
            "created_at": self.created_at, "first_packet_at": self.first_packet_at,
            "last_packet_at": self.last_packet_at, "first_frame_at": self.first_frame_at,
            "last_viewer_left_at": self.last_viewer_left_at,
        }

    def close(self) -> None:
        self.closed = True
        self.live.close()
