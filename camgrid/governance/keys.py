"""The platform's own secret keys under <data-dir>/keys: random bytes, owner-only, created on
first use (the export signing key, the TOTP sealing key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(path: Path, *, size: int = 32, what: str = "key", exact: bool = False) -> bytes:
    """The key in `path`, or a new one of `size` random bytes written there (mode 0600). A key
    file shorter than `size` (or of another size, with `exact`) is refused with ValueError."""
    if path.exists():
        key = path.read_bytes()
        if len(key) < size or (exact and len(key) != size):
            raise ValueError(f"{path}: {what} must be {'exactly' if exact else 'at least'} {size} bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
