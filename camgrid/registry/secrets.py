"""Device digest secrets: derived HA1 values, strength rules and generation.

A device secret is never stored in clear. The registry keeps HA1 = H("user:realm:password")
for MD5 and SHA-256, which is all the digest check in `camgrid.gb28181.sip.digest` needs.
"""

from __future__ import annotations

import hashlib
import secrets as _secrets

MIN_LENGTH = 8

# Factory defaults and other secrets seen on devices in the field; a secret on this list is
# the first one an attacker tries. Compared case-insensitively.
DENYLIST = frozenset(
    {
        "12345678", "123456789", "1234567890", "87654321", "01234567", "11223344", "12341234",
        "00000000", "11111111", "22222222", "66666666", "88888888", "99999999", "12121212",
        "admin123", "admin1234", "admin12345", "administrator", "admin@123", "admin888",
        "password", "password1", "password123", "passw0rd", "p@ssw0rd", "p@ssword",
        "qwertyui", "qwerty123", "abc12345", "abcd1234", "a1234567", "aa123456", "asdf1234",
        "hik12345", "hikvision", "dahua123", "admin12345678", "root1234", "12345qwert",
        "iloveyou", "changeme", "default1", "camera123", "12345678a", "1q2w3e4r",
    }
)


class WeakSecretError(ValueError):
    """A device secret that must not be accepted; the message says why."""


def ha1_md5(user: str, realm: str, password: str) -> str:
    """Hex MD5 of "user:realm:password" (the digest HA1 for algorithm=MD5)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def ha1_sha256(user: str, realm: str, password: str) -> str:
    """Hex SHA-256 of "user:realm:password" (the digest HA1 for algorithm=SHA-256)."""
    return hashlib.sha256(f"{user}:{realm}:{password}".encode()).hexdigest()


def check_secret_strength(password: str | None) -> None:
    """Raise WeakSecretError for an empty, short, single-character or well-known secret."""
    if not password:
        raise WeakSecretError("the device secret is empty; give each device its own secret of 8 characters or more")
    if len(password) < MIN_LENGTH:
        raise WeakSecretError(f"the device secret has {len(password)} characters; use {MIN_LENGTH} or more")
    if password.lower() in DENYLIST:
        raise WeakSecretError("the device secret is a well-known default; choose another (camgrid can generate one)")
    if len(set(password)) == 1:
        raise WeakSecretError("the device secret repeats one character; choose another")


def generate_secret() -> str:
    """A random secret for a device: 22 URL-safe characters (128 bits)."""
    return _secrets.token_urlsafe(16)
