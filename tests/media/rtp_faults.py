"""RTP packets of real muxed footage, and what networks and devices do to them: shared by the
native-vs-Python tests (test_stream_native, test_udp_drain_native). The two spoils mix faults
differently on purpose: one is what a stream's RTP handling sees, the other what a socket reads."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from camgrid.media.ps import AUDIO_ID, VIDEO_ID, mux_ps
from camgrid.media.rtp import parse_rtp
from camgrid.sim.rtp_sender import packetize
from camgrid.sim.video import synthetic_footage


def footage_packets(ssrc: int, first_seq: int, audio_by_gop: list[str | None], copies: int = 1,
                    video_by_copy: tuple[str, ...] = ("h264",)) -> list[bytes]:
    """Video and G.711 audio muxed as devices do, cut into RTP packets of varying size: 2 s of
    footage (50 frames, 5 key frames) `copies` times in a row. Each key frame's map lists the next
    audio codec of `audio_by_gop` (or none); the sequence numbers wrap when `first_seq` is near 65535.
    Copy k is coded in video_by_copy[k % len] (h264, h265: a codec change where they differ)."""
    by_codec = {codec: synthetic_footage(codec, 320, 240, 25, 2, gop_s=0.4) for codec in set(video_by_copy)}
    footage = by_codec[video_by_copy[0]]
    span = len(footage.frames) * footage.frame_period  # a copy follows the one before it in time
    frames = [(by_codec[video_by_copy[k % len(video_by_copy)]], f) for k in range(copies) for f in range(len(footage.frames))]
    out, seq, gop = [], first_seq, -1
    for i, (source, index) in enumerate(frames):
        frame = source.frames[index]
        gop += frame.keyframe
        audio = audio_by_gop[gop % len(audio_by_gop)]
        streams = {VIDEO_ID: source.codec, **({AUDIO_ID: audio} if audio else {})}
        pts = frame.pts + i // len(footage.frames) * span
        data = mux_ps(VIDEO_ID, frame.data, pts, streams=streams, keyframe=frame.keyframe)
        if audio and i % 2:
            data += mux_ps(AUDIO_ID, bytes([0xD5 ^ (i & 0xFF)]) * 320, pts + 1800)
        frame_packets = packetize(data, ssrc=ssrc, seq=seq, timestamp=pts, mtu_payload=200 + 131 * (i % 7))
        out += frame_packets
        seq = (seq + len(frame_packets)) & 0xFFFF
    return out


def rewrite(p: bytes, **changes) -> bytes:  # noqa: ANN003
    packet = parse_rtp(p)
    for name, value in changes.items():
        setattr(packet, name, value)
    return packet.to_bytes()


def padded(p: bytes, pad: int) -> bytes:
    return bytes([p[0] | 0x20]) + p[1:] + bytes(pad - 1) + bytes([pad])


def spoil_stream(packets: list[bytes], rng: random.Random, rate: float, ssrc: int, foreign: int,
                 restart: bool = False) -> list[bytes]:
    """What a stream's RTP handling sees, each fault at `rate`: loss, duplicates, early and late
    packets, a `foreign` SSRC, extensions, CSRCs, padding, other payload types, empty payloads,
    garbage, RTP version 1, packets cut short. With `restart`, the device restarts once somewhere
    (`ssrc` or another, other sequence numbers from there on)."""
    def more(p: bytes, r: float, out: list[bytes]) -> None:
        if r < 4:
            out.append(p)
            out.insert(max(0, len(out) - rng.randint(2, 40)), p)  # a late copy
        elif r < 4.5:
            out += [rewrite(p, ssrc=foreign), p]  # a foreign packet first
        elif r < 5:
            out.append(rewrite(p, extension=(0xBEDE, bytes(4 * rng.randint(0, 3)))))
        elif r < 5.5:
            out.append(rewrite(p, csrcs=(7, 8)[:rng.randint(1, 2)]))
        elif r < 6:
            out.append(padded(p, rng.randint(1, 40)))
        elif r < 6.5:
            out.append(rewrite(p, payload_type=rng.choice([8, 96, 98])))  # another payload type
        elif r < 7:
            out += [rewrite(p, payload=b""), p]  # an empty packet first (same number: a duplicate)
        elif r < 7.5:
            out += [bytes(rng.randrange(256) for _ in range(rng.randrange(16))), p]  # garbage, short headers
        elif r < 8:
            out += [b"\x40" + p[1:], p]  # RTP version 1
        elif r < 9:
            out.append(p[:rng.randrange(12, max(13, len(p)))])  # cut short: its payload is a piece of the PS
        else:
            out.append(p)
    return _spoil(packets, rng, rate, ssrc, restart, more)


def spoil_datagrams(packets: list[bytes], rng: random.Random, rate: float, ssrc: int, foreign: int,
                    restart: bool) -> list[bytes]:
    """What a socket reads, each fault at `rate`: loss, duplicates, early packets, a `foreign`
    SSRC, extensions, a CSRC, padding, other payload types, empty datagrams, datagrams shorter
    than a header, packets cut short, oversized datagrams (up to the largest UDP payload). With
    `restart`, one device restart somewhere (`ssrc` or another, other sequence numbers from there on)."""
    def more(p: bytes, r: float, out: list[bytes]) -> None:
        if r < 4:
            out += [rewrite(p, ssrc=foreign), p]  # a foreign packet first
        elif r < 5:
            out.append(rewrite(p, extension=(0xBEDE, bytes(4 * rng.randint(0, 3)))))
        elif r < 5.5:
            out.append(rewrite(p, csrcs=(7,)))
        elif r < 6:
            out.append(padded(p, rng.randint(1, 40)))
        elif r < 6.5:
            out.append(rewrite(p, payload_type=rng.choice([8, 98])))
        elif r < 7:
            out += [b"", p]  # an empty datagram first
        elif r < 8:
            out += [bytes(rng.randrange(256) for _ in range(rng.randrange(12))), p]  # shorter than a header
        elif r < 9:
            out.append(p[:rng.randrange(12, max(13, len(p)))])  # cut short
        elif r < 9.3:
            out += [p[:12] + os.urandom(rng.choice([9000, 65_507 - 12])), p]  # oversized: a whole UDP datagram
        else:
            out.append(p)
    return _spoil(packets, rng, rate, ssrc, restart, more)


def _spoil(packets: list[bytes], rng: random.Random, rate: float, ssrc: int, restart: bool,
           more: Callable[[bytes, float, list[bytes]], None]) -> list[bytes]:
    """Every packet sent as `ssrc`; loss, duplicates and early packets here, the mix's other faults
    in `more` (r from 3 up). A fault whose band of r is w wide happens at w × `rate`."""
    out: list[bytes] = []
    shift_ssrc, shift_seq = 0, 0
    restart_at = rng.randrange(len(packets)) if restart else -1
    for i, p in enumerate(packets):
        if i == restart_at:
            shift_ssrc, shift_seq = rng.choice([0, 0x99]), rng.randrange(1, 1 << 16)
        p = rewrite(p, ssrc=ssrc ^ shift_ssrc, sequence=(int.from_bytes(p[2:4], "big") + shift_seq) & 0xFFFF)
        r = rng.random() / max(rate, 1e-9)
        if r >= 12:
            out.append(p)
        elif r < 1:
            continue  # lost
        elif r < 2:
            out += [p, p]  # duplicated at once
        elif r < 3 and out:
            out.insert(len(out) - rng.randint(1, min(len(out), 30)), p)  # early by up to 30 places
        else:
            more(p, r, out)
    return out
