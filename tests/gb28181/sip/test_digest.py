import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camgrid.gb28181.sip.digest import (
    Challenge,
    Credentials,
    DigestError,
    NonceFactory,
    authorization_header,
    compute_response,
    ha1,
    parse_params,
)


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def test_md5_without_qop_matches_rfc2617_formula():
    h1 = md5("34020000001320000001:3402000000:secret-pass")
    h2 = md5("REGISTER:sip:34020000002000000001@3402000000")
    expected = md5(f"{h1}:abc:{h2}")
    assert compute_response(h1, "REGISTER", "sip:34020000002000000001@3402000000", "abc") == expected


def test_md5_with_qop_matches_rfc2617_formula():
    h1 = ha1("u", "r", "p")
    h2 = md5("REGISTER:sip:x")
    expected = md5(f"{h1}:n:00000001:c:auth:{h2}")
    assert compute_response(h1, "REGISTER", "sip:x", "n", qop="auth", nc="00000001", cnonce="c") == expected


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.parametrize("qop", ["auth", None])
def test_client_answer_verifies_on_the_server(algorithm, qop):
    challenge = Challenge("3402000000", "nonce123", algorithm, qop)
    header = authorization_header(challenge, "34020000001320000001", "s3cret-pass", "REGISTER", "sip:p@3402000000")
    creds = Credentials.parse(header)
    assert creds.algorithm == algorithm
    assert creds.verify("REGISTER", ha1("34020000001320000001", "3402000000", "s3cret-pass", algorithm))
    assert not creds.verify("REGISTER", ha1("34020000001320000001", "3402000000", "wrong", algorithm))


def test_challenge_round_trip_and_quoted_commas():
    c = Challenge("3402000000", "a,b", "SHA-256", "auth", opaque="xyz", stale=True)
    again = Challenge.parse(c.header())
    assert again == c
    scheme, params = parse_params('Digest realm="a, b", nonce="n\\"q", algorithm=MD5')
    assert scheme == "digest" and params == {"realm": "a, b", "nonce": 'n"q', "algorithm": "MD5"}


def test_credentials_missing_fields_raise_clear_error():
    with pytest.raises(DigestError, match="response"):
        Credentials.parse('Digest username="u", nonce="n", uri="sip:x"')
    with pytest.raises(DigestError):
        Credentials.parse("Basic dXNlcjpwYXNz")


def test_nonces_are_self_verifying_and_expire():
    now = [1000.0]
    f = NonceFactory("3402000000", ttl_s=60, clock=lambda: now[0])
    nonce = f.make()
    assert f.check(nonce) == "ok"
    now[0] += 61
    assert f.check(nonce) == "stale"
    other = NonceFactory("3402000000", ttl_s=60, clock=lambda: now[0])
    assert other.check(f.make()) == "bad"
    assert f.check("not-base64!") == "bad"
    assert f.check("AAAA") == "bad"


def test_unsupported_algorithm_never_verifies():
    creds = Credentials("u", "r", "n", "sip:x", "00", algorithm="SM3")
    assert not creds.verify("REGISTER", "00")


@given(st.text(max_size=300))
def test_parse_params_never_crashes(text):
    parse_params(text)
    try:
        Credentials.parse(text)
    except DigestError:
        pass
    try:
        Challenge.parse(text)
    except DigestError:
        pass
