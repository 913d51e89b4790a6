"""Live fMP4 for viewers: access units in, one init segment plus a fragment per frame out.

A viewer that joins mid-stream gets the init segment and then the fragments of the current
GOP from its key frame on, at once, so its player starts decoding without waiting for the next
key frame (time to first frame ≈ the network, not the GOP length). Each frame is its own
fragment: that is what keeps latency low with Media Source Extensions. Fragments are built only
while someone watches (or fetches HLS): a stream that is only recorded costs no live muxing.
Nor does it pay for keeping the GOP ready: its frames are kept as they came, unplaced, and are
put on the timeline only when a viewer joins (or HLS starts, or audio comes, which is placed
against the last video frame); at the next key frame a GOP nobody saw only moves the timeline
and the audio clock on. A viewer cannot tell: it receives byte for byte what a feed that placed
every frame on arrival sends (`defer_unwatched=False`, tests/media/test_live_unwatched.py). A
key frame whose leading bytes, up to its parameter sets, are those of the key frame that gave
the track is not parsed again.

A viewer that cannot keep up (its queue over `max_queue_bytes`) loses what is queued and
resumes at the next key frame, so one slow browser never holds memory or delays the others.

Audio rides in the video's fragments: the audio that arrived since the previous frame goes into
the next frame's fragment as a second traf (so a GOP, HLS and a late joiner carry it too). AAC
is passed through; G.711, which browsers cannot play, is transcoded to AAC while someone
watches (`audio_transcode`), or else left out, and the "init" info says which (`audio`). The
audio track enters the init segment at the first key frame after the audio is first seen (or
changes format); the program stream map announces the audio stream with the first key frame,
so G.711 (whose format the map alone gives) is in the first init segment, and for AAC (whose
rate and channels only its ADTS headers give) the first key frame and the frames after it are
held until its first header comes (usually a few frames later), then played from that key
frame with the audio track in the init segment; a stream whose announced AAC does not come
within AUDIO_WAIT_KEYFRAMES GOPs starts without it. One init segment from the start, which a
single MP4 reader (live.mp4) needs, and no GOP lost to waiting.
Audio that cannot be read is counted (`audio_bad_units`), never fatal.
Pure apart from asyncio.Event for waking viewers; no sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from camgrid.media.audio import (
    AUDIO_CODECS, G711_CODECS, AudioConfig, AudioError, AudioSample, AudioTrackBuilder, g711_config,
)
from camgrid.media.fmp4 import FragmentWriter, Sample, init_segment
from camgrid.media.h26x import H26xError, VideoTrack, track_and_extent
from camgrid.media.hls import HlsWindow
from camgrid.media.ps import AccessUnit
from camgrid.media.timeline import Timeline

MAX_GOP_BYTES = 32 << 20  # a GOP longer than this is not cached (a viewer waits for the next key frame)
MAX_PENDING_AUDIO = 100  # audio samples waiting for a video frame (the video stalled): the oldest go
AUDIO_WAIT_KEYFRAMES = 2  # AAC the map announces but that has not come yet: GOPs the first init waits


@dataclass(slots=True)
class Chunk:
    """One message to a viewer: the init segment, or one frame's fragment."""

    data: bytes
    keyframe: bool
    init: bool = False
    track: VideoTrack | None = None  # with an init segment: what a player needs to set up its decoder
    info: dict | None = None  # with an init segment of a stream with audio: {"audio": ..., "codecs": ...}


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
    audio: list[AudioSample] | None = None  # audio that arrived since the frame before


class LiveFeed:
    def __init__(self, *, max_queue_bytes: int = 8 << 20, audio_transcode: bool = True,
                 defer_unwatched: bool = True) -> None:
        self.max_queue_bytes = max_queue_bytes
        self.defer_unwatched = defer_unwatched  # False: every frame placed on arrival (the reference in tests)
        self.audio_transcode = audio_transcode
        self._audio_in = AudioTrackBuilder()
        self.audio: AudioConfig | None = None  # the audio track of the current init segment
        self._audio_pending: list[AudioSample] = []
        self._transcoder = None  # G711ToAac while G.711 is transcoded
        self._announced: str | None = None  # the audio codec the program stream map lists
        self._waited_keys = 0
        self._held: list[AccessUnit] = []  # the GOP so far while the first init waits for announced AAC
        self._held_bytes = 0
        self.audio_units = self.audio_dropped = 0
        self.track: VideoTrack | None = None
        self._track_prefix = b""  # the start of the key frame that gave `track`, up to its parameter sets
        self.init: bytes | None = None
        self._writer = FragmentWriter()
        self._gop: list[_Frame] = []  # the current GOP, for a viewer who joins now
        self._unplaced: list[AccessUnit] = []  # and its frames since nobody watches, not yet on the timeline
        self._gop_bytes = 0  # of both
        self.hls = HlsWindow()
        self._viewers: set[Viewer] = set()
        self.timeline = Timeline()
        self.bad_frames = 0
        self.frames = 0  # frames placed on the timeline (their fragments' numbers); unplaced ones come later
        self.keyframes = 0
        self.bad_parameter_sets = 0
        self.unplayable = 0  # frames before the first key frame with parameter sets

    @property
    def discontinuities(self) -> int:
        return self.timeline.discontinuities

    @property
    def audio_bad_units(self) -> int:
        return self._audio_in.bad_units

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def push(self, unit: AccessUnit) -> None:
        """One video access unit (Annex B, 90 kHz timestamps) from the demuxer."""
        if unit.codec not in ("h264", "h265"):
            return
        if not self._viewers and self.hls.last_request is None and self.defer_unwatched:
            if not unit.keyframe and self.init is not None and self._gop_bytes + len(unit.data) <= MAX_GOP_BYTES:
                self._unplaced.append(unit)  # placed when a viewer joins, or (timeline only) at the next key frame
                self._gop_bytes += len(unit.data)
                return
            if unit.keyframe and self._unplaced:
                self._place_unplaced(keep=False)  # their GOP is over and nobody saw it
        if self._unplaced:
            self._place_unplaced(keep=True)  # someone started watching (HLS), or the GOP outgrew the cache
        if unit.keyframe:
            self._maybe_new_track(unit)
        if self.init is None:
            if self._held and unit is not self._held[0]:
                self._hold(unit)
            elif not self._held:
                self.unplayable += 1
            return
        frame = self._place(unit)
        if unit.keyframe:
            self.keyframes += 1
            now = time.monotonic()
            if self._gop and self.hls.wanted(now):
                chunks = [c for c in map(self._chunk, self._gop) if c is not None]
                self.hls.add(b"".join(c.data for c in chunks), (frame.dts - self._gop[0].dts) / 90_000)
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

    def _hold(self, unit: AccessUnit) -> None:
        if self._held_bytes + len(unit.data) > MAX_GOP_BYTES:
            self.unplayable += 1
            return
        self._held.append(unit)
        self._held_bytes += len(unit.data)

    def _drop_held(self) -> None:
        """The held GOP ended without the announced audio (or the init came another way)."""
        self.unplayable += len(self._held)
        self._held, self._held_bytes = [], 0

    def _play_held(self) -> None:
        """The announced AAC's first header came: the first init (with it) and the held GOP, from
        its key frame, as if each frame had come now. The audio that came while holding is left
        out (it could not be timed against frames not yet placed); the track starts with the next."""
        held, self._held, self._held_bytes = self._held, [], 0
        for unit in held:
            self.push(unit)
        self._audio_pending = []

    def _place(self, unit: AccessUnit) -> _Frame:
        """The frame on the timeline, with the audio that came since the frame before."""
        dts, pts = self.timeline.place(unit.pts, unit.dts)
        self._audio_in.video(unit.dts if unit.dts is not None else unit.pts, dts)
        self.frames += 1
        frame = _Frame(unit, dts, pts, self.timeline.frame_ticks, self.frames)
        if self._audio_pending:
            frame.audio, self._audio_pending = self._audio_pending, []
        return frame

    def _place_unplaced(self, *, keep: bool) -> None:
        """The frames that came while nobody watched, placed as `push` would have placed each on
        arrival (nothing else happened in between: audio, a viewer or HLS places them first).
        keep: into the cached GOP, for a viewer who joins now; else their GOP is over, and only the
        timeline, the audio clock and the frame count move, as if they had been placed and dropped."""
        units, self._unplaced = self._unplaced, []
        if keep:
            gop = self._gop
            for unit in units:
                gop.append(self._place(unit))  # their bytes are in _gop_bytes already
            return
        self._audio_pending = []  # it came before the first of them, which took it along
        place = self.timeline.place
        last_with_time = None
        for unit in units:
            dts, _ = place(unit.pts, unit.dts)
            raw = unit.dts if unit.dts is not None else unit.pts
            if raw is not None:
                last_with_time = (raw, dts)
        # The audio clock keeps the last frame with a timestamp; the builder the last frame.
        if last_with_time is not None:
            self._audio_in.video(*last_with_time)
        if raw is None:
            self._audio_in.video(None, dts)
        self.frames += len(units)

    def _chunk(self, frame: _Frame) -> Chunk | None:
        """The frame's fMP4 fragment, built once, when a viewer (or HLS) first needs it."""
        if frame.chunk is None:
            sample = Sample(frame.unit.data, frame.dts, frame.pts, frame.duration, frame.unit.keyframe)
            try:
                try:
                    data = self._writer.fragment([sample], sequence=frame.sequence, audio=frame.audio)
                except ValueError:
                    if not frame.audio:
                        raise
                    self.audio_dropped += len(frame.audio)  # the audio was bad; the video goes on without it
                    data = self._writer.fragment([sample], sequence=frame.sequence)
            except ValueError:  # e.g. a frame without a single NAL unit: dropped, the stream goes on
                self.bad_frames += 1
                frame.chunk = False
                return None
            frame.chunk = Chunk(data, frame.unit.keyframe)
        return frame.chunk or None

    # -- audio ------------------------------------------------------------------------------------
    def push_audio(self, unit: AccessUnit) -> None:
        """One audio access unit (G.711 or ADTS AAC, 90 kHz PTS) from the demuxer."""
        if unit.codec not in AUDIO_CODECS:
            return
        if self._unplaced:
            self._place_unplaced(keep=True)  # audio is placed against the last video frame
        self.audio_units += 1
        changed, samples = self._audio_in.push(unit.codec, unit.pts, unit.data)
        if changed is not None and self._transcoder is not None and self._transcoder.source != changed.codec:
            self._transcoder = None
        if self._held and self._audio_in.config is not None:
            self._play_held()
            return
        config = self._audio_in.config
        if config is None or self.init is None:
            return
        if not config.browser_playable:
            if not self.audio_transcode:
                return
            if not self._viewers and self.hls.last_request is None:
                self._transcoder = None  # nobody watches: no CPU spent (it starts again with the next viewer)
                return
            if self._transcoder is None and not self._start_transcoder(config):
                return
            try:
                samples = [out for s in samples for out in self._transcoder.push(s)]
            except AudioError:
                self.audio_dropped += len(samples)
                self._transcoder = None
                return
        if self._live_audio_config() != self.audio:
            return  # the track enters the init segment at the next key frame
        self._audio_pending += samples
        if len(self._audio_pending) > MAX_PENDING_AUDIO:
            self.audio_dropped += len(self._audio_pending) - MAX_PENDING_AUDIO
            del self._audio_pending[:-MAX_PENDING_AUDIO]

    def announce_audio(self, codec: str | None) -> None:
        """The audio codec the program stream map lists (at a key frame), before any audio may have come."""
        self._announced = codec if codec in AUDIO_CODECS else None

    def _device_audio(self) -> AudioConfig | None:
        """The device's audio: as seen, or as the map announces it (G.711 needs nothing more)."""
        if self._audio_in.config is not None:
            return self._audio_in.config
        return g711_config(self._announced) if self._announced in G711_CODECS else None

    def _start_transcoder(self, config: AudioConfig) -> bool:
        from camgrid.media.audio_transcode import G711ToAac  # PyAV: loaded only where G.711 is transcoded

        try:
            self._transcoder = G711ToAac(config.codec)
        except AudioError:
            self.audio_transcode = False  # this PyAV cannot: video only, and the init info says so
            return False
        return True

    def _live_audio_config(self) -> AudioConfig | None:
        """The audio track browsers get: the device's AAC, G.711 transcoded to AAC, or none."""
        config = self._device_audio()
        if config is None or config.browser_playable:
            return config
        if self.audio_transcode:
            if self._transcoder is not None:
                return self._transcoder.config
            if self.audio is not None and self.audio.codec == "aac" and self.audio.sample_rate == config.sample_rate:
                return self.audio  # between viewers: the transcoded track stays in the init segment
        return None

    def init_info(self) -> dict | None:
        """What the "init" message says about audio; None for a stream that never sent any."""
        device = self._device_audio()
        if device is None:
            return None
        audio = {"codec": device.codec, "sample_rate": device.sample_rate, "channels": device.channels,
                 "played": self.audio is not None, "transcoded_to": None, "reason": None}
        if self.audio is not None and self.audio.codec != device.codec:
            audio["transcoded_to"] = self.audio.codec
        if self.audio is None:
            audio["reason"] = ("browsers cannot play G.711 and media.audio_transcode is off: video only"
                               if not device.browser_playable and not self.audio_transcode
                               else "the audio track starts with the next key frame")
        codecs = ",".join(c for c in (self.track.codec_string if self.track else None,
                                      self.audio.codec_string if self.audio else None) if c)
        return {"audio": audio, "codecs": codecs}

    def _maybe_new_track(self, unit: AccessUnit) -> None:
        track = self.track
        if track is None or track.codec != unit.codec or not unit.data.startswith(self._track_prefix):
            try:
                track, extent = track_and_extent(unit.codec, unit.data)
            except H26xError:
                self.bad_parameter_sets += 1
                return
            if track is None:
                return
            if self.track is not None and _same_track(track, self.track):
                track = self.track
            prefix = unit.data[:extent]
        else:
            prefix = self._track_prefix  # the same first parameter sets as the track's key frame: no parse
        device = self._device_audio()
        if (device is not None and not device.browser_playable and self.audio_transcode and self._transcoder is None
                and self.audio is None):
            self._start_transcoder(device)  # its AAC track goes into the init segment now
        audio = self._live_audio_config()
        if (audio is None and self.init is None and self._announced == "aac"
                and self._waited_keys < AUDIO_WAIT_KEYFRAMES):
            self._waited_keys += 1  # announced AAC whose first header has not come: hold this GOP for it
            self._drop_held()
            self._hold(unit)
            return
        self._drop_held()
        if track is self.track:
            self._track_prefix = prefix
            if audio == self.audio:
                return
        # First key frame, the device changed resolution/codec, or its audio started or changed:
        # viewers need a new init segment.
        self.track = track
        self._track_prefix = prefix
        self.audio = audio
        self._audio_pending = []
        if self._audio_in.clock is not None:
            self._audio_in.clock.reset()
        self.init = init_segment(track, audio=audio)
        self._writer = FragmentWriter()
        self._gop, self._gop_bytes = [], 0
        self.hls.restart()
        for viewer in self._viewers:
            viewer.put(Chunk(self.init, True, init=True, track=track, info=self.init_info()))

    def add_viewer(self) -> Viewer:
        viewer = Viewer(self.max_queue_bytes)
        if self._unplaced:
            self._place_unplaced(keep=True)
        if self.init is not None:
            viewer.put(Chunk(self.init, True, init=True, track=self.track, info=self.init_info()))
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
