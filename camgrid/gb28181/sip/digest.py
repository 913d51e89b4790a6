"""HTTP digest authentication for SIP (RFC 2617 / RFC 7616 / RFC 8760). Pure.

The server side never needs a clear-text secret: it verifies against HA1, which the registry
stores per algorithm. Nonces are stateless: a timestamp signed with a per-process key, so a
restart (new key) invalidates outstanding challenges and a storm of REGISTERs costs no memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from dataclasses import dataclass

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestError(ValueError):
    pass


def _h(algorithm: str, text: str) -> str:
    try:
        fn = ALGORITHMS[algorithm.upper()]
    except KeyError:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}") from None
    return fn(text.encode("utf-8", "surrogateescape")).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    return _h(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    ha1_hex: str, method: str, uri: str, nonce: str, *, algorithm: str = "MD5",
    qop: str | None = None, nc: str = "", cnonce: str = "",
) -> str:
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1_hex}:{nonce}:{ha2}")


_PARAM = re.compile(r'[\s,]*([^=\s,]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^,]*))', re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Parse `Digest k="v", k2=v2` into ("digest", {k: v}). Keys are lower-cased."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    params: dict[str, str] = {}
    pos, n = 0, len(rest)
    while pos < n:
        m = _PARAM.match(rest, pos)
        if m is None:
            break
        key, quoted, bare = m.groups()
        if quoted is not None:
            params[key.lower()] = _ESCAPED.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[key.lower()] = bare.strip()
        pos = m.end()
    return scheme.lower(), params


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = "auth"
    opaque: str | None = None
    stale: bool = False

    def header(self) -> str:
        parts = [f'realm="{self.realm}"', f'nonce="{self.nonce}"']
        if self.opaque:
            parts.append(f'opaque="{self.opaque}"')
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f'qop="{self.qop}"')
        if self.stale:
            parts.append("stale=TRUE")
        return "Digest " + ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> Challenge:
        scheme, p = parse_params(value)
        if scheme != "digest" or "nonce" not in p:
            raise DigestError(f"not a digest challenge: {value[:80]!r}")
        qop = p.get("qop")
        if qop:
            options = [q.strip() for q in qop.split(",")]
            qop = "auth" if "auth" in options else None
        return cls(p.get("realm", ""), p["nonce"], p.get("algorithm", "MD5").upper(), qop, p.get("opaque"),
                   p.get("stale", "").lower() == "true")


class NonceFactory:
    """Stateless, self-verifying nonces: base64(time || MAC(key, time || realm)), the MAC a keyed
    BLAKE2s of 12 bytes (a MAC by design; a third of HMAC-SHA256's cost, and every REGISTER
    answer makes or checks one)."""

    def __init__(self, realm: str, ttl_s: float = 300, *, key: bytes | None = None, clock=time.time) -> None:
        self.realm = realm
        self._realm_bytes = realm.encode()
        self.ttl_s = ttl_s
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def _sig(self, stamp: bytes) -> bytes:
        return hashlib.blake2s(stamp + self._realm_bytes, key=self._key, digest_size=12).digest()

    def make(self) -> str:
        stamp = struct.pack(">d", self._clock())
        return base64.b64encode(stamp + self._sig(stamp)).decode()

    def now(self) -> float:
        return self._clock()

    def native_key(self) -> bytes | None:
        """The signing key, for the native REGISTER decision (sip._sipfast), which makes and
        checks these nonces on the wall clock; None when this factory runs on another clock."""
        return self._key if self._clock is time.time else None

    @staticmethod
    def issued_at(nonce: str) -> float:
        """When a nonce that check() found 'ok' or 'stale' was made (this factory's clock)."""
        return struct.unpack(">d", base64.b64decode(nonce)[:8])[0]

    def check(self, nonce: str) -> str:
        """'ok', 'stale' (ours but expired) or 'bad' (not ours)."""
        try:
            raw = base64.b64decode(nonce, validate=True)
        except (ValueError, TypeError):
            return "bad"
        if len(raw) != 20:
            return "bad"
        stamp, sig = raw[:8], raw[8:]
        if not hmac.compare_digest(sig, self._sig(stamp)):
            return "bad"
        (issued,) = struct.unpack(">d", stamp)
        age = self._clock() - issued
        if age < -5 or age > self.ttl_s:
            return "stale"
        return "ok"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str = ""
    cnonce: str = ""

    @classmethod
    def parse(cls, value: str) -> Credentials:
        scheme, p = parse_params(value)
        if scheme != "digest":
            raise DigestError(f"unsupported authorization scheme {scheme!r}")
        try:
            return cls(p["username"], p.get("realm", ""), p["nonce"], p["uri"], p["response"],
                       p.get("algorithm", "MD5").upper(), p.get("qop") or None, p.get("nc", ""), p.get("cnonce", ""))
        except KeyError as missing:
            raise DigestError(f"Authorization lacks {missing.args[0]}") from None

    def verify(self, method: str, ha1_hex: str) -> bool:
        if self.algorithm not in ALGORITHMS:
            return False
        if self.qop and self.qop != "auth":
            return False
        expected = compute_response(ha1_hex, method, self.uri, self.nonce, algorithm=self.algorithm,
                                    qop=self.qop, nc=self.nc, cnonce=self.cnonce)
        return hmac.compare_digest(expected, self.response.lower())


def authorization_header(
    challenge: Challenge, username: str, password: str, method: str, uri: str, *, nc: int = 1, cnonce: str | None = None
) -> str:
    """Client side (simulator, cascade): answer a challenge."""
    h1 = ha1(username, challenge.realm, password, challenge.algorithm)
    parts = [f'username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"', f'uri="{uri}"']
    if challenge.qop:
        cnonce = cnonce or secrets.token_hex(8)
        nc_text = f"{nc:08x}"
        resp = compute_response(h1, method, uri, challenge.nonce, algorithm=challenge.algorithm, qop="auth", nc=nc_text, cnonce=cnonce)
        parts += [f'response="{resp}"', f"algorithm={challenge.algorithm}", f'cnonce="{cnonce}"', "qop=auth", f"nc={nc_text}"]
    else:
        resp = compute_response(h1, method, uri, challenge.nonce, algorithm=challenge.algorithm)
        parts += [f'response="{resp}"', f"algorithm={challenge.algorithm}"]
    if challenge.opaque:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
