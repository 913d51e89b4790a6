"""Viewer tokens: the platform decides who may watch, the media node checks the signature.

A browser opens live video on the media node directly (no second hop through the API), with
a short-lived token the API issued after its own access checks and audit. The token names the
stream and the user and is signed (HMAC-SHA256) with the node's secret, which browsers never
see. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


class TokenError(ValueError):
    """A token that does not grant access; the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, stream_id: str, user: str, ttl_s: float, *, now: float | None = None) -> str:
    claims = {"s": stream_id, "u": user, "e": int((now if now is not None else time.time()) + ttl_s)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify(secret: str, token: str, stream_id: str, *, now: float | None = None) -> str:
    """The user the token was issued to; TokenError when it is forged, expired or for another stream."""
    body, _, signature = token.partition(".")
    try:
        given = _unb64(signature)
        claims = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed token") from None
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise TokenError("bad token signature")
    if not isinstance(claims, dict) or claims.get("s") != stream_id:
        raise TokenError("the token is for another stream")
    if claims.get("e", 0) < (now if now is not None else time.time()):
        raise TokenError("the token has expired; ask the API for a new link")
    return str(claims.get("u", ""))
