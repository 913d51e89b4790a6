"""The digests of the native REGISTER decision (sipfast_hash.c) against hashlib and base64."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camgrid.gb28181.sip import fastpath

pytestmark = pytest.mark.skipif(not fastpath.NATIVE, reason=f"native SIP path not available: {fastpath.REASON}")
native = fastpath.native


@pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000])
def test_md5_at_block_edges(size):
    data = bytes(range(256)) * 4
    assert native.md5_hex(data[:size]) == hashlib.md5(data[:size]).hexdigest()


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_md5_of_any_bytes(data):
    assert native.md5_hex(data) == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129])
@pytest.mark.parametrize("key_size", [0, 1, 32])
def test_blake2s_at_block_edges(size, key_size):
    data, key = bytes(range(200))[:size], bytes(range(100, 132))[:key_size]
    for digest_size in (1, 12, 32):
        assert native.blake2s_mac(key, data, digest_size) == hashlib.blake2s(data, key=key, digest_size=digest_size).digest()


@given(st.binary(max_size=32), st.binary(max_size=300), st.integers(1, 32))
@settings(max_examples=300)
def test_blake2s_of_any_bytes(key, data, size):
    assert native.blake2s_mac(key, data, size) == hashlib.blake2s(data, key=key, digest_size=size).digest()


def test_blake2s_refuses_bad_sizes():
    with pytest.raises(ValueError):
        native.blake2s_mac(b"k" * 33, b"", 12)
    with pytest.raises(ValueError):
        native.blake2s_mac(b"k", b"", 33)


@given(st.binary(max_size=64))
@settings(max_examples=300)
def test_base64_both_ways(data):
    text = native.base64(data)
    assert text == base64.b64encode(data).decode()
    assert native.unbase64(text, len(data)) == data


@pytest.mark.parametrize("text", ["", "AAAA+/8", "AAAA+/8==", "AA=A", "A===", "AB==", "AAB=", "AA*A", "AAAAAAAA"])
def test_unbase64_refuses_what_is_not_canonical_for_the_size(text):
    # "AB==" and "AAB=" carry bits beyond the bytes they stand for; base64 would take them.
    size = {"AB==": 1, "AAB=": 2, "AA=A": 2, "A===": 1}.get(text, 5)
    assert native.unbase64(text, size) is None
