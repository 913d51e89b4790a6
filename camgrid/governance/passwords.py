"""User passwords: argon2id hashes (argon2-cffi) and the password policy for people.

Device digest secrets are a different thing (camgrid.registry.secrets): they must be kept as
HA1 for SIP digest and cannot be argon2-hashed.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 accepts more, but a megabyte "password" is only a way to burn CPU
MIN_CLASSES = 2
MIN_DISTINCT = 5

# RFC 9106 low-memory profile (argon2-cffi's default parameters), always argon2id.
_hasher = PasswordHasher(type=Type.ID)


class WeakPasswordError(ValueError):
    """A password that the policy refuses; the message says what to change."""


def _classes(password: str) -> int:
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))


def check_password_policy(password: str, username: str | None = None) -> None:
    """Raise WeakPasswordError unless `password` is acceptable for a user account."""
    if not isinstance(password, str) or not password:
        raise WeakPasswordError("the password is empty; choose one of at least 12 characters")
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"the password has {len(password)} characters; use at least {MIN_LENGTH}")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"the password is longer than {MAX_LENGTH} characters")
    if _classes(password) < MIN_CLASSES:
        raise WeakPasswordError("the password uses only one kind of character; mix at least two of "
                                "lower case, upper case, digits and symbols")
    if len(set(password)) < MIN_DISTINCT:
        raise WeakPasswordError(f"the password repeats too few characters; use at least {MIN_DISTINCT} different ones")
    if username and len(username) >= 3 and username.lower() in password.lower():
        raise WeakPasswordError("the password contains the username; choose one that does not")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, new hash or None). A new hash is returned when the stored one uses older
    parameters, so the caller can store it while it knows the clear password."""
    try:
        _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if _hasher.check_needs_rehash(stored_hash):
        return True, _hasher.hash(password)
    return True, None
