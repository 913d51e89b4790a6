"""The camera side of a media session in the simulator: INVITE → 200 with SDP → ACK → PS/RTP → BYE.

A simulated channel answers an INVITE the way cameras do: 200 with `a=sendonly`, its own
y= SSRC (the offered one, or another when the `ssrc_mode` fault says so), f= with the video
format, and for TCP the opposite a=setup role. Media starts at the ACK and stops at a BYE from
the platform. Fault modes reproduce what breaks streams in the field: a device that accepts
and never sends (`silent`), one that refuses (`refuse`), one that answers with a different
SSRC (`other-ssrc`).

A Play INVITE that asks for the sub-stream (a=streamnumber:1, a=streamprofile:1, a=stream:1 or
a=streamMode:sub, see camgrid.gb28181.sdp.stream_selector) in one of the dialects the channel
understands (`substream_dialects`) gets a smaller picture: a file at half size, the test pattern at
320x180 (the main one is 320x240; smaller would look blurred to the detectors). A
channel that understands none of the offer's selectors sends its main stream, as real devices
do; `refuse_substream` answers such an INVITE with 488, as some devices do.

A Playback or Download plays the channel's "recording": the footage looped from the start of the
asked range. In-dialog INFO with MANSRTSP controls it as a device does: PAUSE, PLAY (resume),
`Scale:` (the pacing: 2.0 sends two seconds of recording per second) and `Range: npt=<s>-` (a
seek: sending starts over from the key frame at or before <s> seconds into the range, with media
timestamps of that position; a seek past the range's end ends it, MediaStatus 121).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from camgrid.gb28181 import mansrtsp
from camgrid.gb28181.manscdp.builders import media_status_notify
from camgrid.gb28181.sdp import (MediaDescription, SdpError, SessionDescription, build_sdp, parse_sdp,
                                  requested_stream)
from camgrid.gb28181.sip.dialog import Dialog, DialogError
from camgrid.gb28181.sip.headers import new_tag
from camgrid.gb28181.sip.message import SipMessage
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable
from camgrid.gb28181.sip.transport import Peer
from camgrid.sim.video import Footage, FootageError, load_footage, synthetic_footage, with_audio
from camgrid.sim.rtp_sender import PsRtpSender, mode_for_offer

log = logging.getLogger(__name__)

MEDIA_MODES = ("normal", "silent", "refuse", "other-ssrc")


@dataclass
class SimMediaOptions:
    stream_file: Path | None = None  # footage to send; None: a generated test pattern
    codec: str = "h264"
    gop_s: float = 1.0
    max_seconds: float | None = 60.0  # footage longer than this is cut (memory: frames are kept encoded)
    cache_dir: Path | None = None
    mode: str = "normal"  # one of MEDIA_MODES
    bind_host: str = "0.0.0.0"
    audio: str = "auto"  # sim.video.AUDIO_CHOICES: the file's own sound (auto), none, or g711a/g711u/aac (a tone without one)
    substream_dialects: tuple[str, ...] = ("all",)  # sub-stream selectors understood (sdp.STREAM_DIALECTS); () none
    refuse_substream: bool = False  # 488 to an INVITE that asks for a sub-stream


@dataclass
class _Call:
    channel_id: str
    sender: PsRtpSender | None
    dialog: Dialog
    stack: SipStack
    peer: Peer
    started: bool = False


class SimMedia:
    """Media sessions of all simulated channels of one simulator."""

    def __init__(self, opts: SimMediaOptions, on_event=None, send_message=None) -> None:  # noqa: ANN001
        if opts.mode not in MEDIA_MODES:
            raise ValueError(f"media mode must be one of {', '.join(MEDIA_MODES)}")
        self.opts = opts
        self.on_event = on_event or (lambda line: None)
        # send_message(channel_id, body) sends a MANSCDP MESSAGE from the channel's device (MediaStatus)
        self.send_message = send_message
        self.controls: list[tuple[str, str, float | None, float | None]] = []  # (channel, method, scale, npt) from INFO
        self.calls: dict[str, _Call] = {}  # Call-ID → call
        self.invites = 0
        self.byes = 0
        self._footage: Footage | None = None
        self._sub_footage: Footage | None = None
        self.streams_served: list[tuple[str, int]] = []  # (channel, 0 main | 1 sub) per INVITE answered
        self._footage_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def use_footage(self, footage: Footage) -> None:
        """Send this already-encoded footage (tests share one across simulators)."""
        self._footage = footage

    def use_sub_footage(self, footage: Footage) -> None:
        """Send this footage to INVITEs that ask for the sub-stream (tests share one)."""
        self._sub_footage = footage

    async def sub_footage(self) -> Footage:
        """The sub-stream: the main footage at half size (encoded once, on first use)."""
        async with self._footage_lock:
            if self._sub_footage is None:
                o = self.opts
                main = self._footage
                if o.stream_file is not None:
                    size = (main.width // 2, main.height // 2) if main is not None else (320, 180)
                    self._sub_footage = await asyncio.to_thread(
                        load_footage, o.stream_file, codec=o.codec, gop_s=o.gop_s, max_seconds=o.max_seconds,
                        size=(size[0] - size[0] % 2, size[1] - size[1] % 2), cache_dir=o.cache_dir)
                else:
                    self._sub_footage = await asyncio.to_thread(synthetic_footage, o.codec, 320, 180, 25, 4, o.gop_s)
            return self._sub_footage

    async def footage(self) -> Footage:
        """The footage every channel sends (encoded once, on first use, off the event loop)."""
        async with self._footage_lock:
            if self._footage is None:
                o = self.opts
                if o.stream_file is not None:
                    self._footage = await asyncio.to_thread(load_footage, o.stream_file, codec=o.codec, gop_s=o.gop_s,
                                                            max_seconds=o.max_seconds, cache_dir=o.cache_dir)
                else:
                    self._footage = await asyncio.to_thread(synthetic_footage, o.codec, 320, 240, 25, 4, o.gop_s)
                if o.audio != "none":
                    self._footage = await asyncio.to_thread(with_audio, self._footage, o.audio, o.stream_file)
            return self._footage

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for call in list(self.calls.values()):
            if call.sender is not None:
                await call.sender.stop()
        self.calls.clear()

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- requests from the platform --------------------------------------------------------------
    def handle(self, req: SipMessage, peer: Peer, stack: SipStack, channel_id: str, device_uri_host: str) -> None:
        if req.method == "INVITE":
            self.invites += 1
            self._spawn(self._answer_invite(req, peer, stack, channel_id, device_uri_host))
        elif req.method == "ACK":
            call = self.calls.get(req.call_id)
            if call is not None and call.sender is not None and not call.started:
                call.started = True
                self._spawn(call.sender.start())
        elif req.method == "BYE":
            self.byes += 1
            call = self.calls.pop(req.call_id, None)
            stack.respond(req, peer, 200 if call is not None else 481)
            if call is not None and call.sender is not None:
                self._spawn(call.sender.stop())
                self.on_event(f"media stopped on {channel_id} (BYE)")
        elif req.method == "INFO":
            call = self.calls.get(req.call_id)
            if call is None:
                stack.respond(req, peer, 481)
                return
            try:
                control = mansrtsp.parse(req.body)
            except mansrtsp.MansrtspError as exc:
                stack.respond(req, peer, 400, str(exc)[:80])
                return
            self.controls.append((channel_id, control.method, control.scale, control.npt))
            sender = call.sender
            if sender is not None:
                if control.method == "PAUSE":
                    sender.pause()
                elif control.method == "PLAY":
                    if control.scale:
                        sender.speed = control.scale  # the pacing: media time per second of wall time
                    if control.npt is not None:
                        sender.seek(control.npt)  # the recording from there (npt: seconds into the range)
                        self.on_event(f"media seek on {channel_id} to {control.npt:g} s")
                    sender.resume()
            stack.respond(req, peer, 200)

    async def _answer_invite(self, req: SipMessage, peer: Peer, stack: SipStack, channel_id: str, host: str) -> None:
        if self.opts.mode == "refuse":
            stack.respond(req, peer, 488, "Not Acceptable Here")
            return
        try:
            offer = parse_sdp(req.body)
            media = offer.media[0]
            dest = offer.media_address
            ssrc = int(offer.ssrc) if offer.ssrc and offer.ssrc.isdigit() else 0
        except (SdpError, IndexError) as exc:
            stack.respond(req, peer, 400, f"Bad SDP: {exc}"[:80])
            return
        if self.opts.mode == "other-ssrc":
            ssrc = random.randint(10**8, 2**31)  # the device's own choice, as many make it
        stream = 0
        if offer.session_name == "Play":
            stream = requested_stream(media, self.opts.substream_dialects) or 0
            if stream and self.opts.refuse_substream:
                stack.respond(req, peer, 488, "Not Acceptable Here")
                return
        try:
            footage = await (self.sub_footage() if stream else self.footage())
        except FootageError as exc:
            stack.respond(req, peer, 500, f"No video: {exc}"[:80])
            return
        mode = mode_for_offer(media.is_tcp, media.setup)
        sender = None
        port = 0
        history = offer.session_name in ("Playback", "Download")
        span = offer.time_end - offer.time_start if history and offer.time_end > offer.time_start else None
        speed = float(media.download_speed or 1) if offer.session_name == "Download" else 1.0
        if self.opts.mode != "silent":
            on_end = (lambda: self._reached_end(req.call_id, channel_id)) if span else None
            sender = PsRtpSender(footage, ssrc & 0xFFFFFFFF, mode=mode, host=None if mode == "tcp-listen" else dest,
                                 port=None if mode == "tcp-listen" else media.port, speed=speed, end_after_s=span,
                                 on_end=on_end)
            if mode == "tcp-listen":
                port = await sender.listen(self.opts.bind_host)
        local_ip = _local_ip_towards(dest or peer.host)
        answer_media = MediaDescription(media="video", port=port or (media.port if mode == "udp" else 9),
                                        proto=media.proto, formats=["96"], rtpmap={96: "PS/90000"},
                                        attributes=[("sendonly", None)])
        if media.is_tcp:
            answer_media.attributes += [("setup", "passive" if mode == "tcp-listen" else "active"), ("connection", "new")]
        answer = SessionDescription(origin_user=channel_id, origin_address=local_ip, session_name=offer.session_name,
                                    connection_address=local_ip, media=[answer_media], ssrc=f"{ssrc:010d}",
                                    f_field=_f_field(footage))
        tag = new_tag()
        try:
            dialog = Dialog.from_uas(req, tag)
        except DialogError as exc:
            stack.respond(req, peer, exc.status, str(exc)[:80])
            return
        self.calls[req.call_id] = _Call(channel_id, sender, dialog, stack, peer)
        self.streams_served.append((channel_id, stream))
        stack.respond(req, peer, 200, headers=[("Contact", f"<sip:{channel_id}@{host}>"), ("Content-Type", "APPLICATION/SDP")],
                      body=build_sdp(answer), to_tag=tag)
        self.on_event(f"media offered on {channel_id}: {mode} to {dest}:{media.port}, SSRC {ssrc:010d}")


    async def _reached_end(self, call_id: str, channel_id: str) -> None:
        """A playback or download sent its whole range: tell the platform (MediaStatus 121); it hangs up."""
        if call_id in self.calls and self.send_message is not None:
            await self.send_message(channel_id, media_status_notify(channel_id, 1))
            self.on_event(f"media end of file on {channel_id} (MediaStatus 121)")

    async def hang_up_all(self) -> None:
        """The cameras end every call themselves (BYE), as one does when it reboots or its stream fails."""
        for call_id, call in list(self.calls.items()):
            self.calls.pop(call_id, None)
            if call.sender is not None:
                await call.sender.stop()
            stack, peer = call.stack, call.peer
            bye = call.dialog.request("BYE", via_host=stack.local_host(peer), via_port=stack.local_port(peer),
                                      transport="TCP" if peer.transport == "tcp" else "UDP")
            with contextlib.suppress(TransactionTimeout, TransportUnavailable):
                await stack.request(bye, peer, timeout=5.0)


def _f_field(footage: Footage) -> str:
    """GB/T 28181 Annex F media format: v/codec/resolution/frame rate/rate control/kbit/s, then audio
    (left empty). Codec 2 is H.264; 5 is what 2022-edition devices send for H.265. Resolution
    codes: 1 QCIF, 2 CIF, 3 4CIF, 4 D1, 5 720P, 6 1080P."""
    codec = 2 if footage.codec == "h264" else 5
    h = footage.height
    resolution = 6 if h >= 1080 else 5 if h >= 720 else 4 if h >= 480 else 2 if h >= 240 else 1
    return f"v/{codec}/{resolution}/{round(footage.fps)}/1/2048a///"


def _local_ip_towards(remote: str) -> str:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((remote, 9))
        return s.getsockname()[0]
    return "127.0.0.1"
