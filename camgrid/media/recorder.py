"""Recording of one stream into fMP4 segments on local disk: continuous, or around events
(the last `pre_s` held in memory, written with what follows until `post_s` after the last trigger).

Frames are gathered into parts of about `part_s` (one moof + mdat each); a part is written and
fsynced by a worker thread, and only then reported to the index (camgrid.media.recording_index),
so the index never claims footage that is not on disk. Parts that had to wait for the disk are
written together with one fsync (a group commit: fewer fsyncs and thread hand-offs exactly when
the disk lags), all or none of them. A segment file starts at a key frame and
is closed at the first key frame after `segment_s`, or when the picture format changes.

Audio (G.711 or AAC, camgrid.media.audio) is kept as the device sent it, in a second track of
the same fragments, placed on the video's timeline. A segment has an audio track when the audio
was known as it opened; audio that starts (or changes format) later closes the segment at the
next key frame, so the next one carries it. Audio that cannot be read is counted and dropped:
it never costs video. A continuous recording of a stream whose program stream map announces
audio (`announced_audio`) holds its first frames until the first audio unit has come, so that
its first segment has the audio track too (devices send the first audio just after the first key
frame); after AUDIO_WAIT_S of video without audio it starts video-only, and says why (log, stats).

Wall-clock times: a segment starts at the arrival time of its first frame and ends that much
media time later (its timestamps, made forward-only by camgrid.media.timeline).

A full disk (or any write error) does not end the recorder: the part is dropped, an event is
written once per episode, and writing resumes with a new segment when space is back; the gap
is an event with its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from camgrid.media.audio import AUDIO_CODECS, AudioConfig, AudioSample, AudioTrackBuilder
from camgrid.media.fmp4 import FragmentWriter, Sample, init_segment
from camgrid.media.h26x import H26xError, VideoTrack, track_from_frame
from camgrid.media.ps import AccessUnit
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.segment_file import SegmentWriter
from camgrid.media.timeline import Timeline

log = logging.getLogger(__name__)

MAX_QUEUED_PARTS = 30  # parts waiting for a slow disk before new ones are dropped
MAX_BATCH_BYTES = 8 << 20  # parts that waited are written together, with one fsync, up to this much
TIMESCALE = 90_000
AUDIO_WAIT_S = 2.0  # media time a recording waits for the first unit of the audio the map announces
AUDIO_STREAM_IDS = range(0xC0, 0xE0)


def announced_audio_of(codecs: dict[int, str]) -> str | None:
    """The audio codec a program stream map lists (stream id → codec, as the demuxer keeps it)."""
    return next((c for sid, c in codecs.items() if sid in AUDIO_STREAM_IDS and c in AUDIO_CODECS), None)


@dataclass
class _Segment:
    id: str
    path: Path
    relative: str
    start_wall: float
    first_dts: int
    track: VideoTrack
    audio: AudioConfig | None = None
    writer: SegmentWriter | None = None
    end_dts: int = 0
    bytes: int = 0
    failed: bool = False


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class Recorder:
    def __init__(self, *, channel_id: str, device_id: str, root: Path, index: RecordingIndex, node_id: str,
                 part_s: float = 1.0, segment_s: float = 60.0, clock=time.time,  # noqa: ANN001
                 event_mode: bool = False, pre_s: float = 10.0, post_s: float = 30.0,
                 media_origin: float | None = None, announced_audio: Callable[[], str | None] | None = None,
                 audio_wait_s: float = AUDIO_WAIT_S) -> None:
        self.channel_id = channel_id
        self.device_id = device_id
        self.root = root
        self.index = index
        self.node_id = node_id
        self.part_ticks = int(part_s * TIMESCALE)
        self.segment_ticks = int(segment_s * TIMESCALE)
        self.clock = clock
        self.timeline = Timeline()
        self._fragments = FragmentWriter()
        self._segment: _Segment | None = None
        self._samples: list[Sample] = []
        self._audio = AudioTrackBuilder()
        self._audio_samples: list[AudioSample] = []  # of the part being gathered
        self.audio_samples = self.audio_dropped = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self.parts_written = self.parts_dropped = self.segments = 0
        self.write_error: str | None = None
        self.bytes_written = 0
        self.stopped = False
        # Event mode: GOPs of the last pre_s are held in memory; trigger() writes them and what
        # follows until post_s after the last trigger.
        self.event_mode = event_mode
        self.pre_s, self.post_s = pre_s, post_s
        self.record_until = 0.0
        # GOPs: (unit, dts, pts, arrival) for a frame, (None, samples, config, arrival) for audio
        self._held: list[list[tuple]] = []
        self.triggers = 0
        # Importing a device's own recording (a Download): wall time comes from the footage's
        # range start plus its media time, not from when it arrived.
        self.media_origin = media_origin
        # The audio codec the stream's program stream map lists now (None: none); a continuous
        # recording holds its first frames (unit, dts, pts, arrival) until that audio has come.
        self.announced_audio = announced_audio
        self.audio_wait_ticks = int(audio_wait_s * TIMESCALE)
        self._first: list[tuple] | None = [] if announced_audio is not None and not event_mode else None
        self.audio_wait: str | None = None  # why the recording started without the announced audio
        self._awaited: str | None = None  # the codec the first frames are held for

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._write_loop())

    # -- frames in (the packet path: no I/O here) ---------------------------------------------------
    def push(self, unit: AccessUnit) -> None:
        if self.stopped:
            return
        if not unit.is_video:
            if unit.codec in AUDIO_CODECS:
                self._push_audio(unit)
            return
        if unit.codec not in ("h264", "h265"):
            return
        dts, pts = self.timeline.place(unit.pts, unit.dts)
        self._audio.video(unit.dts if unit.dts is not None else unit.pts, dts)
        now = self.clock() if self.media_origin is None else self.media_origin + dts / TIMESCALE
        if self.event_mode and now >= self.record_until:
            if self._segment is not None and unit.keyframe:
                self._cut(dts)  # the post-event time is over
            if self._segment is None:
                self._hold(unit, dts, pts, now)
                return
        if self._first is not None and self._await_audio(unit, dts, pts, now):
            return
        self._record(unit, dts, pts, now)

    def _await_audio(self, unit: AccessUnit, dts: int, pts: int, now: float) -> bool:
        """Hold the first frames while the announced audio has not come (True: held)."""
        first = self._first
        assert first is not None
        if not first:
            if not unit.keyframe:
                return False  # nothing to start a file with yet: _record drops it
            announced = self.announced_audio() if self.announced_audio is not None else None
            if announced not in AUDIO_CODECS or self._audio.config is not None:
                self._first = None  # no audio announced, or it is here already: start now
                return False
            self._awaited = announced
        elif dts - first[0][1] >= self.audio_wait_ticks:
            self.audio_wait = (f"the program stream map announces {self._awaited} audio but none came in "
                               f"{self.audio_wait_ticks / TIMESCALE:g} s: recording video only until it does")
            log.info("recording of %s: %s", self.channel_id, self.audio_wait)
            self._release_first()
            return False
        first.append((unit, dts, pts, now))
        return True

    def _release_first(self) -> None:
        """Record the frames held for the audio (with it, when it has come)."""
        held, self._first = self._first or [], None
        for unit, dts, pts, now in held:
            self._record(unit, dts, pts, now)

    def _push_audio(self, unit: AccessUnit) -> None:
        _, samples = self._audio.push(unit.codec, unit.pts, unit.data)
        if self._first and self._audio.config is not None:
            self._release_first()  # the announced audio came: the first segment opens with its track
        if not samples:
            return
        config = self._audio.config
        if self.event_mode and self._segment is None:
            if self._held:
                self._held[-1].append((None, samples, config, 0.0))
            return
        self._record_audio(samples, config)

    def _record_audio(self, samples: list[AudioSample], config: AudioConfig | None) -> None:
        seg = self._segment
        if seg is None:
            return
        if seg.audio != config:
            return  # the segment was opened without (or with other) audio: the next one carries it
        start = seg.first_dts * config.timescale // TIMESCALE
        for sample in samples:
            if sample.time >= start:  # audio from before the segment's first frame has no place in it
                self._audio_samples.append(sample)

    def _hold(self, unit: AccessUnit, dts: int, pts: int, now: float) -> None:
        if unit.keyframe:
            self._held.append([])
        if self._held:
            self._held[-1].append((unit, dts, pts, now))
            self._trim(now)

    def _trim(self, now: float) -> None:
        """Keep the GOPs that cover pre_s: drop the oldest while the next one starts early enough."""
        while len(self._held) > 1 and now - self._held[1][0][3] >= self.pre_s:
            self._held.pop(0)

    def trigger(self) -> None:
        """An event: record from pre_s before now until post_s after the latest trigger."""
        self.triggers += 1
        now = self.clock()
        starting = now >= self.record_until and self._segment is None
        self.record_until = max(self.record_until, now + self.post_s)
        if starting:
            self._trim(now)
            held, self._held = self._held, []
            for gop in held:
                for unit, dts, pts, at in gop:
                    if unit is None:
                        self._record_audio(dts, pts)  # held audio: (None, samples, config, _)
                    else:
                        self._record(unit, dts, pts, at)

    def _record(self, unit: AccessUnit, dts: int, pts: int, now: float) -> None:
        seg = self._segment
        if unit.keyframe:
            track = self._track_of(unit)
            if (seg is None or seg.failed or (track is not None and track != seg.track)
                    or dts - seg.first_dts >= self.segment_ticks or seg.audio != self._audio.config):
                self._cut(dts)
                if track is None and seg is not None:
                    track = seg.track
                if track is None:
                    return  # no parameter sets yet: nothing playable to start a file with
                self._new_segment(track, dts, now)
                seg = self._segment
        if seg is None:
            return
        if self._samples:
            self._samples[-1].duration = max(1, dts - self._samples[-1].dts)
        self._samples.append(Sample(unit.data, dts, pts, self.timeline.frame_ticks, unit.keyframe))
        if dts - self._samples[0].dts >= self.part_ticks:
            self._flush_part(keep_last=True)

    def _track_of(self, unit: AccessUnit) -> VideoTrack | None:
        try:
            return track_from_frame(unit.codec, unit.data)
        except H26xError:
            return None

    def _new_segment(self, track: VideoTrack, dts: int, now: float) -> None:
        seg_id = uuid.uuid4().hex
        start = _utc(now)
        relative = f"{self.channel_id}/{start:%Y%m%d}/{start:%H%M%S}-{seg_id[:8]}.mp4"
        audio = self._audio.config
        self._segment = _Segment(seg_id, self.root / relative, relative, now, dts, track, audio)
        self._fragments = FragmentWriter()
        self._samples = []  # anything left from a file that failed belongs to no file
        self._audio_samples = []
        self._queue.put_nowait(("open", self._segment, init_segment(track, audio=audio)))

    def _flush_part(self, *, keep_last: bool) -> None:
        """Write the gathered samples as one part. While recording, the newest sample stays
        behind: its duration is known only when the next frame arrives."""
        seg = self._segment
        samples = self._samples[:-1] if keep_last else self._samples
        if seg is None or not samples:
            return
        self._samples = self._samples[-1:] if keep_last else []
        end_dts = samples[-1].dts + samples[-1].duration
        audio = self._audio_samples
        if keep_last and audio and seg.audio is not None:  # the audio of the frames written; the rest waits
            end = end_dts * seg.audio.timescale // TIMESCALE
            cut = next((i for i, a in enumerate(audio) if a.time >= end), len(audio))
            audio, self._audio_samples = audio[:cut], audio[cut:]
        else:
            self._audio_samples = []
        try:
            part = self._fragments.fragment(samples, audio=audio if seg.audio is not None and audio else None)
            self.audio_samples += len(audio) if seg.audio is not None else 0
        except ValueError:
            try:  # bad audio must not cost the video
                part = self._fragments.fragment(samples)
                self.audio_dropped += len(audio)
            except ValueError:
                self.parts_dropped += 1
                return
        if self._queue.qsize() >= MAX_QUEUED_PARTS:
            self.parts_dropped += 1
            seg.failed = True  # the rest of this file would have a hole: start a new one at the next key frame
            return
        self._queue.put_nowait(("part", seg, part, end_dts))

    def _cut(self, next_dts: int | None) -> None:
        """Close the current segment; its last sample ends where the next frame starts."""
        if self._segment is None:
            return
        if self._samples and next_dts is not None and next_dts > self._samples[-1].dts:
            self._samples[-1].duration = next_dts - self._samples[-1].dts
        self._flush_part(keep_last=False)
        self._queue.put_nowait(("close", self._segment))
        self._segment = None

    # -- disk (a worker; the blocking calls run in threads) ---------------------------------------
    async def _write_loop(self) -> None:
        waiting = None  # a job taken from the queue while gathering parts, done next
        while True:
            job = waiting if waiting is not None else await self._queue.get()
            waiting = None
            try:
                if job[0] == "stop":
                    return
                if job[0] != "part":
                    await self._do(job)
                    continue
                batch, size = [job], len(job[2])
                while size < MAX_BATCH_BYTES and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt[0] != "part" or nxt[1] is not job[1]:
                        waiting = nxt
                        break
                    batch.append(nxt)
                    size += len(nxt[2])
                await self._write_parts(batch)
            except Exception:  # a bug here must not end recording for good
                log.exception("recorder of %s: job %s failed", self.channel_id, job[0])

    async def _do(self, job: tuple) -> None:
        kind, seg = job[0], job[1]
        if kind == "open":
            try:
                seg.writer = await asyncio.to_thread(SegmentWriter, seg.path, job[2])
            except OSError as exc:
                self._failed(seg, exc)
                return
            seg.bytes = seg.writer.bytes
            self.segments += 1
            t = seg.track
            self.index.opened({
                "id": seg.id, "channel_id": self.channel_id, "device_id": self.device_id,
                "start_at": _utc(seg.start_wall), "end_at": _utc(seg.start_wall), "bytes": seg.bytes,
                "path": seg.relative, "codec": t.codec, "width": t.width, "height": t.height, "state": "open",
                "audio_codec": seg.audio.codec if seg.audio is not None else None,
                "node_id": self.node_id, "created_at": _utc(self.clock())})
        elif kind == "part":
            await self._write_parts([job])
        elif kind == "close":
            if seg.writer is not None:
                await asyncio.to_thread(seg.writer.close)
                self.index.progressed(seg.id, self._end_at(seg), seg.bytes, state="closed")

    async def _write_parts(self, jobs: list[tuple]) -> None:
        """Parts of one segment ("part", seg, bytes, end_dts), written and fsynced together."""
        seg = jobs[0][1]
        if seg.writer is None or seg.failed:
            self.parts_dropped += len(jobs)
            return
        try:
            seg.bytes = await asyncio.to_thread(seg.writer.append_parts, [job[2] for job in jobs])
        except OSError as exc:
            self.parts_dropped += len(jobs) - 1
            self._failed(seg, exc)
            return
        seg.end_dts = jobs[-1][3]
        self.parts_written += len(jobs)
        self.bytes_written += sum(len(job[2]) for job in jobs)
        if self.write_error is not None:
            self.index.event("recording.resumed", self.channel_id, {"device_id": self.device_id, "after": self.write_error})
            self.write_error = None
        self.index.progressed(seg.id, self._end_at(seg), seg.bytes)

    def _end_at(self, seg: _Segment) -> datetime:
        return _utc(seg.start_wall + max(0, seg.end_dts - seg.first_dts) / TIMESCALE)

    def _failed(self, seg: _Segment, exc: OSError) -> None:
        seg.failed = True
        self.parts_dropped += 1
        cause = "disk full" if exc.errno == errno.ENOSPC else f"write error: {exc.strerror or exc}"
        if self.write_error is None:  # once per episode
            self.index.event("recording.write_failed", self.channel_id, {
                "device_id": self.device_id, "cause": cause, "path": seg.relative})
            log.error("recording of %s failed (%s); parts are dropped until writing works again", self.channel_id, cause)
        self.write_error = cause
        if seg is self._segment:
            self._segment = None  # start again with a new file at the next key frame

    async def stop(self) -> None:
        """Write what is gathered, close the segment, and wait for the disk."""
        if self.stopped:
            return
        if self._first:
            self._release_first()  # stopped while waiting for the audio: what came is kept, video only
        self._cut(None)
        self.stopped = True
        self._queue.put_nowait(("stop",))
        if self._worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def stats(self) -> dict:
        return {"channel_id": self.channel_id, "mode": "event" if self.event_mode else "continuous",
                "triggers": self.triggers, "segments": self.segments, "parts_written": self.parts_written,
                "parts_dropped": self.parts_dropped, "bytes_written": self.bytes_written, "write_error": self.write_error,
                "queued": self._queue.qsize(),
                "audio": self._audio.config.describe() if self._audio.config else None,
                "audio_samples": self.audio_samples, "audio_bad_units": self._audio.bad_units,
                "audio_wait": self.audio_wait, "audio_held_frames": len(self._first) if self._first else 0}
