"""Mutated SIP datagrams for the native-versus-Python property tests: edits that devices and
attackers make (casing, blanks, folds, commas, odd bytes, inserted fragments) applied to a
corpus of clean messages."""

from __future__ import annotations

from hypothesis import strategies as st


def mutations(corpus: list[bytes], edits: list[bytes], max_edits: int = 4) -> st.SearchStrategy[bytes]:
    @st.composite
    def mutated(draw) -> bytes:
        data = bytearray(draw(st.sampled_from(corpus)))
        for _ in range(draw(st.integers(0, max_edits))):
            at = draw(st.integers(0, len(data)))
            kind = draw(st.integers(0, 3))
            if kind == 0:
                data[at:at] = draw(st.sampled_from(edits))
            elif kind == 1:
                del data[at:at + draw(st.integers(1, 8))]
            elif kind == 2 and at < len(data):
                data[at] = draw(st.integers(0, 255))
            else:
                data[at:at + 1] = data[at:at + 1].swapcase()
        return bytes(data)

    return mutated()
