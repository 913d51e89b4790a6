"""Channels and organisations from device catalogs: full/partial refreshes and Catalog NOTIFY events.

A catalog item is classified by its ID: type 215 → a business group, 216 → a virtual
organisation, an ID of fewer than 20 digits (2/4/6/8-digit GB/T 2260 civil codes) → a region;
any other 20-digit ID is a channel. Items whose ID is neither are skipped and reported.

Catalog-owned columns are rewritten on every refresh; operator-owned ones (point_class,
organisation_id) are only ever set on insert (inherited from the device) or by
`set_channel_attributes`. The `fault` column belongs to Catalog events (VLOST/DEFECT, ON clears).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update

from camgrid.registry._sql import IN_CHUNK, chunks, upsert
from camgrid.registry.devices import DeviceNotFound, RegistryError, is_gb_id
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices, organisations

_TEXT = {"name": 200, "manufacturer": 100, "model": 100, "owner": 100, "civil_code": 20, "block": 100,
         "address": 300}
_OPT_TEXT = {"parent_id": 20, "business_group_id": 20, "ip_address": 64, "resolution": 60}
_INTS = ("safety_way", "register_way", "secrecy", "port", "ptz_type")
_FLOATS = ("longitude", "latitude")
# Columns a catalog owns, in a stable order; rewritten on each refresh.
CATALOG_COLUMNS = (*_TEXT, "parental", *_OPT_TEXT, *_INTS, "status", *_FLOATS, "type_code", "extra")
ORG_KINDS = {"215": "business_group", "216": "virtual_org"}
STATUS_EVENTS = {"ON", "OFF", "VLOST", "DEFECT"}


class ChannelNotFound(RegistryError):
    pass


@dataclass(slots=True)
class CatalogDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # items whose ID is neither a channel nor an organisation


def _int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def normalise_channel(row: Mapping[str, Any]) -> dict[str, Any]:
    """Catalog columns of one item with defaults, widths and types enforced (same keys every time)."""
    out: dict[str, Any] = {"id": str(row.get("id") or "")}
    for col, width in _TEXT.items():
        out[col] = str(row.get(col) or "")[:width]
    for col, width in _OPT_TEXT.items():
        value = row.get(col)
        out[col] = str(value)[:width] if value not in (None, "") else None
    for col in _INTS:
        out[col] = _int(row.get(col))
    for col in _FLOATS:
        out[col] = _float(row.get(col))
    out["parental"] = 1 if _int(row.get("parental")) == 1 else 0
    out["status"] = "online" if str(row.get("status") or "").lower() in ("online", "on", "ok") else "offline"
    cid = out["id"]
    out["type_code"] = str(row.get("type_code") or (cid[10:13] if is_gb_id(cid) else ""))[:3]
    extra = row.get("extra")
    out["extra"] = dict(extra) if isinstance(extra, Mapping) else {}
    return out


def classify(row: Mapping[str, Any]) -> str:
    """'channel', 'business_group', 'virtual_org', 'region' or 'skip'."""
    cid = str(row.get("id") or "")
    if is_gb_id(cid):
        return ORG_KINDS.get(str(row.get("type_code") or cid[10:13]), "channel")
    if cid and cid.isascii() and cid.isdigit() and len(cid) < 20:
        return "region"
    return "skip"


def _org_row(row: Mapping[str, Any], kind: str, device_id: str, now) -> dict[str, Any]:  # noqa: ANN001
    oid = str(row["id"])
    parent = row.get("parent_id") or None
    if kind == "region" and not parent and len(oid) > 2:
        parent = oid[:-2]  # GB/T 2260: each level adds two digits
    group = row.get("business_group_id") if kind == "virtual_org" else None
    return {"id": oid, "kind": kind, "name": str(row.get("name") or "")[:200],
            "parent_id": str(parent)[:20] if parent else None, "business_group_id": str(group)[:20] if group else None,
            "source_device_id": device_id, "updated_at": now}


def _upsert_orgs(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    rows = list({r["id"]: r for r in rows}.values())
    # Departments are created by operators; a catalog item with the same code never rewrites one.
    upsert(conn, organisations, rows, keys=["id"],
           update=["kind", "name", "parent_id", "business_group_id", "source_device_id", "updated_at"],
           where=organisations.c.kind != "department")


def _device_defaults(conn: Connection, device_id: str) -> dict[str, Any]:
    row = conn.execute(select(devices.c.point_class, devices.c.organisation_id)
                       .where(devices.c.id == device_id)).first()
    if row is None:
        raise DeviceNotFound(f"device {device_id} is not in the registry")
    return {"point_class": row.point_class, "organisation_id": row.organisation_id}


def _upsert_channels(conn: Connection, device_id: str, rows: list[dict[str, Any]], defaults: dict[str, Any],
                     now) -> None:  # noqa: ANN001
    full = [{**r, "device_id": device_id, "fault": None, **defaults, "updated_at": now} for r in rows]
    upsert(conn, channels, full, keys=["device_id", "id"], update=[*CATALOG_COLUMNS, "updated_at"])


def _existing(conn: Connection, device_id: str, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    cols = [channels.c.id, *(channels.c[c] for c in CATALOG_COLUMNS)]
    base = select(*cols).where(channels.c.device_id == device_id)
    if ids is None:
        return {r["id"]: dict(r) for r in conn.execute(base).mappings()}
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(ids)), IN_CHUNK):
        out.update({r["id"]: dict(r) for r in conn.execute(base.where(channels.c.id.in_(part))).mappings()})
    return out


def _delete_channels(conn: Connection, device_id: str, ids: list[str]) -> None:
    for part in chunks(ids, IN_CHUNK):
        conn.execute(delete(channels).where(channels.c.device_id == device_id, channels.c.id.in_(part)))


def _refresh_device(conn: Connection, device_id: str, now, **values: Any) -> None:  # noqa: ANN001
    count = conn.execute(select(func.count()).select_from(channels).where(channels.c.device_id == device_id)).scalar_one()
    conn.execute(update(devices).where(devices.c.id == device_id).values(channel_count=count, updated_at=now, **values))


def apply_catalog(engine: Engine, device_id: str, channel_rows: list[dict], *, partial: bool) -> CatalogDiff:
    """Store a device's catalog answer. A full one (partial=False) deletes the channels it no
    longer lists; a partial one (a catalog that stopped arriving) only adds and updates."""
    now = utcnow()
    diff = CatalogDiff()
    chans: dict[str, dict[str, Any]] = {}
    orgs: list[dict[str, Any]] = []
    for raw in channel_rows:
        row = normalise_channel(raw)
        kind = classify(row)
        if kind == "channel":
            chans[row["id"]] = row
        elif kind == "skip":
            diff.skipped.append(row["id"])
        else:
            orgs.append(_org_row(row, kind, device_id, now))
    with engine.begin() as conn:
        defaults = _device_defaults(conn, device_id)
        existing = _existing(conn, device_id)
        changed = []
        for cid, row in chans.items():
            old = existing.get(cid)
            if old is None:
                diff.added.append(cid)
                changed.append(row)
            elif any(old[c] != row[c] for c in CATALOG_COLUMNS):
                diff.updated.append(cid)
                changed.append(row)
        _upsert_channels(conn, device_id, changed, defaults, now)
        _upsert_orgs(conn, orgs)
        if not partial:
            diff.removed = sorted(set(existing) - set(chans))
            _delete_channels(conn, device_id, diff.removed)
            kept = {o["id"] for o in orgs}
            stale = [oid for oid in conn.execute(
                select(organisations.c.id).where(organisations.c.source_device_id == device_id,
                                                 organisations.c.kind.in_(list(ORG_KINDS.values())))).scalars()
                     if oid not in kept]
            for part in chunks(stale, IN_CHUNK):
                conn.execute(delete(organisations).where(organisations.c.id.in_(part),
                                                         organisations.c.source_device_id == device_id))
        _refresh_device(conn, device_id, now, catalog_partial=partial, catalog_at=now)
    return diff


_STATUS_VALUES = {"ON": {"status": "online", "fault": None}, "OFF": {"status": "offline"},
                  "VLOST": {"fault": "VLOST"}, "DEFECT": {"fault": "DEFECT"}}


def apply_catalog_events(engine: Engine, device_id: str, items: list[dict]) -> list[tuple[str, str]]:
    """Apply Catalog NOTIFY items in order; returns (event, channel_id) for each change made.

    ON/OFF set the status (ON also clears a fault), VLOST/DEFECT set the fault, ADD/UPDATE
    upsert, DEL deletes. Status events for channels the registry does not hold are ignored.
    """
    now = utcnow()
    applied: list[tuple[str, str]] = []
    with engine.begin() as conn:
        defaults = _device_defaults(conn, device_id)
        present = set(_existing(conn, device_id, [str(i.get("id") or "") for i in items]))
        runs: list[tuple[str, list[dict[str, Any]]]] = []  # consecutive items of one kind, one statement each
        membership_changed = False
        for item in items:
            event = str(item.get("Event") or "").upper()
            row = normalise_channel(item)
            kind, cid = classify(row), row["id"]
            if kind in ("skip", "region", "business_group", "virtual_org"):
                if kind != "skip" and event in ("ADD", "UPDATE"):
                    _add_run(runs, "ORG", _org_row(row, kind, device_id, now))
                elif kind != "skip" and event == "DEL":
                    _add_run(runs, "ORGDEL", {"b_id": cid})
                continue
            if event in _STATUS_VALUES and cid in present:
                _add_run(runs, event, {"b_id": cid})
            elif event in ("ADD", "UPDATE"):
                _add_run(runs, "UPSERT", row)
                present.add(cid)
                membership_changed = True
            elif event == "DEL" and cid in present:
                _add_run(runs, "DEL", {"b_id": cid})
                present.discard(cid)
                membership_changed = True
            else:
                continue
            applied.append((event, cid))
        for op, rows in runs:
            _run(conn, device_id, op, rows, defaults, now)
        if membership_changed:
            _refresh_device(conn, device_id, now)
    return applied


def _add_run(runs: list[tuple[str, list[dict[str, Any]]]], op: str, row: dict[str, Any]) -> None:
    if runs and runs[-1][0] == op:
        runs[-1][1].append(row)
    else:
        runs.append((op, [row]))


def _run(conn: Connection, device_id: str, op: str, rows: list[dict[str, Any]], defaults: dict[str, Any],
         now) -> None:  # noqa: ANN001
    if op == "UPSERT":
        _upsert_channels(conn, device_id, list({r["id"]: r for r in rows}.values()), defaults, now)
    elif op == "ORG":
        _upsert_orgs(conn, rows)
    elif op == "ORGDEL":
        conn.execute(delete(organisations).where(organisations.c.id == bindparam("b_id"),
                                                 organisations.c.source_device_id == device_id), rows)
    elif op == "DEL":
        conn.execute(delete(channels).where(channels.c.device_id == device_id, channels.c.id == bindparam("b_id")), rows)
    else:
        stmt = (update(channels).where(channels.c.device_id == device_id, channels.c.id == bindparam("b_id"))
                .values(updated_at=now, **_STATUS_VALUES[op]))
        conn.execute(stmt, rows)


def set_channel_attributes(engine: Engine, channel_id: str, *, point_class: int | None = None,
                           organisation_id: str | None = None) -> int:
    """Set operator-owned attributes of a channel (on every device that reports it).

    None leaves a field alone; point_class 0 and organisation_id "" clear it. Returns the rows changed.
    """
    values: dict[str, Any] = {}
    if point_class is not None:
        if point_class not in (0, 1, 2):
            raise RegistryError(f"point class must be 1 (class one) or 2 (class two), or 0 to clear; not {point_class!r}")
        values["point_class"] = point_class or None
    with engine.begin() as conn:
        if organisation_id is not None:
            if organisation_id and conn.execute(select(organisations.c.id).where(
                    organisations.c.id == organisation_id)).first() is None:
                raise RegistryError(f"organisation {organisation_id} does not exist; create it or pick an existing one")
            values["organisation_id"] = organisation_id or None
        if not values:
            found = conn.execute(select(channels.c.pk).where(channels.c.id == channel_id).limit(1)).first()
            count = 1 if found else 0
        else:
            count = conn.execute(update(channels).where(channels.c.id == channel_id)
                                 .values(updated_at=utcnow(), **values)).rowcount
    if count == 0:
        raise ChannelNotFound(f"channel {channel_id} is not in the registry")
    return count


def get_channels(engine: Engine, device_id: str) -> list[dict[str, Any]]:
    """A device's channels ordered by ID (for the API and tests)."""
    with engine.connect() as conn:
        rows = conn.execute(select(channels).where(channels.c.device_id == device_id).order_by(channels.c.id))
        return [dict(r) for r in rows.mappings()]
