"""G.711 → AAC for browsers (`media.audio_transcode`): Media Source Extensions play AAC but not
G.711, which is what most GB/T 28181 devices send. PyAV's (FFmpeg's) native AAC encoder at the
source's 8 kHz mono; it runs only while someone watches the live stream (recordings keep the
device's G.711 as it came).

Times: G.711 runs in, AAC frames (1024 samples) out, in the same 8 kHz timescale. The encoder's
output timestamps already step back by its priming delay, so each AAC frame sits where its
audio was. A gap in the input of more than MAX_GAP_S starts the output timing over at the new
time (what was buffered is dropped). Errors from FFmpeg are raised as AudioError.
"""

from __future__ import annotations

from fractions import Fraction

import av

from camgrid.media.audio import AAC_FRAME_SAMPLES, G711_RATE, AudioConfig, AudioError, AudioSample, audio_specific_config

DECODERS = {"g711a": "pcm_alaw", "g711u": "pcm_mulaw"}
BIT_RATE = 24_000
MAX_GAP_S = 0.5


class G711ToAac:
    def __init__(self, codec: str, *, bit_rate: int = BIT_RATE) -> None:
        if codec not in DECODERS:
            raise AudioError(f"only G.711 is transcoded, not {codec!r}")
        self.source = codec
        try:
            self._decoder = av.CodecContext.create(DECODERS[codec], "r")
            self._decoder.sample_rate = G711_RATE
            self._decoder.layout = "mono"
            encoder = av.CodecContext.create("aac", "w")
            encoder.sample_rate = G711_RATE
            encoder.layout = "mono"
            encoder.format = "fltp"
            encoder.bit_rate = bit_rate
            encoder.time_base = Fraction(1, G711_RATE)
            encoder.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioError(f"this PyAV build cannot transcode {codec} to AAC: {exc}") from exc
        self._encoder = encoder
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=G711_RATE)
        self._fifo = av.AudioFifo()
        asc = bytes(encoder.extradata or b"") or audio_specific_config(2, 11, 1)  # LC, 8 kHz, mono
        self.config = AudioConfig("aac", G711_RATE, 1, asc)
        self._next_in: int | None = None
        self._out_base: int | None = None
        self._out_frames = 0
        self.samples_in = 0

    def push(self, sample: AudioSample) -> list[AudioSample]:
        """One run of G.711 (8 kHz timescale) → the AAC frames it completes."""
        if self._next_in is not None and sample.time - self._next_in > MAX_GAP_S * G711_RATE:
            self._fifo = av.AudioFifo()
            self._out_base, self._out_frames = None, 0
        if self._out_base is None:
            self._out_base = sample.time
        self._next_in = sample.time + sample.duration
        self.samples_in += sample.duration
        out: list[AudioSample] = []
        try:
            for frame in self._decoder.decode(av.Packet(sample.data)):
                for converted in self._resampler.resample(frame):
                    converted.pts = None
                    self._fifo.write(converted)
            while self._fifo.samples >= AAC_FRAME_SAMPLES:
                frame = self._fifo.read(AAC_FRAME_SAMPLES)
                frame.pts = self._out_base + self._out_frames * AAC_FRAME_SAMPLES
                frame.time_base = self._encoder.time_base
                self._out_frames += 1
                for packet in self._encoder.encode(frame):
                    if packet.pts is not None and packet.pts >= 0:
                        out.append(AudioSample(bytes(packet), packet.pts, AAC_FRAME_SAMPLES))
        except av.error.FFmpegError as exc:
            raise AudioError(f"transcoding {self.source} to AAC failed: {exc}") from exc
        return out
