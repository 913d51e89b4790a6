"""HLS with fMP4 segments, the fallback for players without Media Source Extensions.

One segment per GOP (key frame to key frame), built from the same fragments the WebSocket
viewers get, so HLS costs no second mux. A window of the last `size` segments is kept, and only
while someone asks for HLS (a live stream nobody fetches a playlist of holds no segments).
A change of picture format starts over with a discontinuity. Pure.
"""

from __future__ import annotations

import math
from collections import deque

IDLE_S = 30.0  # segments stop being built this long after the last playlist request


class HlsWindow:
    def __init__(self, size: int = 6) -> None:
        self.size = size
        self._segments: deque[tuple[int, float, bytes]] = deque()  # (sequence, duration s, data)
        self.next_sequence = 0
        self.discontinuity_sequence = 0
        self.last_request: float | None = None

    def wanted(self, now: float) -> bool:
        return self.last_request is not None and now - self.last_request < IDLE_S

    def add(self, data: bytes, duration_s: float) -> None:
        self._segments.append((self.next_sequence, duration_s, data))
        self.next_sequence += 1
        while len(self._segments) > self.size:
            self._segments.popleft()

    def restart(self) -> None:
        """A new init segment: what is listed so far cannot be played with it."""
        if self._segments:
            self.discontinuity_sequence += 1
        self._segments.clear()

    def stop(self) -> None:
        self._segments.clear()
        self.last_request = None

    @property
    def ready(self) -> bool:
        return bool(self._segments)

    def segment(self, sequence: int) -> bytes | None:
        for seq, _, data in self._segments:
            if seq == sequence:
                return data
        return None

    def playlist(self, query: str = "") -> str:
        """The media playlist; `query` (e.g. the viewer's token) is appended to every URI."""
        suffix = f"?{query}" if query else ""
        segments = list(self._segments)
        target = max([1, *(math.ceil(d) for _, d, _ in segments)])
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{segments[0][0] if segments else self.next_sequence}",
                 f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuity_sequence}",
                 "#EXT-X-INDEPENDENT-SEGMENTS", f'#EXT-X-MAP:URI="init.mp4{suffix}"']
        for seq, duration, _ in segments:
            lines += [f"#EXTINF:{duration:.3f},", f"{seq}.m4s{suffix}"]
        return "\n".join(lines) + "\n"
