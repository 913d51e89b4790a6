"""The RTP reorder buffer: order restored, losses named after the latency, wrap-around."""

from __future__ import annotations

import random

from hypothesis import given, settings as hsettings, strategies as st

from camgrid.media.jitter import JitterBuffer, Lost
from camgrid.media.rtp import RtpPacket


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(96, seq & 0xFFFF, seq * 90, 1, bytes([seq & 0xFF]))


def seqs(items) -> list:
    return [i.sequence if isinstance(i, RtpPacket) else ("lost", i.first_sequence, i.count) for i in items]


def test_reordered_packets_come_out_in_order():
    jb = JitterBuffer(latency_s=0.2)
    out = []
    for s in (10, 12, 11, 13, 15, 14):
        out += jb.push(pkt(s), 0.0)
    assert seqs(out) == [10, 11, 12, 13, 14, 15] and jb.lost == 0


def test_a_missing_packet_is_declared_lost_after_the_latency():
    jb = JitterBuffer(latency_s=0.2)
    assert seqs(jb.push(pkt(1), 0.0)) == [1]
    assert jb.push(pkt(3), 0.05) == [] and jb.push(pkt(4), 0.1) == []
    assert jb.poll(0.2) == []  # 0.15 s waited
    assert seqs(jb.poll(0.26)) == [("lost", 2, 1), 3, 4]
    assert seqs(jb.push(pkt(2), 0.3)) == [] and jb.late == 1  # too late now


def test_capacity_forces_the_gap():
    jb = JitterBuffer(latency_s=10, capacity=3)
    jb.push(pkt(0), 0)
    out = []
    for s in (2, 3, 4):
        out += jb.push(pkt(s), 0)
    assert seqs(out) == [("lost", 1, 1), 2, 3, 4]


def test_wrap_around_and_duplicates():
    jb = JitterBuffer()
    out = []
    for s in (65534, 0, 65535, 1, 1):
        out += jb.push(pkt(s), 0)
    assert seqs(out) == [65534, 65535, 0, 1] and jb.late == 1  # a copy of a delivered packet is late
    jb.push(pkt(3), 0)
    jb.push(pkt(3), 0)
    assert jb.duplicates == 1  # a copy of a held one


@hsettings(max_examples=300, deadline=None)
@given(st.integers(0, 65535), st.integers(1, 300), st.integers(0, 2**32), st.floats(0, 0.3))
def test_any_shuffle_within_the_window_is_undone(start, n, seed, drop_rate):
    rng = random.Random(seed)
    sent = [(start + i) & 0xFFFF for i in range(n)]
    kept = [s for i, s in enumerate(sent) if i == 0 or rng.random() >= drop_rate]
    arrival = sorted(kept, key=lambda s: sent.index(s) + rng.uniform(0, 8))  # local reordering
    arrival = [sent[0]] + [s for s in arrival if s != sent[0]]
    jb = JitterBuffer(latency_s=1.0, capacity=64)
    out = []
    for t, s in enumerate(arrival):
        out += jb.push(pkt(s), t * 0.001)
    out += jb.flush()
    delivered = [i.sequence for i in out if isinstance(i, RtpPacket)]
    lost = sum(i.count for i in out if isinstance(i, Lost))
    assert delivered == kept  # in order, nothing twice
    assert lost == n - len(kept) - (n - 1 - sent.index(kept[-1]))  # trailing drops are never seen
