"""Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as phone
authenticator apps make them, and the sealing of each user's secret at rest.

A secret is stored sealed (AES-256-GCM under `<data-dir>/keys/totp.key`, created on first use,
owner-only): the database alone, a backup of it, or a copy of one row does not give anyone a
second factor. A code is accepted for the step before and after the current one (clocks drift)
and never twice: the step last used is kept and a code of that step or an earlier one is
refused (a code seen over someone's shoulder cannot be replayed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from camgrid.governance import keys

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps either side of now
ISSUER = "camgrid"
_SEALED = b"t1"


class TotpError(ValueError):
    pass


def new_secret() -> str:
    """160 random bits as base32 (what authenticator apps take), without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key_bytes(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def code_at(secret: str, step: int) -> str:
    digest = hmac.new(_key_bytes(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10 ** DIGITS:0{DIGITS}d}"


def step_of(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_S)


def match(secret: str, code: str, *, now: float | None = None, after_step: int | None = None) -> int | None:
    """The step a code belongs to (within WINDOW of now, later than `after_step`), else None."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_of(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """otpauth:// URI for a QR code or to paste into an authenticator app."""
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?" + urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                                                    "digits": DIGITS, "period": STEP_S})


def load_or_create_key(path: Path) -> bytes:
    """The sealing key (32 random bytes, owner-only), created on first use."""
    try:
        return keys.load_or_create(path, what="the TOTP sealing key", exact=True)
    except ValueError as exc:
        raise TotpError(str(exc)) from None


def seal(secret: str, key: bytes, user_id: int) -> bytes:
    """The secret encrypted and bound to its user (a sealed secret copied to another row fails)."""
    nonce = secrets.token_bytes(12)
    return _SEALED + nonce + AESGCM(key).encrypt(nonce, secret.encode(), str(user_id).encode())


def unseal(blob: bytes, key: bytes, user_id: int) -> str:
    if not blob or not blob.startswith(_SEALED):
        raise TotpError("not a sealed TOTP secret")
    try:
        return AESGCM(key).decrypt(blob[2:14], blob[14:], str(user_id).encode()).decode()
    except Exception as exc:  # cryptography's InvalidTag: wrong key, another user's row, tampering
        raise TotpError("the TOTP secret cannot be unsealed with this platform's key") from exc
