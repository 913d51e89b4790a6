"""A device's timestamps made safe for MP4: a decode timeline that only moves forward.

PS timestamps are 33 bits at 90 kHz and wrap every 26.5 hours; devices restart theirs when
they reconnect or change settings, and some send a jump now and then. A player (or a recorded
file) must never see time go back, so each frame's DTS is placed after the previous one: by
the device's own step when it is plausible (0 < step ≤ 10 s), else by one frame interval,
counted as a discontinuity. The composition offset (PTS − DTS, B-frames) is kept.
"""

from __future__ import annotations

TS_MASK = (1 << 33) - 1
MAX_JUMP = 10 * 90_000
DEFAULT_FRAME_TICKS = 3600  # 25 fps, until two frames give the real interval


class Timeline:
    __slots__ = ("_last_raw", "last_dts", "frame_ticks", "discontinuities")

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self.last_dts = 0
        self.frame_ticks = DEFAULT_FRAME_TICKS
        self.discontinuities = 0

    def place(self, pts: int | None, dts: int | None) -> tuple[int, int]:
        """(dts, pts) of the next frame on the forward-only timeline, which starts at 0."""
        raw = dts if dts is not None else pts
        if raw is None:
            raw = ((self._last_raw or 0) + self.frame_ticks) & TS_MASK
        composition = 0
        if pts is not None:
            composition = (pts - raw) & TS_MASK
            if composition >= 1 << 32:
                composition -= 1 << 33
            if not -MAX_JUMP <= composition <= MAX_JUMP:
                composition = 0
        if self._last_raw is None:
            out = 0
        else:
            step = (raw - self._last_raw) & TS_MASK
            if 0 < step <= MAX_JUMP:
                if step < 90_000:
                    self.frame_ticks = step
            else:  # backwards, repeated, or a jump: carried over at the frame rate
                step = self.frame_ticks
                self.discontinuities += 1
            out = self.last_dts + step
        self._last_raw, self.last_dts = raw, out
        return out, max(out + composition, 0)
