"""`camgrid retention ...`: run a retention sweep by hand (what each media node does on its own
every retention.sweep_interval_s), or see what one would delete with --dry-run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from sqlalchemy import Engine, select

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail
from camgrid.governance.audit import audit
from camgrid.media.retention_worker import RetentionWorker, SweepReport
from camgrid.store.tables import recordings

retention_app = typer.Typer(help="Retention: delete footage the rules no longer keep, free disk space.",
                            no_args_is_help=True, add_completion=False)
EMBEDDED_NODE = "embedded"  # the node `camgrid serve` runs


@retention_app.callback()
def _group() -> None:
    """Retention: delete footage the rules no longer keep, free disk space."""


def _node_of(engine: Engine) -> str:
    with engine.connect() as conn:
        nodes = list(conn.scalars(select(recordings.c.node_id).distinct().limit(2)))
    if len(nodes) > 1:
        raise fail("recordings of several media nodes are indexed; pass --node-id (the node whose recordings "
                   "directory this is) and --recordings-dir", 2)
    return nodes[0] if nodes else EMBEDDED_NODE


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_report(report: SweepReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    for (channel, reason), tally in sorted(report.deleted.items()):
        span = f"{tally.first:%Y-%m-%d %H:%M:%S} .. {tally.last:%Y-%m-%d %H:%M:%S} UTC" if tally.first else ""
        notes = []
        if tally.missing_files:
            notes.append(f"{tally.missing_files} files were already gone")
        if tally.failed_files:
            notes.append(f"{tally.failed_files} files could not be removed")
        typer.echo(f"{verb} {tally.segments:6} segments {_size(tally.bytes):>10}  {channel}  {reason:9}  {span}"
                   + (f"  ({'; '.join(notes)})" if notes else ""))
    for why, (n, size) in sorted(report.kept_past_max_age.items()):
        typer.echo(f"kept past their maximum age ({why}): {n} segments, {_size(size)}")
    disk = report.disk_after or report.disk_before
    if disk is not None:
        typer.echo(f"disk: {_size(disk.free_bytes)} free of {_size(disk.size_bytes)}"
                   + (f"; this node's recordings: {_size(disk.recordings_bytes)}" if disk.recordings_bytes is not None else ""))
    if report.alarm:
        typer.echo(f"{report.alarm['severity']}: {report.alarm['message']}", err=True)
    for error in report.errors:
        typer.echo(f"error: {error}", err=True)
    typer.echo(report.summary())


@retention_app.command("sweep")
def sweep(
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    recordings_dir: Annotated[Optional[Path], typer.Option(help="The node's recordings directory; default <data-dir>/recordings.")] = None,
    node_id: Annotated[Optional[str], typer.Option(help="The media node whose recordings these are (its --node-id); found "
                                                        "from the index when only one node records.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be deleted.")] = False,
) -> None:
    """Delete expired footage, free space when the disk is low, remove orphan files; print what went and why."""
    settings = cli_settings(data_dir, database_url)
    root = recordings_dir or settings.recordings_dir
    if not root.is_dir():
        raise fail(f"the recordings directory {root} does not exist; pass --recordings-dir (or --data-dir)", 2)
    with cli_store(settings) as engine:
        node = node_id or _node_of(engine)
        report = RetentionWorker(engine, root, node, settings.retention).sweep_once(dry_run=dry_run)
        if not dry_run:
            audit(engine, "cli", "retention.sweep", node, {"deleted": report.totals(), "short_bytes": report.short_bytes})
    print_report(report)
    if report.errors:
        raise typer.Exit(1)
