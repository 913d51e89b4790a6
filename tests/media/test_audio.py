"""camgrid.media.audio: ADTS headers (real ones from FFmpeg's AAC encoder and hand-made bad
ones), the AudioSpecificConfig, the audio clock on the video timeline, and fuzzing: any bytes
give AudioError or samples, never another exception."""

from __future__ import annotations

import io

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camgrid.media.audio import (
    AAC_FRAME_SAMPLES, AudioClock, AudioError, AudioTrackBuilder, aac_config, adts_header, audio_specific_config,
    g711_config, g711_duration_s, parse_adts, split_adts,
)


def ffmpeg_adts(rate: int = 16000, channels: int = 1, seconds: float = 0.5) -> bytes:
    """AAC LC in ADTS, as FFmpeg's adts muxer writes it."""
    buf = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(f"sine=frequency=440:sample_rate={rate}:duration={seconds}", format="lavfi") as src, \
            av.open(buf, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        fifo = av.AudioFifo()
        for frame in src.decode(audio=0):
            for f in resampler.resample(frame):
                f.pts = None
                fifo.write(f)
        n = 0
        while fifo.samples >= 1024:
            f = fifo.read(1024)
            f.pts, n = n, n + 1024
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("rate,channels", [(8000, 1), (16000, 1), (44100, 2), (48000, 2)])
def test_ffmpeg_adts_frames_are_read(rate, channels):
    data = ffmpeg_adts(rate, channels)
    frames = split_adts(data)
    assert len(frames) >= 3
    header = frames[0][0]
    assert (header.sample_rate, header.channels, header.object_type, header.header_length) == (rate, channels, 2, 7)
    assert sum(h.frame_length for h, _ in frames) == len(data)
    assert all(len(raw) == h.frame_length - 7 for h, raw in frames)
    config = aac_config(header)
    assert config.codec_string == "mp4a.40.2" and config.timescale == rate
    # The AudioSpecificConfig is what FFmpeg's own encoder puts in its extradata (LC, rate, channels).
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, "mono" if channels == 1 else "stereo", "fltp"
    ctx.open()
    assert bytes(ctx.extradata)[:2] == config.asc


def test_adts_header_round_trip_and_several_frames_in_one_unit():
    frames = [bytes([i]) * (10 + i) for i in range(3)]
    unit = b"".join(adts_header(2, 11, 1, len(f)) + f for f in frames)
    parsed = split_adts(unit)
    assert [raw for _, raw in parsed] == frames
    assert {(h.sample_rate, h.channels) for h, _ in parsed} == {(8000, 1)}


def test_audio_specific_config_bits():
    assert audio_specific_config(2, 4, 2) == bytes([0x12, 0x10])  # LC, 44.1 kHz, stereo
    assert audio_specific_config(2, 11, 1) == bytes([0x15, 0x88])  # LC, 8 kHz, mono
    with pytest.raises(AudioError):
        audio_specific_config(2, 13, 1)


@pytest.mark.parametrize("data,message", [
    (b"\xff\xf1\x50", "cut short"),
    (b"\x00\x01\x02\x03\x04\x05\x06\x07", "no ADTS sync word"),
    (bytes([0xFF, 0xF1, 0x7C, 0x40, 0x01, 0x00, 0xFC]) + bytes(8), "index 15 is reserved"),  # rate index 15
    (bytes([0xFF, 0xF1, 0x6C, 0x00, 0x01, 0x00, 0xFC]) + bytes(8), "channel configuration 0"),
    (bytes([0xFF, 0xF1, 0xEC, 0x40, 0x01, 0x00, 0xFC]) + bytes(8), "profile 3 .reserved"),
    (bytes([0xFF, 0xF1, 0x6C, 0x40, 0x00, 0xE0, 0xFC]), "leaves no room"),  # frame length 7
])
def test_bad_adts_headers_say_what_is_wrong(data, message):
    with pytest.raises(AudioError, match=message):
        split_adts(data)


def test_a_frame_longer_than_the_unit_and_frames_that_disagree():
    frame = adts_header(2, 8, 1, 100) + bytes(100)
    with pytest.raises(AudioError, match="declares 107 bytes but only 50 follow"):
        split_adts(frame[:50])
    with pytest.raises(AudioError, match="disagree"):
        split_adts(frame + adts_header(2, 3, 2, 10) + bytes(10))
    with pytest.raises(AudioError, match="empty"):
        split_adts(b"")


def test_g711():
    assert g711_duration_s(bytes(320)) == 0.04
    assert g711_config("g711u").timescale == 8000 and g711_config("g711a").codec_string is None
    with pytest.raises(AudioError):
        g711_config("aac")


# -- the clock ------------------------------------------------------------------------------------
def test_audio_follows_the_video_timeline_with_its_offset():
    clock = AudioClock(8000)
    assert clock.place(1000, 320) is None  # no video yet: nothing to tie it to
    clock.video(900_000, 0)  # the first video frame: raw 10 s, placed at 0
    assert clock.place(900_000 + 4_500, 320) == 400  # 50 ms after the frame → 400 samples at 8 kHz
    # jitter of a few ms in the device's PTS: back to back
    assert clock.place(900_000 + 4_500 + 3_600 + 90, 320) == 720
    clock.video(900_000 + 90_000, 90_000)
    assert clock.place(900_000 + 90_000, 320) == 8000  # 1 s in: a gap after the last sample (which ended at 130 ms) stays
    assert clock.resyncs == 0


def test_audio_gap_and_backwards_and_wrap():
    clock = AudioClock(8000)
    clock.video((1 << 33) - 9000, 5 * 90_000)  # 0.1 s before the 33-bit wrap, placed at 5 s
    at = clock.place(9000, 320)  # 0.2 s later, after the wrap
    assert at == (5 * 90_000 + 18_000) * 8000 // 90_000
    assert clock.place(9000 + 90_000, 320) == at + 8000  # a 1 s gap stays a gap
    assert clock.place(9000, 320) == at + 8320  # back in time: put right after the last sample
    assert clock.resyncs == 1
    assert clock.place(1 << 32, 320) == at + 8640  # far from the video (a broken PTS): follows on
    assert clock.resyncs == 2


def test_track_builder_counts_bad_units_and_keeps_going():
    builder = AudioTrackBuilder()
    builder.video(0, 0)
    config, samples = builder.push("aac", 0, b"garbage")
    assert config is None and samples == [] and builder.bad_units == 1 and "sync word" in builder.last_error
    frame = adts_header(2, 8, 1, 50) + bytes(50)
    config, samples = builder.push("aac", 0, frame + frame)
    assert config is not None and config.sample_rate == 16000
    assert [(s.time, s.duration, len(s.data)) for s in samples] == [(0, 1024, 50), (1024, 1024, 50)]
    _, samples = builder.push("aac", 2 * AAC_FRAME_SAMPLES * 90_000 // 16000, frame)
    assert samples[0].time == 2048
    assert builder.push("mp3", 0, b"xx") == (None, []) and builder.bad_units == 2
    config, _ = builder.push("g711a", 0, bytes(160))
    assert config is not None and config.codec == "g711a"  # a change of codec is a new config
    assert builder.push("g711a", 0, b"") == (None, [])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["aac", "g711a", "g711u", "unknown"]), st.one_of(st.none(), st.integers(0, (1 << 33) - 1)),
       st.binary(max_size=600))
def test_fuzz_any_bytes_are_samples_or_a_counted_bad_unit(codec, pts, data):
    builder = AudioTrackBuilder()
    builder.video(0, 0)
    _, samples = builder.push(codec, pts, data)  # never raises
    assert samples == [] or builder.config is not None
    assert builder.bad_units in (0, 1)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 10))
def test_fuzz_adts_parsing_raises_only_audio_error(data, pos):
    for call in (lambda: parse_adts(data, pos), lambda: split_adts(data)):
        try:
            call()
        except AudioError as exc:
            assert str(exc)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.integers(0, 12), st.integers(1, 7), st.binary(min_size=1, max_size=300))
def test_fuzz_adts_header_round_trip(object_type, rate_index, channels, payload):
    header = parse_adts(adts_header(object_type, rate_index, channels, len(payload)) + payload)
    assert (header.object_type, header.rate_index, header.channels, header.frame_length) == (
        object_type, rate_index, channels, len(payload) + 7)
