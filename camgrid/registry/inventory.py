"""Import and export of the device inventory as CSV or XLSX.

Import columns (header names are case-insensitive; the Chinese names in brackets work too):

    id               required: the 20-digit GB/T 28181 device ID          [设备编码, 国标编码]
    password         the device's digest secret: required for a new device; for an existing one
                     it replaces the secret; 8+ characters, not a known default       [密码]
    name             display name (max 200)                                [名称, 设备名称]
    manufacturer     (max 100)                                             [厂商]
    model            (max 100)                                             [型号]
    civil_code       GB/T 2260 code of the place, digits (max 20)          [行政区划]
    address          installation address (max 300)                       [地址, 安装地址]
    longitude        decimal degrees, -180..180                            [经度]
    latitude         decimal degrees, -90..90                              [纬度]
    point_class      1 (class one) or 2 (class two); the device's channels inherit it [点位类别]
    organisation_id  organisation the device's channels belong to (max 20) [所属组织]

Other columns (e.g. the status columns an export writes) are ignored and named in the report.
An empty cell leaves an existing device's value alone. CSV may be UTF-8 (with or without BOM),
GB18030/GBK or UTF-16; XLSX is read from its first sheet.

Every row is checked on its own: a refused row is reported with its line number and the
reason, and every good row still lands. Writes are batched (one executemany per few thousand
rows, each batch its own transaction), so 100k rows take seconds, not minutes.

Export writes the same columns plus read-only status columns, never a secret: CSV as
`<file>` plus `<stem>-channels.csv`, XLSX as one workbook with sheets devices and channels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.exc import DBAPIError

from camgrid.registry._sql import IN_CHUNK, WRITE_CHUNK, aware, chunks
from camgrid.registry.devices import RegistryError, new_device_row, secret_columns, validate_device_id
from camgrid.registry.secrets import check_secret_strength
from camgrid.registry.tabular import TableFormatError, TableWriter, read_rows, unescape_text
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices

_ALIASES = {
    "id": "id", "device_id": "id", "deviceid": "id", "gb_id": "id", "设备编码": "id", "设备编号": "id", "国标编码": "id",
    "password": "password", "secret": "password", "密码": "password",
    "name": "name", "名称": "name", "设备名称": "name",
    "manufacturer": "manufacturer", "厂商": "manufacturer", "model": "model", "型号": "model",
    "civil_code": "civil_code", "civilcode": "civil_code", "行政区划": "civil_code",
    "address": "address", "地址": "address", "安装地址": "address",
    "longitude": "longitude", "lng": "longitude", "lon": "longitude", "经度": "longitude",
    "latitude": "latitude", "lat": "latitude", "纬度": "latitude",
    "point_class": "point_class", "点位类别": "point_class",
    "organisation_id": "organisation_id", "organization_id": "organisation_id", "org_id": "organisation_id",
    "所属组织": "organisation_id",
}
_WIDTHS = {"name": 200, "manufacturer": 100, "model": 100, "address": 300, "civil_code": 20, "organisation_id": 20}
_POINT_CLASSES = {"1": 1, "2": 2, "一类": 1, "二类": 2}
# Columns an import may set on a devices row (besides the secret).
ATTRIBUTES = ("name", "manufacturer", "model", "civil_code", "address", "longitude", "latitude", "point_class",
              "organisation_id")
DEVICE_EXPORT = ("id", *ATTRIBUTES, "firmware", "approval", "status", "transport", "remote_addr", "gb_version",
                 "channel_count", "registered_at", "last_seen_at")
CHANNEL_EXPORT = ("device_id", "id", "name", "manufacturer", "model", "civil_code", "address", "parent_id",
                  "business_group_id", "status", "fault", "longitude", "latitude", "ptz_type", "point_class",
                  "organisation_id", "type_code", "ip_address", "port")


class InventoryError(RegistryError):
    """The file as a whole cannot be imported (unreadable, no id column)."""


@dataclass(frozen=True, slots=True)
class RefusedRow:
    line: int
    id: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    accepted: int = 0  # rows stored: new devices plus updated ones
    updated: int = 0  # of which existing devices
    refused: list[RefusedRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        return self.accepted - self.updated

    def to_text(self) -> str:
        lines = [f"accepted {self.accepted} row(s): {self.added} new device(s), {self.updated} updated; "
                 f"refused {len(self.refused)}"]
        if self.ignored_columns:
            lines.append("ignored columns: " + ", ".join(self.ignored_columns))
        for r in sorted(self.refused, key=lambda r: r.line):
            lines.append(f"  line {r.line}: {r.id or '(no id)'}: {r.reason}")
        return "\n".join(lines)


@dataclass(slots=True)
class ExportResult:
    devices: int
    channels: int
    paths: list[Path]


class _Refused(Exception):
    pass


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unescape_text(str(value).strip())


def _parse_id(value: Any) -> str:
    if isinstance(value, float):
        raise _Refused("the ID is stored as a number and has lost digits; format the ID column as text")
    try:
        return validate_device_id(_text(value))
    except RegistryError as exc:
        raise _Refused(str(exc)) from None


def _parse_number(col: str, value: Any, limit: float) -> float:
    try:
        number = float(value if isinstance(value, (int, float)) else _text(value))
    except ValueError:
        raise _Refused(f"{col} {_text(value)!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise _Refused(f"{col} {number} is outside -{limit:g}..{limit:g}")
    return number


def _parse_row(cells: dict[str, Any]) -> dict[str, Any]:
    """Validated values of one row: only the columns that have a value."""
    out: dict[str, Any] = {"id": _parse_id(cells.get("id"))}
    password = cells.get("password")
    if password not in (None, ""):
        password = str(int(password)) if isinstance(password, float) and password.is_integer() else str(password)
        try:
            check_secret_strength(password)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        out["password"] = password
    for col in ("name", "manufacturer", "model", "address", "civil_code", "organisation_id"):
        text = _text(cells.get(col))
        if not text:
            continue
        if len(text) > _WIDTHS[col]:
            raise _Refused(f"{col} has {len(text)} characters; at most {_WIDTHS[col]} fit")
        if col == "civil_code" and not (text.isascii() and text.isdigit()):
            raise _Refused(f"civil_code {text!r} is not a GB/T 2260 code (digits only)")
        if col == "organisation_id" and any(c.isspace() for c in text):
            raise _Refused(f"organisation_id {text!r} contains spaces")
        out[col] = text
    for col, limit in (("longitude", 180.0), ("latitude", 90.0)):
        if _text(cells.get(col)):
            out[col] = _parse_number(col, cells[col], limit)
    if _text(cells.get("point_class")):
        text = _text(cells["point_class"])
        if text not in _POINT_CLASSES:
            raise _Refused(f"point_class {text!r} must be 1 (class one) or 2 (class two)")
        out["point_class"] = _POINT_CLASSES[text]
    return out


def _header(cells: list[Any]) -> tuple[dict[int, str], list[str]]:
    mapping, ignored = {}, []
    for index, cell in enumerate(cells):
        raw = _text(cell).lstrip("\ufeff")
        key = raw.lower().replace(" ", "_").replace("-", "_")
        col = _ALIASES.get(key) or _ALIASES.get(raw)
        if col and col not in mapping.values():
            mapping[index] = col
        elif raw:
            ignored.append(raw)
    return mapping, ignored


def import_inventory(engine: Engine, path: Path, realm: str) -> ImportReport:
    """Add or update the devices listed in a CSV/XLSX file; see the module docstring."""
    path = Path(path)
    report = ImportReport()
    try:
        rows = read_rows(path)
        first = next(rows, None)
        if first is None:
            raise InventoryError(f"{path.name} is empty; the first row must name the columns (id,password,name,...)")
        mapping, report.ignored_columns = _header(first[1])
        if "id" not in mapping.values():
            raise InventoryError(f"{path.name}: no 'id' column in the first row; expected columns id,password,name,...")
        good: list[tuple[int, dict[str, Any]]] = []
        first_line: dict[str, int] = {}
        for line, cells in rows:
            values = {col: cells[i] for i, col in mapping.items() if i < len(cells)}
            if all(_text(v) == "" for v in cells):
                continue  # blank line
            raw_id = _text(values.get("id"))
            try:
                rec = _parse_row(values)
                if rec["id"] in first_line:
                    raise _Refused(f"duplicate: the same ID is on line {first_line[rec['id']]}")
                first_line[rec["id"]] = line
            except _Refused as exc:
                report.refused.append(RefusedRow(line, raw_id, str(exc)))
                continue
            good.append((line, rec))
    except (TableFormatError, OSError) as exc:
        raise InventoryError(str(exc)) from None
    _store(engine, good, realm, report)
    return report


def _existing_ids(engine: Engine, ids: list[str]) -> set[str]:
    found: set[str] = set()
    with engine.connect() as conn:
        for part in chunks(ids, IN_CHUNK):
            found.update(conn.execute(select(devices.c.id).where(devices.c.id.in_(part))).scalars())
    return found


def _store(engine: Engine, good: list[tuple[int, dict[str, Any]]], realm: str, report: ImportReport) -> None:
    existing = _existing_ids(engine, [rec["id"] for _, rec in good])
    now = utcnow()
    inserts: list[tuple[int, dict[str, Any]]] = []
    updates: dict[frozenset[str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for line, rec in good:
        device_id = rec["id"]
        secret = secret_columns(device_id, rec["password"], realm) if "password" in rec else {}
        if device_id in existing:
            values = {k: v for k, v in rec.items() if k in ATTRIBUTES} | secret
            updates[frozenset(values)].append(
                (line, {"b_id": device_id, "b_updated_at": now, **{f"b_{k}": v for k, v in values.items()}}))
        elif not secret:
            report.refused.append(RefusedRow(line, device_id, "a new device needs a password (its digest secret)"))
        else:
            row = new_device_row(device_id, now=now) | {"longitude": None, "latitude": None, "point_class": None,
                                                        "organisation_id": None}
            row.update({k: v for k, v in rec.items() if k in ATTRIBUTES}, **secret)
            inserts.append((line, row))
    for part in chunks(inserts, WRITE_CHUNK):
        report.accepted += _write(engine, devices.insert(), list(part), report)
    for columns, rows in updates.items():
        stmt = update(devices).where(devices.c.id == bindparam("b_id")).values(
            updated_at=bindparam("b_updated_at"), **{c: bindparam(f"b_{c}") for c in sorted(columns)})
        for part in chunks(rows, WRITE_CHUNK):
            written = _write(engine, stmt, list(part), report)
            report.accepted += written
            report.updated += written


def _write(engine: Engine, stmt: Any, rows: list[tuple[int, dict[str, Any]]], report: ImportReport) -> int:
    """One executemany in its own transaction; if the database refuses it, row by row."""
    try:
        with engine.begin() as conn:
            conn.execute(stmt, [r for _, r in rows])
        return len(rows)
    except DBAPIError:
        if len(rows) == 1:
            line, row = rows[0]
            report.refused.append(RefusedRow(line, row.get("id") or row.get("b_id", ""), _db_reason(row)))
            return 0
    written = 0
    for one in rows:
        written += _write(engine, stmt, [one], report)
    return written


def _db_reason(row: dict[str, Any]) -> str:
    if "id" in row:  # an insert that collided with a device added meanwhile
        return "the device was added by someone else during the import; import the file again to update it"
    return "the database refused the row"


def export_inventory(engine: Engine, path: Path) -> ExportResult:
    """Write devices (and their channels) to CSV or XLSX by the file's extension; never a secret."""
    path = Path(path)
    writer = TableWriter(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dev_cols = [devices.c[c] for c in DEVICE_EXPORT]
    chan_cols = [channels.c[c] for c in CHANNEL_EXPORT]
    with engine.connect() as conn:
        dev_rows = conn.execution_options(yield_per=WRITE_CHUNK).execute(select(*dev_cols).order_by(devices.c.id))
        n_dev = writer.sheet("devices", DEVICE_EXPORT, (_export_row(r) for r in dev_rows), first=True)
    with engine.connect() as conn:
        chan_rows = conn.execution_options(yield_per=WRITE_CHUNK).execute(
            select(*chan_cols).order_by(channels.c.device_id, channels.c.id))
        n_chan = writer.sheet("channels", CHANNEL_EXPORT, (_export_row(r) for r in chan_rows), first=False)
    writer.close()
    return ExportResult(n_dev, n_chan, writer.paths)


def _export_row(row: Any) -> list[Any]:
    return [aware(v) if isinstance(v, datetime) else v for v in row]
