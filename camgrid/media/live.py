"""Live fMP4 for viewers: access units in, one init segment plus a fragment per frame out.

A viewer that joins mid-stream gets the init segment and then the fragments of the current
GOP from its key frame on, at once, so its player starts decoding without waiting for the next
key frame (time to first frame ≈ the network, not the GOP length). Each frame is its own
fragment: that is what keeps latency low with Media Source Extensions. Fragments are built only
while someone watches (or fetches HLS): a stream that is only recorded costs no live muxing.

A viewer that cannot keep up (its queue over `max_queue_bytes`) loses what is queued and
resumes at the next key frame, so one slow browser never holds memory or delays the others.
Pure apart from asyncio.Event for waking viewers; no sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from camgrid.media.fmp4 import FragmentWriter, Sample, init_segment
from camgrid.media.h26x import H26xError, VideoTrack, track_from_frame
from camgrid.media.hls import HlsWindow
from camgrid.media.ps import AccessUnit
from camgrid.media.timeline import Timeline

MAX_GOP_BYTES = 32 << 20  # a GOP longer than this is not cached (a viewer waits for the next key frame)


@dataclass(slots=True)
class Chunk:
    """One message to a viewer: the init segment, or one frame's fragment."""

    data: bytes
    keyframe: bool
    init: bool = False
    track: VideoTrack | None = None  # with an init segment: what a player needs to set up its decoder


class Viewer:
    def __init__(self, max_queue_bytes: int) -> None:
        self.max_queue_bytes = max_queue_bytes
        self._queue: deque[Chunk] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self.waiting_for_key = False
        self.skipped = 0  # fragments dropped because the viewer fell behind
        self.closed = False

    def put(self, chunk: Chunk) -> None:
        if self.closed:
            return
        if self.waiting_for_key and not (chunk.keyframe or chunk.init):
            self.skipped += 1
            return
        if not chunk.init and self._bytes + len(chunk.data) > self.max_queue_bytes:
            self.skipped += len(self._queue)
            # Keep a queued init segment: what follows it needs it.
            inits = [c for c in self._queue if c.init][-1:]
            self._queue = deque(inits)
            self._bytes = sum(len(c.data) for c in inits)
            self.waiting_for_key = not chunk.keyframe
            if self.waiting_for_key:
                self.skipped += 1
                return
        self.waiting_for_key = False
        self._queue.append(chunk)
        self._bytes += len(chunk.data)
        self._wake.set()

    async def get(self) -> Chunk | None:
        """The next chunk; None once the viewer (or the stream) is closed and nothing is left."""
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        chunk = self._queue.popleft()
        self._bytes -= len(chunk.data)
        return chunk

    def close(self) -> None:
        self.closed = True
        self._wake.set()


@dataclass(slots=True)
class _Frame:
    unit: AccessUnit
    dts: int
    pts: int
    duration: int
    sequence: int  # its fragment's mfhd number: frames since the init segment
    chunk: Chunk | bool | None = None  # built fragment; False: the frame could not be muxed


class LiveFeed:
    def __init__(self, *, max_queue_bytes: int = 8 << 20) -> None:
        self.max_queue_bytes = max_queue_bytes
        self.track: VideoTrack | None = None
        self.init: bytes | None = None
        self._writer = FragmentWriter()
        self._gop: list[_Frame] = []  # the current GOP, for a viewer who joins now
        self._gop_bytes = 0
        self.hls = HlsWindow()
        self._viewers: set[Viewer] = set()
        self.timeline = Timeline()
        self.bad_frames = 0
        self.frames = 0
        self.keyframes = 0
        self.bad_parameter_sets = 0
        self.unplayable = 0  # frames before the first key frame with parameter sets

    @property
    def discontinuities(self) -> int:
        return self.timeline.discontinuities

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def push(self, unit: AccessUnit) -> None:
        """One video access unit (Annex B, 90 kHz timestamps) from the demuxer."""
        if unit.codec not in ("h264", "h265"):
            return
        if unit.keyframe:
            self._maybe_new_track(unit)
        if self.init is None:
            self.unplayable += 1
            return
        dts, pts = self.timeline.place(unit.pts, unit.dts)
        self.frames += 1
        frame = _Frame(unit, dts, pts, self.timeline.frame_ticks, self.frames)
        if unit.keyframe:
            self.keyframes += 1
            now = time.monotonic()
            if self._gop and self.hls.wanted(now):
                chunks = [c for c in map(self._chunk, self._gop) if c is not None]
                self.hls.add(b"".join(c.data for c in chunks), (dts - self._gop[0].dts) / 90_000)
            elif self.hls.ready and not self.hls.wanted(now):
                self.hls.stop()
            self._gop = []
            self._gop_bytes = 0
        if self._gop_bytes + len(unit.data) <= MAX_GOP_BYTES:
            self._gop.append(frame)
            self._gop_bytes += len(unit.data)
        if not self._viewers and self.hls.last_request is None:
            return  # nobody watches: the fragment is built only if someone joins during this GOP
        chunk = self._chunk(frame)
        if chunk is not None:
            for viewer in self._viewers:
                viewer.put(chunk)

    def _chunk(self, frame: _Frame) -> Chunk | None:
        """The frame's fMP4 fragment, built once, when a viewer (or HLS) first needs it."""
        if frame.chunk is None:
            try:
                data = self._writer.fragment([Sample(frame.unit.data, frame.dts, frame.pts, frame.duration,
                                                     frame.unit.keyframe)], sequence=frame.sequence)
            except ValueError:  # e.g. a frame without a single NAL unit: dropped, the stream goes on
                self.bad_frames += 1
                frame.chunk = False
                return None
            frame.chunk = Chunk(data, frame.unit.keyframe)
        return frame.chunk or None

    def _maybe_new_track(self, unit: AccessUnit) -> None:
        try:
            track = track_from_frame(unit.codec, unit.data)
        except H26xError:
            self.bad_parameter_sets += 1
            return
        if track is None or (self.track is not None and _same_track(track, self.track)):
            return
        # First key frame, or the device changed resolution/codec: viewers need a new init segment.
        self.track = track
        self.init = init_segment(track)
        self._writer = FragmentWriter()
        self._gop, self._gop_bytes = [], 0
        self.hls.restart()
        for viewer in self._viewers:
            viewer.put(Chunk(self.init, True, init=True, track=track))

    def add_viewer(self) -> Viewer:
        viewer = Viewer(self.max_queue_bytes)
        if self.init is not None:
            viewer.put(Chunk(self.init, True, init=True, track=self.track))
            for frame in self._gop:
                chunk = self._chunk(frame)
                if chunk is not None:
                    viewer.put(chunk)
        self._viewers.add(viewer)
        return viewer

    def remove_viewer(self, viewer: Viewer) -> None:
        viewer.close()
        self._viewers.discard(viewer)

    def close(self) -> None:
        for viewer in list(self._viewers):
            viewer.close()
        self._viewers.clear()


def _same_track(a: VideoTrack, b: VideoTrack) -> bool:
    return (a.codec, a.width, a.height, a.sps, a.pps, getattr(a, "vps", None)) == (
        b.codec, b.width, b.height, b.sps, b.pps, getattr(b, "vps", None))
