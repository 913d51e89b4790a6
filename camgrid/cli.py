"""The `camgrid` command: serve, sim, demo, config, device, admin."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from camgrid.cli_common import DatabaseUrl, DataDir
from camgrid.config import describe, load_settings

app = typer.Typer(help="camgrid: the central platform for GB/T 28181 camera networks.", no_args_is_help=True,
                  add_completion=False)
config_app = typer.Typer(help="Show the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _register_subapps() -> None:
    from camgrid.governance.cli import admin_app
    from camgrid.registry.cli import device_app

    app.add_typer(device_app, name="device", help="Add, import, export and approve devices.")
    app.add_typer(admin_app, name="admin", help="Users and administration.")
    from camgrid.media.retention_cli import retention_app

    app.add_typer(retention_app, name="retention", help="Delete footage the rules no longer keep; free disk space.")
    from camgrid.media.recordings_cli import export_app, record_app

    app.add_typer(record_app, name="record", help="Recorded footage: list what is on disk.")
    app.add_typer(export_app, name="export", help="Export footage as MP4 with a signed manifest; check a bundle.")
    from camgrid.ops.vqd.cli import vqd_app

    from camgrid.ops.vqd.patrol_cli import patrol_cmd

    vqd_app.command("patrol")(patrol_cmd)
    from camgrid.ops.vqd.manufacturers_cli import manufacturers_app

    vqd_app.add_typer(manufacturers_app, name="manufacturers")
    app.add_typer(vqd_app, name="vqd", help="Video quality diagnosis of a clip or stream.")
    from camgrid.ops.alarms.cli import alarms_app

    app.add_typer(alarms_app, name="alarms", help="Alarms: list them.")
    from camgrid.ops.rates.cli import rates_app

    app.add_typer(rates_app, name="rates", help="Online, intactness and HD rates per local day.")
    from camgrid.ops.maintenance.cli import maintenance_app

    app.add_typer(maintenance_app, name="maintenance", help="Maintenance work orders.")




def _overrides(database_url: str | None = None, **sections: dict) -> dict:
    out: dict = {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in sections.items()}
    if database_url:
        out["store"] = {"database_url": database_url}
    return {k: v for k, v in out.items() if v}


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@config_app.command("show")
def config_show(
    data_dir: DataDir = Path("./data"),
    config: Annotated[Optional[Path], typer.Option(help="YAML file (default <data-dir>/camgrid.yaml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fields: Annotated[bool, typer.Option("--fields", help="List every field with its description.")] = False,
) -> None:
    """Print the effective configuration (defaults < YAML < CAMGRID__* environment)."""
    if fields:
        for name, typ, desc in describe():
            typer.echo(f"{name:34} {typ:10} {desc}")
        return
    settings = load_settings(data_dir=data_dir, config_file=config)
    data = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        import yaml

        typer.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@app.command()
def serve(
    data_dir: DataDir = Path("./data"),
    http_port: Annotated[Optional[int], typer.Option(help="HTTP API port.")] = None,
    http_host: Annotated[Optional[str], typer.Option(help="HTTP bind address.")] = None,
    sip_port: Annotated[Optional[int], typer.Option(help="SIP port (UDP and TCP).")] = None,
    sip_host: Annotated[Optional[str], typer.Option(help="SIP bind address.")] = None,
    sip_id: Annotated[Optional[str], typer.Option(help="This platform's 20-digit GB/T 28181 ID.")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL; default SQLite in the data dir.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration file.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the platform: SIP signaling, registry, health and the HTTP API."""
    from camgrid.app import Platform, run_async

    _logging(verbose)
    try:
        settings = load_settings(data_dir=data_dir, config_file=config, overrides=_overrides(
            database_url, sip={"port": sip_port, "host": sip_host, "id": sip_id},
            http={"port": http_port, "host": http_host}))
    except Exception as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        platform = Platform(settings, announce=lambda text: print(text, flush=True))
        try:
            await platform.start()
        except OSError as exc:
            print(f"error: cannot start: {exc}", file=sys.stderr, flush=True)
            await platform.stop()
            raise SystemExit(1) from None
        assert platform.signaling is not None
        print(f"camgrid serving: SIP {settings.sip.id} on {settings.sip.host}:{platform.signaling.port} "
              f"({'/'.join(settings.sip.transports)}), HTTP http://{settings.http.host}:{platform.http_port}/ "
              f"(API /api/v1, docs /api/v1/docs)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("camgrid stopping", flush=True)
        await platform.stop()

    run_async(main)


@app.command()
def sim(
    server: Annotated[str, typer.Option(help="Platform SIP address HOST:PORT.")],
    platform_id: Annotated[str, typer.Option(help="The platform's 20-digit ID.")],
    devices: Annotated[int, typer.Option(help="Number of devices.")] = 10,
    channels: Annotated[int, typer.Option(help="Channels per device (NVRs and the lower platform).")] = 1,
    password: Annotated[Optional[str], typer.Option(help="One secret for every device (else derived per device from --seed).")] = None,
    seed: Annotated[str, typer.Option(help="Seed for IDs and per-device secrets.")] = "camgrid-sim",
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="Devices from a CSV (id,password,name).")] = None,
    transport: Annotated[str, typer.Option(help="udp or tcp.")] = "udp",
    centre: Annotated[str, typer.Option(help="8-digit centre code of the simulated IDs.")] = "34020000",
    first_serial: Annotated[int, typer.Option(help="Serial of the first device.")] = 1,
    districts: Annotated[int, typer.Option(help="Spread the devices over this many districts of the centre's city (civil codes, region items, a business group with a virtual organisation per district); 0 = all in the city.")] = 0,
    keepalive: Annotated[float, typer.Option(help="Keepalive interval in seconds.")] = 60.0,
    expires: Annotated[int, typer.Option(help="Registration expiry in seconds.")] = 3600,
    alarm_every: Annotated[float, typer.Option(help="Send an alarm from every device this often (s); 0 = never.")] = 0.0,
    catalog_change_every: Annotated[float, typer.Option(help="Toggle one channel OFF/ON by Catalog NOTIFY from every device this often (s); 0 = never.")] = 0.0,
    charset: Annotated[str, typer.Option(help="Charset the devices write in: GB18030 (as most do) or UTF-8.")] = "GB18030",
    wrong_password: Annotated[bool, typer.Option(help="Register with wrong secrets (tests bans).")] = False,
    malformed_every: Annotated[int, typer.Option(help="Send a malformed MESSAGE every N keepalives.")] = 0,
    spread: Annotated[float, typer.Option(help="Spread first registrations over this many seconds.")] = 0.0,
    stream: Annotated[Optional[Path], typer.Option(help="Video file the cameras send when INVITEd (any format FFmpeg reads; re-encoded once). Default: a generated test pattern.")] = None,
    stream_codec: Annotated[str, typer.Option(help="h264 or h265.")] = "h264",
    media_mode: Annotated[str, typer.Option(help="normal, or a fault: silent (accept, send nothing), refuse, other-ssrc.")] = "normal",
    cache_dir: Annotated[Optional[Path], typer.Option(help="Keep the encoded footage here for the next start.")] = None,
    audio: Annotated[str, typer.Option(help="Sound the cameras send: auto (the --stream file's own, as AAC, if it has any), none, or g711a/g711u/aac (the file's sound in that codec, else a 440 Hz tone).")] = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Simulate GB/T 28181 devices (IPCs, NVRs, a lower platform) registering to a platform and streaming video."""
    from camgrid.app import run_async
    from camgrid.sim.agent import SimOptions, Simulator
    from camgrid.sim.devices import generate, load_csv
    from camgrid.sim.media import MEDIA_MODES, SimMediaOptions

    _logging(verbose)
    if transport not in ("udp", "tcp"):
        typer.echo("error: --transport must be udp or tcp", err=True)
        raise typer.Exit(2)
    charset = charset.upper().replace("_", "-")
    if charset not in ("GB18030", "UTF-8"):
        typer.echo("error: --charset must be GB18030 or UTF-8", err=True)
        raise typer.Exit(2)
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        typer.echo("error: --server must be HOST:PORT", err=True)
        raise typer.Exit(2)
    if stream_codec not in ("h264", "h265") or media_mode not in MEDIA_MODES:
        typer.echo(f"error: --stream-codec must be h264 or h265, --media-mode one of {', '.join(MEDIA_MODES)}", err=True)
        raise typer.Exit(2)
    if audio not in ("auto", "none", "g711a", "g711u", "aac"):
        typer.echo("error: --audio must be auto, none, g711a, g711u or aac", err=True)
        raise typer.Exit(2)
    if stream is not None and not stream.is_file():
        typer.echo(f"error: --stream {stream}: no such file", err=True)
        raise typer.Exit(2)
    specs = load_csv(csv_file, channels) if csv_file else generate(devices, channels, centre=centre, seed=seed,
                                                                    password=password, first_serial=first_serial,
                                                                    districts=districts)
    opts = SimOptions(platform_id, host, int(port), transport, expires, keepalive, wrong_password=wrong_password,
                      malformed_every=malformed_every, alarm_every_s=alarm_every, register_spread_s=spread,
                      catalog_change_every_s=catalog_change_every, charset=charset,
                      media=SimMediaOptions(stream_file=stream, codec=stream_codec, mode=media_mode, cache_dir=cache_dir,
                                            audio=audio))

    async def main() -> None:
        simulator = Simulator(specs, opts)
        simulator.on_event = lambda line: print(line, flush=True)  # type: ignore[method-assign]
        if stream is not None:
            footage = await simulator.media.footage()  # encode now, not at the first INVITE
            print(f"sim: streaming {stream} as {footage.codec} {footage.width}x{footage.height} {footage.fps:g} fps"
                  + (f" with {footage.audio_codec} audio" if footage.audio_codec else ""), flush=True)
        await simulator.start()
        print(f"sim: {len(specs)} devices, {sum(len(s.channels) for s in specs)} channels -> {server} over {transport}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reported = -1
        while not stop.is_set():
            with_timeout = asyncio.create_task(stop.wait())
            await asyncio.wait([with_timeout], timeout=2.0)
            if simulator.stats.registered != reported:
                reported = simulator.stats.registered
                fails = dict(simulator.stats.register_failures)
                print(f"sim: registered {reported}/{len(specs)}" + (f", failures {fails}" if fails else ""), flush=True)
        await simulator.stop()

    run_async(main)


@app.command()
def media(
    data_dir: DataDir = Path("./data"),
    http_host: Annotated[Optional[str], typer.Option(help="Address of the node's API and live video.")] = None,
    http_port: Annotated[Optional[int], typer.Option(help="Port of the node's API and live video (0: any free port).")] = None,
    node_id: Annotated[str, typer.Option(help="Name of this node: unique and stable across restarts (its open recordings are recovered by it).")] = "media-1",
    secret_file: Annotated[Optional[Path], typer.Option(help="File holding the node's API secret (else $CAMGRID_MEDIA_SECRET).")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="The platform's database (for the recording index); default SQLite in the data dir.")] = None,
    recordings_dir: Annotated[Optional[Path], typer.Option(help="Where recorded segments go; default <data-dir>/recordings.")] = None,
    no_record: Annotated[bool, typer.Option("--no-record", help="Live video only: no database, no recording.")] = False,
    export_key_file: Annotated[Optional[Path], typer.Option(help="Key that signs export manifests (the platform's <data-dir>/keys/export.key); without it the node does not export.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML configuration file (its media section applies).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a media node alone: RTP ingest and live video, driven by a platform through its API."""
    from camgrid.app import run_async
    from camgrid.media.embedded import READY_PREFIX, SECRET_ENV
    from camgrid.media.node import MediaNode

    _logging(verbose)
    try:
        settings = load_settings(data_dir=data_dir, config_file=config, overrides=_overrides(
            database_url, media={"http_port": http_port, "http_host": http_host, "recordings_dir": recordings_dir}))
    except Exception as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    secret = secret_file.read_text().strip() if secret_file else os.environ.get(SECRET_ENV, "")
    if len(secret) < 16:
        typer.echo("error: the node needs a secret of at least 16 characters: --secret-file FILE or "
                   f"${SECRET_ENV} (the platform lists the same secret under media.nodes)", err=True)
        raise typer.Exit(2)

    engine = None
    if not no_record:
        from camgrid.store.engine import open_store

        try:
            engine = open_store(settings.database_url)
        except Exception as exc:
            typer.echo(f"error: cannot open the database for the recording index ({exc}); check --database-url, "
                       "or run with --no-record", err=True)
            raise typer.Exit(1) from None

    async def main() -> None:
        key = export_key_file.read_bytes() if export_key_file and export_key_file.is_file() else None
        node = MediaNode(settings.media, secret, node_id=node_id, engine=engine, recordings_dir=settings.recordings_dir,
                         export_key=key, retention=settings.retention)
        try:
            await node.start()
        except OSError as exc:
            print(f"error: cannot start: {exc}", file=sys.stderr, flush=True)
            await node.stop()
            raise SystemExit(1) from None
        print(f"{READY_PREFIX}{node.url} (RTP ports {settings.media.rtp_ports[0]}-{settings.media.rtp_ports[1]})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await node.stop()
        if engine is not None:
            engine.dispose()

    run_async(main)


@app.command()
def doctor(
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check what would stop the platform from working with this data dir and configuration
    (ports, addresses, disk, database, schema, users, devices), each finding with what to do.
    Read-only. Exit 1 when a check fails."""
    from camgrid.cli_common import cli_settings
    from camgrid.doctor import FAIL, run_checks

    findings = run_checks(cli_settings(data_dir, database_url))
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False))
    else:
        for f in findings:
            typer.echo(f"{f.status.upper():4}  {f.check:16} {f.message}")
    if any(f.status == FAIL for f in findings):
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: DataDir = Path("./data"),
    devices: Annotated[int, typer.Option(help="Simulated devices.")] = 200,
    channels: Annotated[int, typer.Option(help="Channels per NVR / lower platform.")] = 8,
    http_port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    sip_port: Annotated[int, typer.Option(help="SIP port.")] = 5060,
    audio: Annotated[str, typer.Option(help="Sound the simulated cameras send (camgrid sim --audio): auto, none, g711a, g711u or aac.")] = "auto",
) -> None:
    """Run the platform on the embedded default with simulated devices (what `make demo` runs)."""
    from camgrid.demo import run_demo

    if audio not in ("auto", "none", "g711a", "g711u", "aac"):
        typer.echo("error: --audio must be auto, none, g711a, g711u or aac", err=True)
        raise typer.Exit(2)
    run_demo(data_dir, devices=devices, channels=channels, http_port=http_port, sip_port=sip_port, audio=audio)


def main() -> None:
    _register_subapps()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
