"""Small SQL helpers shared by the registry modules: dialect-aware bulk upsert, chunking."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# Bound parameters per IN (...) list; below SQLite's oldest limit (999).
IN_CHUNK = 900
# Rows per executemany batch: large enough to amortise round trips, small enough for memory.
WRITE_CHUNK = 5000


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT construct, which offers ON CONFLICT."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"bulk upsert is not implemented for {name}")


def upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, keys: Iterable[str],
    update: Iterable[str], where: Any = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET <update columns>, as executemany in chunks.

    Every row must carry the same keys. Rows must be unique by `keys` within one call.
    """
    if not rows:
        return
    stmt = insert_for(conn, table)
    set_ = {col: stmt.excluded[col] for col in update}
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=where)
    for part in chunks(rows, WRITE_CHUNK):
        conn.execute(stmt, list(part))


def insert_ignore(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING for one row; True when the row was inserted."""
    # RETURNING, not rowcount: psycopg reports rowcount -1 for this statement.
    stmt = insert_for(conn, table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return conn.execute(stmt, row).first() is not None


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC, so say so."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def aware_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}
