"""The HLS window: a bounded list of GOP segments and a playlist that names them."""

from __future__ import annotations

from camgrid.media.hls import IDLE_S, HlsWindow


def test_the_window_keeps_the_last_segments_and_the_playlist_lists_them():
    w = HlsWindow(size=3)
    for n in range(5):
        w.add(bytes([n]), 1.0 + n / 10)
    text = w.playlist("token=abc")
    assert "#EXT-X-MEDIA-SEQUENCE:2" in text and "#EXT-X-TARGETDURATION:2" in text
    assert [line for line in text.splitlines() if line.endswith("token=abc") and ".m4s" in line] == [
        "2.m4s?token=abc", "3.m4s?token=abc", "4.m4s?token=abc"]
    assert '#EXT-X-MAP:URI="init.mp4?token=abc"' in text
    assert w.segment(1) is None and w.segment(4) == bytes([4])


def test_a_new_init_segment_restarts_with_a_discontinuity():
    w = HlsWindow()
    w.add(b"a", 1.0)
    w.restart()
    assert not w.ready and "#EXT-X-DISCONTINUITY-SEQUENCE:1" in w.playlist()
    w.add(b"b", 1.0)
    assert "#EXT-X-MEDIA-SEQUENCE:1" in w.playlist()


def test_segments_are_built_only_while_someone_fetches():
    w = HlsWindow()
    assert not w.wanted(100.0)
    w.last_request = 100.0
    assert w.wanted(100.0 + IDLE_S - 1) and not w.wanted(100.0 + IDLE_S + 1)
