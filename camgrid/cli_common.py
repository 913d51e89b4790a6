"""What the `camgrid` sub-commands share: the data-dir and database options, settings, the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from sqlalchemy import Engine

from camgrid.config import Settings, load_settings
from camgrid.store.engine import open_store

DataDir = Annotated[Path, typer.Option("--data-dir", help="Data directory (database, state).")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", help="SQLAlchemy URL; default SQLite in the data dir.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for the operator; raise what it returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def cli_settings(data_dir: Path, database_url: str | None) -> Settings:
    try:
        return load_settings(data_dir=data_dir, overrides={"store": {"database_url": database_url}} if database_url else None)
    except Exception as exc:
        raise fail(f"invalid configuration: {exc}", 2) from None


@contextmanager
def cli_store(settings: Settings) -> Iterator[Engine]:
    """The migrated store for one command, disposed of afterwards."""
    if not settings.store.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = open_store(settings.database_url)
    except Exception as exc:
        raise fail(f"cannot open the database ({exc}); check --database-url / --data-dir") from None
    try:
        yield engine
    finally:
        engine.dispose()
