"""Where a device playback is in its recording, for the viewers of its stream.

A device playing its own storage (a Playback INVITE) sends footage of the asked range; after a
seek (MANSRTSP `Range: npt=`) it goes on from the new point. The node's fMP4 timeline only
moves forward (camgrid.media.timeline), so the player's clock alone cannot say which moment of
the recording it shows. The platform tells the node two things: the stream's first picture is
the range's start, and the first picture after the device accepted a seek is the seek's target.
The node turns each into a mark, "this point of the fMP4 timeline (`media_s`) is this wall-clock
time", and sends it to every viewer as a "segment" text message: the message recorded playback
sends for the same purpose, so a player maps its clock to wall time one way for both.

The first picture after a seek is found by frame number: the live feed numbers its fragments
(mfhd sequence). Just before the platform sends the seek, the node notes the feed's frame
count; the seek's footage starts with the first key frame numbered after it (a device goes on
from a key frame). Noted before the request rather than after the device's answer, because the
device may send its new key frame before its answer has reached the node; the mark is sent to
viewers once the device has accepted (a refused seek is forgotten). A watcher of its own (a
viewer inside the node) reads the fragments while a mark waits, so a browser that connects
later still gets the exact place. Frames the
demuxer received before the first key frame with parameter sets are not on the timeline: the
start mark is moved on by as many frame intervals. Limits: a device starts from the key frame
at or before the target, so the picture can be up to a GOP earlier than its mark says; a
regular key frame that the device sent between the request and acting on it is taken for the
seek's (a window of a network round trip, against a GOP of a second or more).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from camgrid.media.fmp4 import read_boxes
from camgrid.media.stream import MediaStream

TIMESCALE = 90_000
MAX_MARKS = 64  # a viewer that joins gets these; older ones are of no use to a player


@dataclass(frozen=True, slots=True)
class Mark:
    number: int  # in the order the marks were placed
    media_s: float
    wall: datetime
    cause: str  # start | seek

    def message(self) -> dict:
        return {"type": "segment", "media_s": round(self.media_s, 6), "wall": self.wall.isoformat(), "cause": self.cause}


def fragment_position(data: bytes) -> tuple[int, int] | None:
    """(mfhd sequence number, first track's tfdt) of a moof+mdat fragment; None if it has none."""
    moof = next(((pos, size) for kind, pos, size in read_boxes(data) if kind == "moof"), None)
    if moof is None:
        return None
    sequence = base = None
    for kind, pos, size in read_boxes(data, moof[0] + 8, moof[0] + moof[1]):
        if kind == "mfhd" and size >= 16:
            sequence = struct.unpack_from(">I", data, pos + 12)[0]
        elif kind == "traf" and base is None:
            for child, cpos, csize in read_boxes(data, pos + 8, pos + size):
                if child == "tfdt":
                    version = data[cpos + 8]
                    base = struct.unpack_from(">Q" if version == 1 else ">I", data, cpos + 12)[0]
                    break
    if sequence is None or base is None:
        return None
    return sequence, base


@dataclass(slots=True)
class _Seek:
    after: int  # the feed's frame count when the seek was about to be sent
    wall: datetime
    accepted: bool = False
    media_ticks: int | None = None  # where its first key frame landed on the timeline


class PlaybackPosition:
    """The marks of one stream and the watcher that places the waiting ones."""

    def __init__(self, stream: MediaStream) -> None:
        self.stream = stream
        self.live = stream.live
        self.marks: list[Mark] = []
        self._start: datetime | None = None
        self._seeks: dict[int, _Seek] = {}
        self._watcher: asyncio.Task | None = None
        self._numbers = 0

    def start_at(self, wall: datetime) -> None:
        """The stream's first picture is `wall` (the start of the played range)."""
        self._start = wall
        self._watch()

    def seek_to(self, wall: datetime) -> int:
        """A seek to `wall` is about to be sent to the device: its footage starts with the next
        key frame. Published once `accepted`; the number returned names it."""
        self._numbers += 1
        self._seeks[self._numbers] = _Seek(self.live.frames, wall)
        self._watch()
        return self._numbers

    def answered(self, number: int, accepted: bool) -> bool:
        """The device accepted the seek (it is published as soon as its key frame is here) or
        refused it (forgotten). False for a number this stream does not know."""
        seek = self._seeks.get(number)
        if seek is None:
            return False
        if not accepted:
            del self._seeks[number]
            return True
        seek.accepted = True
        if seek.media_ticks is not None:
            self._publish(number)
        return True

    def _publish(self, number: int) -> None:
        seek = self._seeks.pop(number)
        # A later seek placed on the same frame (the device went on from the last one it got) wins.
        self._place(number, seek.media_ticks or 0, seek.wall, "seek")

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._run())

    def _place(self, number: int, media_ticks: int, wall: datetime, cause: str) -> None:
        mark = Mark(number, media_ticks / TIMESCALE, wall, cause)
        self.marks = sorted([*self.marks, mark], key=lambda m: (m.media_s, m.number))[-MAX_MARKS:]

    def _unplaced(self) -> bool:
        return self._start is not None or any(s.media_ticks is None for s in self._seeks.values())

    async def _run(self) -> None:
        viewer = self.live.add_viewer()
        try:
            while self._unplaced():
                chunk = await viewer.get()
                if chunk is None:
                    return  # the stream ended
                if chunk.init:
                    if self._start is not None:
                        # The timeline starts at 0 with the first key frame that had parameter sets.
                        skipped = self.live.unplayable * self.live.timeline.frame_ticks / TIMESCALE
                        self._place(0, 0, self._start + timedelta(seconds=skipped), "start")
                        self._start = None
                    continue
                if not chunk.keyframe:
                    continue  # a device goes on from a key frame after a seek
                position = fragment_position(chunk.data)
                if position is None:
                    continue
                sequence, base = position
                for number, seek in list(self._seeks.items()):
                    if seek.media_ticks is None and seek.after < sequence:
                        seek.media_ticks = base
                        if seek.accepted:
                            self._publish(number)
        finally:
            self.live.remove_viewer(viewer)
            if self.live.viewers == 0:  # as when a browser leaves: the stream lingers from now
                self.stream.last_viewer_left_at = time.monotonic()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
