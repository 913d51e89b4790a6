"""Keyset paging with opaque cursors.

A cursor is URL-safe base64 of the JSON list of the last row's sort key. Clients treat it as
opaque; a tampered cursor is refused with 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Query

from camgrid.api.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

LimitQuery = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (1-{MAX_LIMIT}).")
CursorQuery = Query(None, max_length=512, description="The next_cursor of the previous page; omit for the first page.")


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, types: tuple[type, ...]) -> list[Any] | None:
    """The key in a cursor, checked against the expected types; None for no cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if (not isinstance(key, list) or len(key) != len(types)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True))):
        raise ApiError(422, "the cursor is not one this API handed out; start again without a cursor",
                       code="invalid_cursor")
    return key


def fill_page(fetch: Callable[[list[Any] | None, int], list[dict[str, Any]]],
              key: Callable[[dict[str, Any]], list[Any]],
              accept: Callable[[dict[str, Any]], bool] | None,
              after: list[Any] | None, limit: int, *, batch: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Read rows in key order after `after` until `limit` rows pass `accept`.

    `fetch(after, n)` returns at most n rows ordered by key. Returns (items, next_cursor);
    next_cursor is None when the rows are exhausted.
    """
    size = limit + 1 if accept is None else max(limit + 1, batch or 1000)
    items: list[dict[str, Any]] = []
    while True:
        rows = fetch(after, size)
        for row in rows:
            if len(items) == limit:
                return items, encode_cursor(key(items[-1]))
            after = key(row)
            if accept is None or accept(row):
                items.append(row)
        if len(rows) < size:
            return items, None


def aware_row(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite returns naive datetimes; everything is stored in UTC, so say so."""
    return {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for k, v in row.items()}
