"""TOTP (RFC 6238) codes, the window and replay rule, and the sealing of secrets."""

from __future__ import annotations

import pytest

from camgrid.governance import totp

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of b"12345678901234567890", RFC 6238 appendix B (SHA-1)


@pytest.mark.parametrize("t, code", [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"),
                                     (1234567890, "005924"), (2000000000, "279037")])
def test_codes_match_the_rfc_vectors(t, code):
    assert totp.code_at(RFC_SECRET, totp.step_of(t)) == code  # the RFC's 8 digits, last 6


def test_a_code_is_accepted_one_step_either_side_and_never_twice():
    now = 1_790_000_000.0
    step = totp.step_of(now)
    assert totp.match(RFC_SECRET, totp.code_at(RFC_SECRET, step), now=now) == step
    assert totp.match(RFC_SECRET, totp.code_at(RFC_SECRET, step - 1), now=now) == step - 1
    assert totp.match(RFC_SECRET, totp.code_at(RFC_SECRET, step + 2), now=now) is None
    assert totp.match(RFC_SECRET, totp.code_at(RFC_SECRET, step), now=now, after_step=step) is None
    assert totp.match(RFC_SECRET, " " + totp.code_at(RFC_SECRET, step)[:3] + " " + totp.code_at(RFC_SECRET, step)[3:],
                      now=now) == step
    for bad in ("", "12345", "abcdef", "1234567", None):
        assert totp.match(RFC_SECRET, bad, now=now) is None


def test_new_secrets_and_the_uri():
    a, b = totp.new_secret(), totp.new_secret()
    assert a != b and len(a) == 32
    uri = totp.provisioning_uri(a, "op1")
    assert uri.startswith("otpauth://totp/camgrid%3Aop1?") and f"secret={a}" in uri and "period=30" in uri


def test_sealed_secrets_open_only_for_their_user_and_key(tmp_path):
    key = totp.load_or_create_key(tmp_path / "keys" / "totp.key")
    assert (tmp_path / "keys" / "totp.key").stat().st_mode & 0o777 == 0o600
    assert totp.load_or_create_key(tmp_path / "keys" / "totp.key") == key
    sealed = totp.seal(RFC_SECRET, key, 7)
    assert RFC_SECRET.encode() not in sealed and totp.unseal(sealed, key, 7) == RFC_SECRET
    with pytest.raises(totp.TotpError):
        totp.unseal(sealed, key, 8)  # copied into another user's row
    with pytest.raises(totp.TotpError):
        totp.unseal(sealed, bytes(32), 7)
    with pytest.raises(totp.TotpError):
        totp.unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]), key, 7)
