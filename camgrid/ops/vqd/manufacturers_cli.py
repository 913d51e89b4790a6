"""`camgrid vqd manufacturers list|set|delete`: the operator's sub-stream selectors per
manufacturer (what `PUT`/`DELETE /api/v1/vqd/substream/manufacturers/{key}` set), from this
machine's command line, on the database of the data directory. The patrol's next round follows
them. Changes are audited as the API audits them (action vqd.manufacturer_dialect, before and
after), with the actor "cli"."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer

from camgrid.cli_common import (
    DatabaseUrl,
    DataDir,
    cli_settings,
    cli_store,
    fail,
    print_rows,
)
from camgrid.config import StreamDialect
from camgrid.governance.audit import audit
from camgrid.ops.vqd import patrol_store as store
from camgrid.store.engine import utcnow

KEY_MAX = 64  # as the API's
DIALECTS = get_args(StreamDialect)

manufacturers_app = typer.Typer(help="The operator's sub-stream selectors per manufacturer (the patrol's).",
                                no_args_is_help=True, add_completion=False)

Key = Annotated[str, typer.Argument(help="A part of the devices' reported Manufacturer, e.g. hikvision (case ignored).")]


def _key(key: str) -> str:
    normal = store.manufacturer_key(key)
    if not normal:
        raise fail("the manufacturer key is empty: give a part of the devices' Manufacturer, e.g. hikvision", 2)
    if len(normal) > KEY_MAX:
        raise fail(f"the manufacturer key is longer than {KEY_MAX} characters: a part of the Manufacturer "
                   "(e.g. hikvision) is enough", 2)
    return normal


def _config_dialect(settings, key: str) -> str | None:
    return next((d for k, d in settings.vqd.substream.manufacturers.items() if k.lower() == key), None)


@manufacturers_app.command("list")
def list_cmd(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None,
             as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """The operator's selectors, with the configuration's entry for the same key where it has one."""
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        rows = [{**e, "config_dialect": _config_dialect(settings, e["key"])} for e in store.manufacturer_dialects(engine)]
    print_rows(rows, as_json=as_json, empty="no operator's selectors (the configuration's vqd.substream.manufacturers apply)",
               header=f"{'key':<24} {'dialect':<14} {'set by':<16} set at (configuration's)",
               line=lambda r: f"{r['key']:<24} {r['dialect']:<14} {r['set_by'] or '-':<16} "
                              f"{r['set_at']:%Y-%m-%d %H:%M:%S%z} ({r['config_dialect'] or '-'})",
               to_json=lambda r: {**r, "set_at": r["set_at"].isoformat() if r["set_at"] else None})


@manufacturers_app.command("set")
def set_cmd(key: Key,
            dialect: Annotated[str, typer.Argument(help="The selector: " + ", ".join(DIALECTS) + ".")],
            data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """Set the selector for devices whose Manufacturer contains KEY (over the configuration's). Audited."""
    if dialect not in DIALECTS:
        raise fail(f"unknown selector {dialect!r}: one of {', '.join(DIALECTS)}", 2)
    normal = _key(key)
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        before = store.set_manufacturer_dialect(engine, normal, dialect, "cli", utcnow())
        audit(engine, "cli", "vqd.manufacturer_dialect", normal, {"before": {"dialect": before}, "after": {"dialect": dialect}})
    typer.echo(f"{normal}: {before or '-'} -> {dialect}")


@manufacturers_app.command("delete")
def delete_cmd(key: Key, data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """Remove the operator's selector for KEY: its devices get the configuration's again. Audited."""
    normal = _key(key)
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        before = store.drop_manufacturer_dialect(engine, normal)
        if before is None:
            where = (" (the configuration's vqd.substream.manufacturers has one: change it there)"
                     if _config_dialect(settings, normal) else "")
            raise fail(f"no operator's selector for manufacturer {normal!r}{where}")
        audit(engine, "cli", "vqd.manufacturer_dialect", normal, {"before": {"dialect": before}, "after": {"dialect": None}})
    typer.echo(f"{normal}: {before} -> - (the configuration's)")
