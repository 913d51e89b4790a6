"""`camgrid device ...`: add, import, export, approve and list devices in the registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail
from camgrid.registry.devices import (
    DeviceNotFound,
    RegistryError,
    add_device,
    approve_device,
    get_device_auth,
    list_devices,
    set_device_secret,
)
from camgrid.registry.inventory import InventoryError, export_inventory, import_inventory
from camgrid.registry.secrets import WeakSecretError

device_app = typer.Typer(help="Add, import, export, approve and list devices.", no_args_is_help=True,
                         add_completion=False)

DeviceId = Annotated[str, typer.Option("--id", help="The device's 20-digit GB/T 28181 ID.")]


def _read_secret() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise fail("--password-stdin expects the secret on standard input, e.g. `printf %s \"$SECRET\" | camgrid device add ...`")
    return sys.stdin.readline().rstrip("\r\n")


@device_app.command("add")
def add(
    device_id: DeviceId,
    data_dir: DataDir = Path("./data"),
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the device's secret from standard input.")] = False,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Add a device with its own digest secret (read from standard input)."""
    if not password_stdin:
        raise fail("give the device's secret on standard input with --password-stdin (secrets never go on the command line)", 2)
    password = _read_secret()
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        try:
            add_device(engine, device_id, password, settings.sip.realm, name=name)
        except (RegistryError, WeakSecretError) as exc:
            raise fail(str(exc)) from None
    typer.echo(f"added device {device_id} (realm {settings.sip.realm})")


@device_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help=(
        "CSV or XLSX. Columns: id (required), password (required for new devices), name, manufacturer, model, "
        "civil_code, address, longitude, latitude, point_class (1 or 2), organisation_id."))],
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Add or update devices from a CSV or XLSX file. Exit 1 if any row was refused."""
    if not file.is_file():
        raise fail(f"{file} does not exist or is not a file")
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        try:
            report = import_inventory(engine, file, settings.sip.realm)
        except InventoryError as exc:
            raise fail(str(exc)) from None
    typer.echo(report.to_text())
    if report.refused:
        typer.echo(f"{len(report.refused)} row(s) refused; fix them and import the file again "
                   "(rows already accepted are updated, not duplicated)", err=True)
        raise typer.Exit(1)
    if not report.accepted:
        raise fail("the file holds no device rows")


@device_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="Target .csv (plus <stem>-channels.csv) or .xlsx.")],
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Export devices and channels (never secrets) to CSV or XLSX."""
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        try:
            result = export_inventory(engine, file)
        except (ValueError, OSError) as exc:
            raise fail(str(exc)) from None
    typer.echo(f"exported {result.devices} device(s) and {result.channels} channel(s) to "
               + ", ".join(str(p) for p in result.paths))


@device_app.command("approve")
def approve(
    device_id: DeviceId,
    data_dir: DataDir = Path("./data"),
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Also set the device's secret, read from standard input.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Approve a pending device (one that registered while unknown)."""
    password = _read_secret() if password_stdin else None
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        try:
            if password is not None:
                set_device_secret(engine, device_id, password, settings.sip.realm)
            approve_device(engine, device_id)
            auth = get_device_auth(engine, device_id)
        except (DeviceNotFound, RegistryError, WeakSecretError) as exc:
            raise fail(str(exc)) from None
    typer.echo(f"approved device {device_id}")
    if auth is not None and not auth.ha1_md5:
        typer.echo("warning: the device has no secret yet and cannot register; approve again with --password-stdin",
                   err=True)


@device_app.command("list")
def list_(
    data_dir: DataDir = Path("./data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List devices with their approval, stored status and channel count."""
    settings = cli_settings(data_dir, database_url)
    with cli_store(settings) as engine:
        rows = list_devices(engine)
    if as_json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no devices; add one with `camgrid device add` or `camgrid device import`")
        return
    typer.echo(f"{'id':20}  {'approval':8}  {'status':7}  {'channels':>8}  {'last seen (UTC)':19}  name")
    for r in rows:
        seen = r["last_seen_at"].strftime("%Y-%m-%d %H:%M:%S") if r["last_seen_at"] else "-"
        typer.echo(f"{r['id']:20}  {r['approval']:8}  {r['status']:7}  {r['channel_count']:>8}  {seen:19}  {r['name']}")
