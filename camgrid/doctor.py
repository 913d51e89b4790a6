"""`camgrid doctor`: what would stop this platform from working, checked before (or while) it
runs, each finding with what to do. Read-only: it migrates nothing, creates no file or user,
and binds a port only for the moment it takes to see that it is free.

A finding is ok, warn (works, but look) or fail (will not work as configured). The checks run
in order and those that need the database are skipped when it cannot be read.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, make_url, or_, select

from camgrid.config import Settings
from camgrid.store.engine import alembic_config, make_engine
from camgrid.store.tables import devices, users

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str  # ok | warn | fail
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def run_checks(settings: Settings) -> list[Finding]:
    """Every check against `settings` (as `camgrid serve` would run with them)."""
    out = [*_listening(settings), *_receive_buffers(settings), _recordings_disk(settings)]
    engine = _open_existing(settings, out)
    if engine is not None:
        try:
            if _schema(engine, out):
                out += [_administrators(engine), *_devices(engine)]
        finally:
            engine.dispose()
    return out


# -- network ----------------------------------------------------------------------------------------
def _port_free(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _listening(s: Settings) -> list[Finding]:
    out = []
    busy = []
    for transport in s.sip.transports:
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        if s.sip.port and not _port_free(s.sip.host, s.sip.port, kind):
            busy.append(f"{transport.upper()} {s.sip.host}:{s.sip.port}")
    if s.http.port and not _port_free(s.http.host, s.http.port, socket.SOCK_STREAM):
        busy.append(f"HTTP {s.http.host}:{s.http.port}")
    if busy:
        out.append(Finding("ports", WARN, f"in use: {', '.join(busy)}. Fine if this platform is running; otherwise "
                                          "another program holds them (`ss -lntup` names it) and `camgrid serve` "
                                          "will fail to start: stop it or choose other ports (sip.port, http.port)"))
    else:
        out.append(Finding("ports", OK, f"SIP {s.sip.host}:{s.sip.port} ({'/'.join(s.sip.transports)}) and HTTP "
                                        f"{s.http.host}:{s.http.port} are free"))
    if _loopback(s.sip.host):
        out.append(Finding("sip_address", WARN, f"SIP listens on {s.sip.host} only: devices on other machines cannot "
                                                "register. Set sip.host to 0.0.0.0 or the address they reach"))
    else:
        advertised = s.media.advertised_host or s.sip.advertised_host
        out.append(Finding("sip_address", OK, f"SIP listens on {s.sip.host}; media address in the SDP: "
                                              + (advertised or "the address facing each device (set "
                                                 "media.advertised_host behind NAT)")))
    return out


RMEM_MAX = Path("/proc/sys/net/core/rmem_max")


def _receive_buffers(s: Settings, rmem_max_file: Path = RMEM_MAX) -> list[Finding]:
    """The kernel caps every UDP socket's receive buffer at net.core.rmem_max without a word: a
    registration storm or a busy stream then overflows it and loses packets."""
    from camgrid.gb28181.sip.transport import UDP_RECEIVE_BUFFER as SIP_BUFFER
    from camgrid.media.ingest import UDP_RECEIVE_BUFFER as MEDIA_BUFFER

    try:
        cap = int(rmem_max_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []  # not Linux, or not readable: nothing to say
    wanted = max(SIP_BUFFER, MEDIA_BUFFER * (4 if s.media.single_port else 1))
    if cap >= wanted:
        return [Finding("udp_buffers", OK, f"net.core.rmem_max {cap} allows the {wanted >> 20} MiB UDP receive "
                                           "buffers camgrid asks for")]
    return [Finding("udp_buffers", WARN, f"net.core.rmem_max is {cap} bytes: the kernel cuts camgrid's UDP receive "
                                         f"buffers (it asks for {wanted >> 20} MiB) to that, and a registration storm "
                                         "or a busy stream loses packets. Raise it: `sysctl -w net.core.rmem_max="
                                         f"{wanted}` and the same line in /etc/sysctl.d/")]


# -- disk -------------------------------------------------------------------------------------------
def _recordings_disk(s: Settings) -> Finding:
    folder = Path(s.media.recordings_dir or s.data_dir / "recordings")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return Finding("recordings_disk", FAIL, f"{folder} is not writable by this user: recording will fail")
    usage = shutil.disk_usage(existing)
    r = s.retention
    total = min(usage.total, r.quota_bytes) if r.quota_bytes else usage.total
    low = max(total * r.min_free_percent / 100, r.min_free_bytes)
    gib = 1 << 30
    where = f"{folder}{'' if folder.exists() else ' (not created yet)'}: {usage.free / gib:.1f} GiB free of " \
            f"{usage.total / gib:.1f} GiB"
    if usage.free < low:
        return Finding("recordings_disk", WARN, f"{where}, under the low water of {low / gib:.1f} GiB "
                                                "(retention.min_free_percent / min_free_bytes): the oldest footage "
                                                "that may go is deleted now, and a recording.low_space alarm raised")
    return Finding("recordings_disk", OK, where)


# -- database ---------------------------------------------------------------------------------------
def _open_existing(s: Settings, out: list[Finding]) -> Engine | None:
    url = s.database_url
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).exists():  # connecting would create it
            out.append(Finding("database", WARN, f"no database at {path} yet: `camgrid serve` creates it on its first "
                                                 "start (or give --database-url)"))
            return None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the finding
        engine.dispose()
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        out.append(Finding("database", FAIL, f"cannot reach {engine.url.render_as_string(hide_password=True)}: "
                                             f"{first}. Check that it runs and the URL (store.database_url)"))
        return None
    out.append(Finding("database", OK, f"reached {engine.url.render_as_string(hide_password=True)}"))
    return engine


def _schema(engine: Engine, out: list[Finding]) -> bool:
    """True when the tables can be read (the schema is this version's, or only behind it)."""
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        out.append(Finding("schema", OK, f"at revision {head}, this version's"))
        return True
    if current is None:
        out.append(Finding("schema", WARN, "the database is empty: `camgrid serve` creates the tables on its first start"))
        return False
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        out.append(Finding("schema", FAIL, f"at revision {current}, which this version does not know: a newer camgrid "
                                           "migrated it; run that version, or restore the backup taken before"))
        return False
    out.append(Finding("schema", WARN, f"at revision {current}, behind this version's {head}: `camgrid serve` "
                                       "migrates it at start (back the database up first)"))
    return False


def _administrators(engine: Engine) -> Finding:
    with engine.connect() as conn:
        anyone = conn.execute(select(func.count()).select_from(users)).scalar_one()
        admins = conn.execute(select(func.count()).select_from(users).where(
            users.c.role == "admin", users.c.disabled.is_(False))).scalar_one()
    if admins:
        return Finding("administrators", OK, f"{admins} active administrator(s) of {anyone} user(s)")
    if not anyone:
        return Finding("administrators", WARN, "no user yet: `camgrid serve` creates 'admin' with a one-time password "
                                               "on its first start, or run `camgrid admin create-user`")
    return Finding("administrators", WARN, "no active administrator: users cannot be managed from the console; "
                                           "create one with `camgrid admin create-user --role admin`")


def _devices(engine: Engine) -> list[Finding]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(devices)).scalar_one()
        pending = conn.execute(select(func.count()).select_from(devices).where(devices.c.approval == "pending")).scalar_one()
        no_secret = conn.execute(select(func.count()).select_from(devices).where(
            devices.c.approval != "pending", or_(devices.c.ha1_md5.is_(None), devices.c.ha1_md5 == ""),
            or_(devices.c.ha1_sha256.is_(None), devices.c.ha1_sha256 == ""))).scalar_one()
    out = [Finding("devices", OK if total else WARN,
                   f"{total} device(s) in the registry" if total else
                   "no device yet: add them with `camgrid device add` or `camgrid device import`")]
    if pending:
        out.append(Finding("pending_devices", WARN, f"{pending} device(s) wait for approval: `camgrid device approve`, "
                                                    "or the console's device list"))
    if no_secret:
        out.append(Finding("device_secrets", WARN, f"{no_secret} approved device(s) have no secret and cannot register: "
                                                   "give each one with `camgrid device import` (id,password)"))
    return out
