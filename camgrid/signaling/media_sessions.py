"""Live streams from devices: INVITE, ACK, BYE, and the supervision that ends them.

A live stream is shared by everyone watching one channel. The first viewer starts it: the
least loaded media node opens a port, the device is INVITEd with the GB SDP (y= SSRC, PS over
RTP, UDP or TCP), its 200 is ACKed and its answer (SSRC, TCP address) passed to the node. A
supervisor reads the nodes' counters once a second and ends a stream (BYE) when:

- the device accepted but no video arrived within `media.no_media_timeout_s` — the reason the
  node found (no packets at all, SSRC mismatch, not PS, ...) goes into the event, because
  "timeout" alone is what operators of other platforms are left with;
- the device stopped sending for that long;
- nobody has watched for `media.linger_s`.

A device's own BYE ends the stream too. Every start and end is an event on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from camgrid.bus import Event, EventBus
from camgrid.config import Settings
from camgrid.gb28181 import mansrtsp
from camgrid.gb28181.sdp import (MediaDescription, SdpError, SessionDescription, build_sdp, make_ssrc, parse_sdp,
                                  stream_selector)
from camgrid.gb28181.sip.dialog import Dialog, DialogError, DialogTable
from camgrid.gb28181.sip.message import SipMessage
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable
from camgrid.gb28181.sip.transport import Peer
from camgrid.media.client import NodeClient, NodeError
from camgrid.signaling.errors import CommandError
from camgrid.signaling.registrations import RegistrationTable

log = logging.getLogger(__name__)

SUPERVISE_INTERVAL_S = 1.0
LOAD_FRESH_S = 2.0  # how long a node's load report is trusted when placing streams
RTPMAP = {96: "PS/90000", 97: "MPEG4/90000", 98: "H264/90000", 99: "H265/90000"}


@dataclass
class MediaSession:
    session_id: str
    device_id: str
    channel_id: str
    node: NodeClient
    transport: str
    ssrc: str
    peer: Peer
    created_at: float = field(default_factory=time.monotonic)
    state: str = "inviting"  # inviting | waiting_media | playing | ended
    dialog: Dialog | None = None
    ack: SipMessage | None = None
    acked: bool = False
    answered_at: float | None = None
    media_address: str = ""
    end_reason: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    reported_at: float = field(default_factory=time.monotonic)  # last time its node reported on it
    recording: bool = False  # its node records it: it does not end for want of viewers
    kind: str = "Play"  # Play | Playback | Download
    range_s: tuple[int, int] = (0, 0)  # Playback/Download: the device's recording range (Unix seconds)
    download_speed: int | None = None
    rtsp_cseq: int = 0
    speed: float = 1.0  # Playback: the pace asked for last (MANSRTSP Scale)
    paused: bool = False
    stream: int = 0  # Play: 0 the main stream, 1 the sub-stream (asked for with `selector`)
    selector: str = "none"  # the SDP dialect that asked for a stream other than the main one
    started_by: str | None = None  # Playback: the user who started it (it is theirs to control and stop)

    def describe(self) -> dict[str, Any]:
        s = self.stats
        return {
            "session_id": self.session_id, "device_id": self.device_id, "channel_id": self.channel_id,
            "state": self.state, "transport": self.transport, "ssrc": self.ssrc, "media_address": self.media_address,
            "node": self.node.url, "end_reason": self.end_reason, "codec": s.get("codec"),
            "codec_string": s.get("codec_string"), "width": s.get("width"), "height": s.get("height"),
            "viewers": s.get("viewers", 0), "packets": s.get("packets", 0), "lost_packets": s.get("lost_packets", 0),
            "video_frames": s.get("video_frames", 0), "recording": self.recording, "kind": self.kind,
            "stream": "sub" if self.stream else "main", "audio_codec": (s.get("audio") or {}).get("codec"),
            **({"range": {"from": _utc(self.range_s[0]).isoformat(), "to": _utc(self.range_s[1]).isoformat()},
                "speed": self.speed, "paused": self.paused, "started_by": self.started_by} if self.kind != "Play" else {}),
        }


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class MediaSessions:
    def __init__(self, settings: Settings, stack: SipStack, registrations: RegistrationTable, bus: EventBus,
                 nodes: list[NodeClient]) -> None:
        self.settings = settings
        self.media = settings.media
        self.stack = stack
        self.registrations = registrations
        self.bus = bus
        self.nodes = nodes
        self.dialogs = DialogTable()
        self._by_dialog: dict[tuple[str, str, str], MediaSession] = {}
        self.sessions: dict[str, MediaSession] = {}
        # (device, channel, stream) → its shared live stream; stream 0 is the main stream, the one
        # viewers get; the patrol may ask for the sub-stream (1), a session of its own
        self._live: dict[tuple[str, str, int], MediaSession] = {}
        self._starting: dict[tuple[str, str, int], asyncio.Future] = {}
        self._ssrc_seq = itertools.count(1)
        self._supervisor: asyncio.Task | None = None
        self._load_at: dict[int, float] = {}  # id(node) → when its last good load report came
        self._placed: dict[int, int] = {}  # id(node) → streams placed on it since that report
        self._load_error: dict[int, BaseException] = {}
        self.ended_total: dict[str, int] = {}
        self.exports: dict[str, NodeClient] = {}  # export id → the node writing it
        stack.on_response = self._on_stray_response

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise_loop())

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await asyncio.gather(*(self.end(s, "the platform is stopping") for s in list(self.sessions.values())),
                             return_exceptions=True)

    # -- starting ---------------------------------------------------------------------------------
    def running_live(self, device_id: str, channel_id: str, stream: int = 0) -> MediaSession | None:
        """The channel's live stream if one is running (or being started) now; None otherwise."""
        session = self._live.get((device_id, channel_id, stream))
        return session if session is not None and session.state != "ended" else None

    async def live(self, device_id: str, channel_id: str, *, transport: str | None = None, stream: int = 0,
                   selector: str = "none") -> MediaSession:
        """The running live stream of a channel, started if there is none. `stream` 1 asks for
        the sub-stream with the SDP `selector` dialect (camgrid.gb28181.sdp.stream_selector)."""
        if stream and selector == "none":
            raise CommandError(400, "a sub-stream needs a stream selector dialect (streamnumber, streamprofile, ...)")
        key = (device_id, channel_id, stream)
        session = self._live.get(key)
        if session is not None and session.state != "ended":
            return session
        pending = self._starting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._starting[key] = future
        try:
            session = await self._invite(device_id, channel_id, transport or self.media.transport, stream=stream,
                                         selector=selector if stream else "none")
            self._live[key] = session
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through shield
            raise
        finally:
            self._starting.pop(key, None)

    async def _pick_node(self) -> NodeClient:
        if not self.nodes:
            raise CommandError(503, "no media node is configured (media.embedded is off and media.nodes is empty)")
        # A load report is reused for LOAD_FRESH_S, with the streams placed since counted on top: a
        # burst of new streams (record plans at start-up) asks each node once, not once per stream.
        now = time.monotonic()
        stale = [n for n in self.nodes if now - self._load_at.get(id(n), -LOAD_FRESH_S) >= LOAD_FRESH_S]
        if stale:
            loads = await asyncio.gather(*(n.load() for n in stale), return_exceptions=True)
            for node, load in zip(stale, loads, strict=True):
                self._placed[id(node)] = 0
                if isinstance(load, dict):
                    self._load_at[id(node)] = now
                else:
                    self._load_at.pop(id(node), None)
                    self._load_error[id(node)] = load
        usable = [((n.last_load or {})["streams"] + self._placed.get(id(n), 0), (n.last_load or {})["viewers"], i)
                  for i, n in enumerate(self.nodes) if id(n) in self._load_at]
        if not usable:
            raise CommandError(503, f"no media node answers: {self._load_error.get(id(self.nodes[0]))}")
        node = self.nodes[min(usable)[2]]
        self._placed[id(node)] = self._placed.get(id(node), 0) + 1
        return node

    async def node_for(self, node_id: str) -> NodeClient:
        """The node that holds recordings written by `node_id` (its files are on that node's disk)."""
        for node in self.nodes:
            if (node.last_load or {}).get("node_id") == node_id:
                return node
        await asyncio.gather(*(n.load() for n in self.nodes), return_exceptions=True)
        for node in self.nodes:
            if (node.last_load or {}).get("node_id") == node_id:
                return node
        raise CommandError(503, f"the recordings are on media node {node_id!r}, which is not reachable or not configured")

    def _media_host(self, node: NodeClient, offered: dict[str, Any], peer: Peer) -> str:
        return offered.get("host") or self.media.advertised_host or self.stack.local_host(peer)

    async def playback(self, device_id: str, channel_id: str, start: datetime, end: datetime, *,
                       download_speed: int | None = None, transport: str | None = None) -> MediaSession:
        """Footage from the device's own storage (a Playback INVITE with t= start end), or a Download
        at `download_speed`. Each request is its own session; it ends at the device's MediaStatus 121."""
        if end <= start:
            raise CommandError(400, "the end of the range must be after its start")
        kind = "Download" if download_speed else "Playback"
        session = await self._invite(device_id, channel_id, transport or self.media.transport, kind=kind,
                                     range_s=(int(start.timestamp()), int(end.timestamp())), download_speed=download_speed)
        # The node tells the viewers where the footage is: from the range's start (the t= line's
        # whole seconds), and from each seek's target on (control).
        try:
            await session.node.mark_position(session.session_id, _utc(session.range_s[0]), "start")
        except NodeError as exc:
            log.warning("playback %s: the viewers will not be told its position: %s", session.session_id, exc)
        return session

    async def download(self, device_id: str, channel_id: str, start: datetime, end: datetime, *, speed: int = 4,
                       transport: str | None = None) -> MediaSession:
        """Copy a range of the device's own recording into the platform's: a Download INVITE whose
        stream the node records from the first packet, at the range's own wall-clock times. It
        ends at the device's MediaStatus 121; the footage then shows in the timeline like any."""
        if end <= start:
            raise CommandError(400, "the end of the range must be after its start")
        record = {"channel_id": channel_id, "device_id": device_id, "media_origin": start.isoformat()}
        session = await self._invite(device_id, channel_id, transport or self.media.transport, kind="Download",
                                     range_s=(int(start.timestamp()), int(end.timestamp())), download_speed=speed,
                                     record=record)
        session.recording = True  # no viewer needed: it ends when the device says the range is done
        return session

    async def _invite(self, device_id: str, channel_id: str, transport: str, *, kind: str = "Play",
                      range_s: tuple[int, int] = (0, 0), download_speed: int | None = None,
                      record: dict[str, Any] | None = None, stream: int = 0, selector: str = "none") -> MediaSession:
        peer = self.registrations.peer_of(device_id)
        if peer is None:
            raise CommandError(409, f"device {device_id} is not registered (offline); its video cannot be requested")
        node = await self._pick_node()
        ssrc = make_ssrc(kind != "Play", self.settings.sip.realm, next(self._ssrc_seq))
        session = MediaSession(uuid.uuid4().hex[:16], device_id, channel_id, node, transport, ssrc, peer, kind=kind,
                               range_s=range_s, download_speed=download_speed, stream=stream, selector=selector)
        try:
            offered = await node.open_stream(session.session_id, transport=transport, ssrc=int(ssrc),
                                             ssrc_strict=self.media.ssrc_strict, record=record)
        except NodeError as exc:
            raise CommandError(exc.status if exc.status in (409, 503) else 502, str(exc)) from None
        self.sessions[session.session_id] = session
        media_host = self._media_host(node, offered, peer)
        session.media_address = f"{media_host}:{offered['port']}"
        invite = self._build_invite(session, media_host, offered["port"])
        try:
            response = await self.stack.request(invite, peer, timeout=self.media.invite_timeout_s)
        except (TransactionTimeout, TransportUnavailable) as exc:
            reason = (f"device {device_id} did not answer the INVITE within {self.media.invite_timeout_s:.0f} s"
                      if isinstance(exc, TransactionTimeout) else f"device {device_id} cannot be reached: {exc}")
            await self._fail(session, reason, 504)
        status = response.status or 0
        if status >= 300:
            await self._fail(session, f"device {device_id} refused the stream: {status} {response.reason}", 502)
        try:
            self._confirm(session, invite, response)
            answer = parse_sdp(response.body)
        except (DialogError, SdpError) as exc:
            await self._fail(session, f"device {device_id} answered the INVITE with something unusable: {exc}", 502, bye=True)
        # The node learns the device's SSRC (and TCP address) before the ACK lets the device send:
        # in single-port mode a packet with an SSRC the node does not know yet has nowhere to go.
        await self._pass_answer(session, answer)
        self._send_ack(session)
        session.state = "waiting_media"
        session.answered_at = time.monotonic()
        self.bus.publish(Event("media.stream_started", channel_id, {
            "device_id": device_id, "session_id": session.session_id, "transport": transport,
            "media_address": session.media_address, "ssrc": ssrc}))
        return session

    def _build_invite(self, session: MediaSession, media_host: str, port: int) -> SipMessage:
        sip = self.settings.sip
        peer = session.peer
        tcp = session.transport != "udp"
        m = MediaDescription(media="video", port=port if session.transport != "tcp-active" else 9,
                             proto="TCP/RTP/AVP" if tcp else "RTP/AVP", formats=[str(pt) for pt in RTPMAP],
                             rtpmap=dict(RTPMAP), attributes=[("recvonly", None)])
        if tcp:
            m.attributes += [("setup", "passive" if session.transport == "tcp-passive" else "active"),
                             ("connection", "new")]
        if session.download_speed:
            m.attributes.append(("downloadspeed", str(session.download_speed)))
        if session.kind == "Play" and session.stream:
            m.attributes += stream_selector(session.selector, session.stream)
        history = session.kind != "Play"
        sdp = SessionDescription(origin_user=sip.id, origin_address=media_host, session_name=session.kind,
                                 uri=f"{session.channel_id}:0" if history else None, connection_address=media_host,
                                 time_start=session.range_s[0], time_end=session.range_s[1], media=[m], ssrc=session.ssrc)
        local_host, local_port = self.stack.local_host(peer), self.stack.local_port(peer)
        return self.stack.new_request(
            "INVITE", f"sip:{session.channel_id}@{peer.host}:{peer.port}", from_uri=f"sip:{sip.id}@{sip.realm}",
            to_uri=f"sip:{session.channel_id}@{sip.realm}", peer=peer,
            contact=f"<sip:{sip.id}@{local_host}:{local_port}>",
            headers=[("Subject", f"{session.channel_id}:{session.ssrc},{sip.id}:0")],
            body=build_sdp(sdp), content_type="APPLICATION/SDP",
        )

    def _confirm(self, session: MediaSession, invite: SipMessage, response: SipMessage) -> None:
        """Make the dialog from the 2xx and prepare its ACK (the ACK for a 2xx is ours to send, RFC 3261 13.2.2.4)."""
        dialog = Dialog.from_uac(invite, response, contactless_to_request_uri=True)
        session.dialog = self.dialogs.add(dialog)
        self._by_dialog[dialog.key] = session
        peer = session.peer
        session.ack = dialog.request("ACK", via_host=self.stack.local_host(peer), via_port=self.stack.local_port(peer),
                                     transport="TCP" if peer.transport == "tcp" else "UDP")

    def _send_ack(self, session: MediaSession) -> None:
        if session.ack is not None and not session.acked:
            session.acked = True
            self.stack.send(session.ack, session.peer)

    async def _pass_answer(self, session: MediaSession, answer: SessionDescription) -> None:
        ssrc = int(answer.ssrc) if answer.ssrc and answer.ssrc.isdigit() else None
        host = port = None
        if session.transport == "tcp-active":
            host = answer.media_address
            port = answer.media[0].port if answer.media else None
        try:
            await session.node.answer(session.session_id, ssrc=ssrc, host=host, port=port)
        except NodeError as exc:
            await self._fail(session, str(exc), 502, bye=True)

    async def _fail(self, session: MediaSession, reason: str, status: int, *, bye: bool = False) -> None:
        await self.end(session, reason, send_bye=bye)
        raise CommandError(status, reason)

    # -- waiting for video ------------------------------------------------------------------------
    async def wait_first_frame(self, session: MediaSession, timeout_s: float) -> bool:
        """True once the node has a key frame to show; False if the stream ended or time ran out."""
        # Asks the node itself every 50 ms rather than waiting for the once-a-second supervision
        # round: this wait is on the path of a viewer's time to first frame.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while session.state == "waiting_media" and loop.time() < deadline:
            try:
                stats = await session.node.stream(session.session_id)
            except NodeError:
                stats = None
            if stats and stats.get("codec") and stats.get("first_frame_at") is not None:
                session.stats = stats
                self._playing(session, stats)
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(session.first_frame.wait(), 0.05)
        return session.state == "playing"

    # -- ending -----------------------------------------------------------------------------------
    async def end(self, session: MediaSession, reason: str, *, send_bye: bool = True) -> None:
        if session.state == "ended":
            return
        session.state = "ended"
        session.end_reason = reason
        session.first_frame.set()  # wake waiters; they look at state
        self.sessions.pop(session.session_id, None)
        key = (session.device_id, session.channel_id, session.stream)
        if self._live.get(key) is session:
            del self._live[key]
        dialog = session.dialog
        if dialog is not None:
            self.dialogs.remove(dialog)
            self._by_dialog.pop(dialog.key, None)
            if send_bye and dialog.state != "terminated":
                await self._send_bye(session, dialog)
        with contextlib.suppress(NodeError):
            final = await session.node.close_stream(session.session_id)
            if final:
                session.stats = final
        kind = reason.split(":")[0][:60]
        self.ended_total[kind] = self.ended_total.get(kind, 0) + 1
        log.info("stream %s of %s ended: %s", session.session_id, session.channel_id, reason)
        self.bus.publish(Event("media.stream_ended", session.channel_id, {
            "device_id": session.device_id, "session_id": session.session_id, "reason": reason,
            "packets": session.stats.get("packets", 0), "video_frames": session.stats.get("video_frames", 0),
            "lost_packets": session.stats.get("lost_packets", 0)}))

    async def _send_bye(self, session: MediaSession, dialog: Dialog) -> None:
        self._send_ack(session)  # a 2xx is always ACKed, even one we hang up on at once
        peer = self.registrations.peer_of(session.device_id) or session.peer
        bye = dialog.request("BYE", via_host=self.stack.local_host(peer), via_port=self.stack.local_port(peer),
                             transport="TCP" if peer.transport == "tcp" else "UDP")
        with contextlib.suppress(TransactionTimeout, TransportUnavailable):
            await self.stack.request(bye, peer, timeout=5.0)

    # -- requests and responses from devices ------------------------------------------------------
    def on_request(self, req: SipMessage, peer: Peer) -> bool:
        """BYE/INFO inside one of our media dialogs; False when the request is not ours."""
        dialog = self.dialogs.for_request(req)
        session = self._by_dialog.get(dialog.key) if dialog else None
        if session is None:
            return False
        try:
            dialog.receive_request(req)
        except DialogError as exc:
            self.stack.respond(req, peer, exc.status, str(exc))
            return True
        self.stack.respond(req, peer, 200)
        if req.method == "BYE":
            asyncio.get_running_loop().create_task(self.end(session, "the device ended the stream (BYE)", send_bye=False))
        return True

    def on_media_status(self, device_id: str, target_id: str, notify_type: str) -> None:
        """Notify/MediaStatus from a device: 121 ends its playback or download of that channel."""
        if notify_type != "121":
            return
        for session in list(self.sessions.values()):
            if session.device_id == device_id and session.kind != "Play" and target_id in (session.channel_id, device_id):
                asyncio.get_running_loop().create_task(
                    self.end(session, "the device reached the end of the recording (MediaStatus 121)"))

    async def control(self, session: MediaSession, action: str, value: float | None = None) -> dict[str, Any]:
        """Pause, resume, seek (seconds into the range) or change speed of a Playback, with an
        in-dialog INFO carrying MANSRTSP."""
        if session.kind == "Play" or session.dialog is None or session.state == "ended":
            raise CommandError(409, "only a running playback of device storage can be paused, resumed, sought or sped up")
        session.rtsp_cseq += 1
        try:
            if action == "pause":
                body = mansrtsp.pause(session.rtsp_cseq)
            elif action == "resume":
                body = mansrtsp.resume(session.rtsp_cseq)
            elif action == "seek":
                body = mansrtsp.seek(session.rtsp_cseq, float(value if value is not None else -1))
            elif action == "speed":
                body = mansrtsp.speed(session.rtsp_cseq, float(value or 0))
            else:
                raise CommandError(400, f"unknown playback action {action!r}")
        except mansrtsp.MansrtspError as exc:
            raise CommandError(400, str(exc)) from None
        mark = await self._note_seek(session, value) if action == "seek" else None
        peer = self.registrations.peer_of(session.device_id) or session.peer
        info = session.dialog.request("INFO", via_host=self.stack.local_host(peer), via_port=self.stack.local_port(peer),
                                      transport="TCP" if peer.transport == "tcp" else "UDP", body=body.to_bytes(),
                                      content_type=mansrtsp.CONTENT_TYPE)
        try:
            response = await self.stack.request(info, peer, timeout=self.media.invite_timeout_s)
        except (TransactionTimeout, TransportUnavailable) as exc:
            await self._seek_answered(session, mark, False)
            raise CommandError(504, f"device {session.device_id} did not answer the playback control: {exc}") from None
        accepted = (response.status or 0) < 300
        await self._seek_answered(session, mark, accepted)
        if not accepted:
            raise CommandError(502, f"device {session.device_id} refused {action}: {response.status} {response.reason}")
        if action in ("pause", "resume"):
            session.paused = action == "pause"
        else:  # PLAY with Range or Scale resumes a paused playback
            session.paused = False
            if action == "speed":
                session.speed = float(value or 0)
        result = {"session_id": session.session_id, "action": action, "value": value}
        if action == "seek":
            result["wall"] = (_utc(session.range_s[0]) + timedelta(seconds=float(value or 0))).isoformat()
        return result

    async def _note_seek(self, session: MediaSession, value: float | None) -> int | None:
        """Before the seek goes out: the node notes where the footage of its target will start."""
        if value is None or value < 0:
            return None
        try:
            return await session.node.mark_position(session.session_id, _utc(session.range_s[0]) + timedelta(seconds=value),
                                                    "seek")
        except NodeError as exc:
            log.warning("playback %s: the viewers will not be told where the seek went: %s", session.session_id, exc)
            return None

    async def _seek_answered(self, session: MediaSession, mark: int | None, accepted: bool) -> None:
        if mark is None:
            return
        with contextlib.suppress(NodeError):
            await session.node.seek_answered(session.session_id, mark, accepted)

    def _on_stray_response(self, response: SipMessage, peer: Peer) -> None:
        # A retransmitted 2xx to our INVITE: the ACK was lost, send it again.
        if (response.status or 0) // 100 == 2 and response.cseq[1] == "INVITE":
            dialog = self.dialogs.for_response(response)
            session = self._by_dialog.get(dialog.key) if dialog else None
            if session is not None and session.ack is not None:
                self.stack.send(session.ack, peer)

    # -- supervision ------------------------------------------------------------------------------
    async def _supervise_loop(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL_S)
            try:
                await self.supervise()
            except Exception:  # one bad round must not end supervision
                log.exception("media supervision failed")

    async def supervise(self) -> None:
        by_node: dict[int, list[MediaSession]] = {}
        for session in list(self.sessions.values()):
            if session.state in ("waiting_media", "playing"):
                by_node.setdefault(id(session.node), []).append(session)
        for sessions in by_node.values():
            node = sessions[0].node
            try:
                report = await node.streams()
            except NodeError as exc:
                log.warning("%s", exc)
                for session in sessions:
                    if time.monotonic() - session.reported_at > self.media.no_media_timeout_s:
                        await self.end(session, f"media node unreachable: {exc}")
                continue
            now = report["now"]
            stats = {s["stream_id"]: s for s in report["streams"]}
            for session in sessions:
                current = stats.get(session.session_id)
                if current is None:
                    await self.end(session, f"media node {node.url} no longer has the stream (restarted?)")
                    continue
                session.stats = current
                session.reported_at = time.monotonic()
                await self._judge(session, current, now)

    async def _judge(self, session: MediaSession, s: dict[str, Any], now: float) -> None:
        timeout = self.media.no_media_timeout_s
        if session.state == "waiting_media":
            if s.get("codec") and s.get("first_frame_at") is not None:
                self._playing(session, s)
            elif now - s["created_at"] > timeout:
                await self.end(session, f"no video within {timeout:.0f} s: {s.get('diagnosis') or 'unknown cause'}")
                return
        if session.state == "playing":
            last = s.get("last_packet_at")
            if last is not None and now - last > timeout:
                await self.end(session, f"no media: the device stopped sending for {now - last:.0f} s")
                return
        if s.get("viewers", 0) == 0 and not session.recording:
            idle_since = s.get("last_viewer_left_at") or s["created_at"]
            if now - idle_since > self.media.linger_s:
                await self.end(session, f"no viewers for {self.media.linger_s:.0f} s")

    def _playing(self, session: MediaSession, s: dict[str, Any]) -> None:
        if session.state != "waiting_media":
            return
        session.state = "playing"
        session.first_frame.set()
        # "stream" tells the HD rate to take the resolution from main streams only (a sub-stream
        # is small by design)
        self.bus.publish(Event("media.first_frame", session.channel_id, {
            "session_id": session.session_id, "codec": s["codec"], "width": s["width"], "height": s["height"],
            "after_s": round(s["first_frame_at"] - s["created_at"], 3), "stream": "sub" if session.stream else "main"}))

    def collect(self) -> dict[str, Any]:
        return {"media_sessions": len(self.sessions),
                "media_sessions_playing": sum(1 for s in self.sessions.values() if s.state == "playing")}
