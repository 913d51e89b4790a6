"""`camgrid retention ...`: run a retention sweep by hand (what each media node does on its own
every retention.sweep_interval_s), or see what one would delete with --dry-run; list the footage
the sweep put in the quarantine (orphan files of channels not in the registry), index it again
once its channel is back, or delete it."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import Engine, select

from camgrid.bus import Event
from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail, print_rows
from camgrid.config import Settings
from camgrid.governance.audit import audit
from camgrid.governance.event_log import event_row
from camgrid.media import retention_files as files
from camgrid.media.retention_orphans import DeviceOf, index_recovered
from camgrid.media.retention_worker import RetentionWorker, SweepReport, Tally, load_holds
from camgrid.media.segment_file import SegmentError, describe_segment
from camgrid.store.tables import events, recordings

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
    for channel, tally in sorted(report.quarantined.items()):
        typer.echo(f"{'would move' if report.dry_run else 'moved'} {tally.segments:6} orphan segment files "
                   f"{_size(tally.bytes):>10}  {channel}  to the quarantine (the channel is not in the registry)")
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


# -- the quarantine ---------------------------------------------------------------------------

orphans_app = typer.Typer(help="Footage of channels not in the registry, moved aside by the retention sweep "
                               "(<recordings>/_quarantine): list it, index it again, delete it.",
                          no_args_is_help=True, add_completion=False)
retention_app.add_typer(orphans_app, name="orphans")
RecordingsDir = Annotated[Optional[Path], typer.Option(help="The node's recordings directory; default <data-dir>/recordings.")]
Channel = Annotated[Optional[str], typer.Option("--channel", help="Only this channel's files.")]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per file.")]


def _root(settings: Settings, recordings_dir: Path | None) -> Path:
    root = recordings_dir or settings.recordings_dir
    if not root.is_dir():
        raise fail(f"the recordings directory {root} does not exist; pass --recordings-dir (or --data-dir)", 2)
    return root


def _item(q: files.Quarantined, **more: Any) -> dict[str, Any]:
    return {"path": q.relative, "channel_id": q.channel_id, "from": q.start_at.isoformat(), "changed": q.end_at.isoformat(),
            "bytes": q.bytes, **more}


def _done(rows: list[dict[str, Any]], as_json: bool, verb: str) -> None:
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
        return
    for row in rows:
        typer.echo(f"{row['outcome']:12} {row['path']}" + (f"  ({row['why']})" if row.get("why") else ""))
    n = sum(1 for r in rows if r["outcome"] == verb)
    typer.echo(f"{verb} {n} of {len(rows)} quarantined files ({_size(sum(r['bytes'] for r in rows if r['outcome'] == verb))})")


def _write_events(engine: Engine, kind: str, tallies: dict[str, Tally], **data: Any) -> None:
    if tallies:
        with engine.begin() as conn:
            conn.execute(events.insert(), [event_row(Event(kind, channel, {**data, **t.as_dict()}))
                                           for channel, t in sorted(tallies.items())])


@orphans_app.command("list")
def orphans_list(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None, recordings_dir: RecordingsDir = None,
                 channel: Channel = None, as_json: Json = False) -> None:
    """The quarantined files, oldest first, and whether their channel is in the registry again."""
    settings = cli_settings(data_dir, database_url)
    root = _root(settings, recordings_dir)
    found = files.quarantined(root, channel)
    with cli_store(settings) as engine:
        device_of = DeviceOf(engine)
        rows = [_item(q, channel_known=device_of(q.channel_id) is not None) for q in found]
    print_rows(rows, as_json=as_json, empty="no quarantined footage", header=f"{'from (UTC)':19}  {'bytes':>10}  {'channel':20}  "
               "registry  path",
               line=lambda r: f"{r['from'][:19].replace('T', ' ')}  {_size(r['bytes']):>10}  {r['channel_id']:20}  "
                              f"{'known' if r['channel_known'] else 'unknown':8}  {r['path']}",
               to_json=lambda r: r)
    if rows and not as_json:
        typer.echo(f"{len(rows)} files, {_size(sum(r['bytes'] for r in rows))}, in {root / files.QUARANTINE}")


@orphans_app.command("reindex")
def orphans_reindex(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None,
                    recordings_dir: RecordingsDir = None, channel: Channel = None,
                    node_id: Annotated[Optional[str], typer.Option(help="The media node whose recordings these are; found "
                                                                        "from the index when only one node records.")] = None,
                    as_json: Json = False) -> None:
    """Put quarantined files of channels that are in the registry again back in place, indexed
    (state "recovered", as the sweep does for orphans); files of channels still unknown stay."""
    settings = cli_settings(data_dir, database_url)
    root = _root(settings, recordings_dir)
    found = files.quarantined(root, channel)
    rows: list[dict[str, Any]] = []
    indexed: dict[str, Tally] = defaultdict(Tally)
    with cli_store(settings) as engine:
        node = node_id or _node_of(engine)
        device_of = DeviceOf(engine)
        if channel is not None and found and device_of(channel) is None:
            raise fail(f"channel {channel} is not in the registry: add it (or its device) first, then index its "
                       "quarantined footage again", 1)
        for q in found:
            device_id = device_of(q.channel_id)
            outcome, why = _reindex_one(engine, root, q, device_id, node) if device_id else ("kept", "channel not in the registry")
            if outcome == "indexed":
                indexed[q.channel_id].add(q.start_at, q.end_at, q.bytes)
            rows.append(_item(q, outcome=outcome, why=why))
        _write_events(engine, "recording.reindexed", indexed, node_id=node, source="quarantine")
        if indexed:
            audit(engine, "cli", "retention.orphans_reindex", node, {"channels": {ch: t.as_dict() for ch, t in indexed.items()}})
    _done(rows, as_json, "indexed")
    if any(r["outcome"] == "failed" for r in rows):
        raise typer.Exit(1)


def _reindex_one(engine: Engine, root: Path, q: files.Quarantined, device_id: str, node: str) -> tuple[str, str | None]:
    source = files.quarantine_path(root, q.relative)
    assert source is not None  # (found in the quarantine, so its path is in the layout)
    try:
        describe_segment(source)  # still footage? (checked before it moves)
    except (SegmentError, OSError, struct.error) as exc:
        return "failed", f"not a whole segment any more: {exc}"
    outcome, error = files.release(root, q.relative)
    if error or outcome == files.MISSING:
        return "failed", error or "it is gone"
    try:
        info = describe_segment(root / q.relative, repair=True)
    except (SegmentError, OSError, struct.error) as exc:
        return "failed", f"moved back, but cannot be read: {exc}"
    if not index_recovered(engine, root, q.relative, q.channel_id, device_id, q.start_at, info, node):
        return "indexed", "its index row existed already"
    return "indexed", None


@orphans_app.command("delete")
def orphans_delete(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None,
                   recordings_dir: RecordingsDir = None, channel: Channel = None,
                   all_channels: Annotated[bool, typer.Option("--all", help="Every channel's quarantined files.")] = False,
                   as_json: Json = False) -> None:
    """Delete quarantined footage for good (audited); files under an active legal hold stay."""
    if (channel is None) == (not all_channels):
        raise fail("say which footage goes: --channel ID, or --all", 2)
    settings = cli_settings(data_dir, database_url)
    root = _root(settings, recordings_dir)
    found = files.quarantined(root, channel)
    now = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    gone: dict[str, Tally] = defaultdict(Tally)
    with cli_store(settings) as engine:
        holds = load_holds(engine, now)
        directories: set[Path] = set()
        for q in found:
            path = files.quarantine_path(root, q.relative)
            assert path is not None
            hold = holds.covering(q.channel_id, q.start_at, q.end_at)
            if hold is not None:
                rows.append(_item(q, outcome="kept", why=f"legal hold {hold.id}"))
                continue
            outcome, error = files.remove_file(path)
            if error:
                rows.append(_item(q, outcome="failed", why=error))
                continue
            directories.add(path.parent)
            gone[q.channel_id].add(q.start_at, q.end_at, q.bytes, outcome)
            rows.append(_item(q, outcome="deleted", why=None))
        files.settle_dirs(directories, now.date())
        _write_events(engine, "recording.deleted", gone, reason="quarantine_by_hand")
        if gone:
            audit(engine, "cli", "retention.orphans_delete", channel or "all",
                  {"channels": {ch: t.as_dict() for ch, t in gone.items()}})
    _done(rows, as_json, "deleted")
    if any(r["outcome"] == "failed" for r in rows):
        raise typer.Exit(1)
