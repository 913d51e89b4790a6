"""fMP4 with an audio track, read back by FFmpeg (PyAV): AAC (mp4a + esds, ADTS headers gone) and
G.711 ('alaw' / 'ulaw') decode with the right codec, rate, duration and pitch, in step with the
video; without audio the bytes are those of before; the audio track can be taken out again."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from camgrid.media.audio import AudioTrackBuilder
from camgrid.media.fmp4 import (
    FragmentWriter, Sample, fragment_without_track, init_segment, mse_codecs, read_boxes, tracks_of, without_track,
)
from camgrid.media.h26x import track_from_frame
from camgrid.sim.video import synthetic_footage, with_audio

DECODER = {"aac": "aac", "g711a": "pcm_alaw", "g711u": "pcm_mulaw"}


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 3, gop_s=1.0)


def mux(footage, audio_codec, *, offset_ticks=0, native=None):
    """The footage (and its audio, `offset_ticks` later in the PES PTS) as init + one fragment per frame,
    each carrying the audio that came before it, as the live feed does."""
    fo = with_audio(footage, audio_codec) if audio_codec else footage
    track = track_from_frame("h264", fo.frames[0].data)
    builder = AudioTrackBuilder()
    units = list(fo.audio)
    pending, out, writer, config = [], [], FragmentWriter(native=native), None
    for i, frame in enumerate(fo.frames):
        builder.video(frame.pts, frame.pts)
        while units and units[0].pts <= frame.pts:
            unit = units.pop(0)
            new, samples = builder.push(audio_codec, unit.pts + offset_ticks, unit.data)
            config = new or config
            pending += samples
        duration = fo.frames[i + 1].pts - frame.pts if i + 1 < len(fo.frames) else fo.frame_period
        out.append(writer.fragment([Sample(frame.data, frame.pts, frame.pts, duration, frame.keyframe)],
                                   audio=pending or None))
        pending = []
    return init_segment(track, audio=config), out, config


def decode_audio(data: bytes):
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        name, rate = stream.codec_context.name, stream.rate
        pcm, first = [], None
        for frame in container.decode(stream):
            first = frame.time if first is None else first
            pcm.append(frame.to_ndarray().astype(np.float64).reshape(-1))
    return name, rate, np.concatenate(pcm), first


def decode_video_times(data: bytes) -> list[float]:
    with av.open(io.BytesIO(data)) as container:
        return [f.time for f in container.decode(video=0)]


def pitch(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm[rate // 4:rate // 4 + rate // 2] * np.hanning(rate // 2)))  # skip the start
    return float(np.argmax(spectrum)) * rate / (rate // 2)


@pytest.mark.parametrize("codec", ["aac", "g711a", "g711u"])
def test_audio_track_decodes_with_pitch_and_duration(footage, codec):
    init, fragments, config = mux(footage, codec)
    assert config is not None and config.codec == codec
    data = init + b"".join(fragments)
    name, rate, pcm, first = decode_audio(data)
    assert name == DECODER[codec] and rate == config.sample_rate
    assert abs(len(pcm) / rate - footage.duration_s) < 0.2  # about the footage's length
    assert abs(pitch(pcm, rate) - 440) < 10  # the tone survived: headers stripped, samples whole
    video = decode_video_times(data)
    assert len(video) == len(footage.frames)
    assert abs(first - video[0]) < 0.15  # audio starts with the video


def test_audio_stays_in_step_when_the_device_sends_it_late(footage):
    init, fragments, _ = mux(footage, "g711a", offset_ticks=45_000)  # audio PTS 0.5 s behind
    _, _, _, first = decode_audio(init + b"".join(fragments))
    assert abs(first - 0.5) < 0.05


def test_sample_entries_and_codec_strings(footage):
    init, fragments, _ = mux(footage, "aac")
    tracks = tracks_of(init)
    assert [(t.track_id, t.handler, t.entry) for t in tracks] == [(1, "vide", "avc1"), (2, "soun", "mp4a")]
    assert tracks[1].timescale == 16000 and tracks[1].codec_string == "mp4a.40.2"
    assert mse_codecs(init) == f"{tracks[0].codec_string},mp4a.40.2"
    alaw_init, _, _ = mux(footage, "g711a")
    assert [t.entry for t in tracks_of(alaw_init)] == ["avc1", "alaw"]
    assert mse_codecs(alaw_init) == tracks[0].codec_string  # browsers cannot play G.711: not offered to MSE
    with_adts = sum(f.count(b"\xff\xf1") for f in fragments)
    assert with_adts < len(fragments)  # no ADTS header per frame left in the mdat (stray matches aside)


@pytest.mark.parametrize("native", [False, None], ids=["python", "default"])
def test_video_only_bytes_are_unchanged_and_the_audio_track_comes_out_again(footage, native):
    init_v, frags_v, _ = mux(footage, None, native=native)
    track = track_from_frame("h264", footage.frames[0].data)
    assert init_v == init_segment(track) == init_segment(track, audio=None)
    init_a, frags_a, _ = mux(footage, "g711u", native=native)
    assert without_track(init_a, 2) == init_v
    assert [fragment_without_track(f, 2) for f in frags_a] == frags_v
    assert fragment_without_track(frags_v[0], 2) == frags_v[0]


def test_segment_scan_times_the_video_and_finds_the_audio_tfdt(footage, tmp_path):
    from camgrid.media.segment_file import read_fragments
    init, fragments, _ = mux(footage, "aac")
    got_init, got = read_fragments(init + b"".join(fragments))
    assert got_init == init and len(got) == len(fragments)
    with_audio_frags = [f for f in got if f.other_tfdts]
    assert with_audio_frags and all(track == 2 for f in with_audio_frags for _, track in f.other_tfdts)
    assert got[0].base_dts == footage.frames[0].pts and got[1].duration == footage.frame_period
    assert [b[0] for b in read_boxes(fragments[-1])] == ["moof", "mdat"]
