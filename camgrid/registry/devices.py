"""Devices: the write side (add, secrets, approval, registration facts) and lookups.

Operator actions (`set_device_secret`, `delete_device`, `approve_device`) raise DeviceNotFound
for an unknown ID. Facts reported by the signaling side (`record_registration`,
`update_device_info`) return False instead: the device may have been deleted meanwhile.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from camgrid.registry._sql import aware_row, insert_ignore
from camgrid.registry.secrets import check_secret_strength, ha1_md5, ha1_sha256
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices

ID_LENGTH = 20
# Columns get_device/list_devices return: everything but the digest secrets.
PUBLIC_COLUMNS = [c for c in devices.c if c.name not in ("ha1_md5", "ha1_sha256")]


class RegistryError(ValueError):
    """Bad input to the registry; the message says what is wrong and what to do."""


class DeviceExists(RegistryError):
    pass


class DeviceNotFound(RegistryError):
    pass


@dataclass(frozen=True, slots=True)
class DeviceAuth:
    device_id: str
    ha1_md5: str | None
    ha1_sha256: str | None
    realm: str | None
    approval: str


def is_gb_id(value: str) -> bool:
    return len(value) == ID_LENGTH and value.isascii() and value.isdigit()


def validate_device_id(device_id: str) -> str:
    """Return the ID if it is 20 ASCII digits, else raise RegistryError saying why."""
    if not isinstance(device_id, str) or not device_id:
        raise RegistryError("the device ID is empty; a GB/T 28181 ID is 20 digits, e.g. 34020000001320000001")
    if not (device_id.isascii() and device_id.isdigit()):
        raise RegistryError(f"device ID {device_id!r} contains characters other than the digits 0-9; "
                            "a GB/T 28181 ID is 20 digits")
    if len(device_id) != ID_LENGTH:
        raise RegistryError(f"device ID {device_id!r} has {len(device_id)} digits; a GB/T 28181 ID has exactly 20")
    return device_id


def secret_columns(device_id: str, password: str, realm: str) -> dict[str, str]:
    """The stored form of a device secret (checks its strength first)."""
    check_secret_strength(password)
    if not realm:
        raise RegistryError("the digest realm is empty; it is the first 10 digits of the platform ID")
    return {"ha1_md5": ha1_md5(device_id, realm, password),
            "ha1_sha256": ha1_sha256(device_id, realm, password), "realm": realm}


def new_device_row(device_id: str, *, name: str = "", approval: str = "approved", extra: dict | None = None,
                   now=None) -> dict[str, Any]:  # noqa: ANN001
    """Every column a new devices row needs (executemany wants the same keys on every row)."""
    now = now or utcnow()
    return {
        "id": device_id, "name": name[:200], "manufacturer": "", "model": "", "firmware": "",
        "ha1_md5": None, "ha1_sha256": None, "realm": None, "approval": approval, "status": "offline",
        "channel_count": 0, "catalog_partial": False, "civil_code": "", "address": "",
        "extra": dict(extra or {}), "created_at": now, "updated_at": now,
    }


def add_device(engine: Engine, device_id: str, password: str, realm: str, *, name: str = "",
               approval: str = "approved", extra: dict | None = None) -> None:
    """Add a device with its own secret. Raises RegistryError, WeakSecretError or DeviceExists."""
    validate_device_id(device_id)
    if approval not in ("approved", "pending"):
        raise RegistryError(f"approval must be 'approved' or 'pending', not {approval!r}")
    row = new_device_row(device_id, name=name, approval=approval, extra=extra)
    row.update(secret_columns(device_id, password, realm))
    try:
        with engine.begin() as conn:
            conn.execute(devices.insert(), row)
    except IntegrityError:
        raise DeviceExists(f"device {device_id} is already in the registry; "
                           "change its secret instead of adding it again") from None


def _update_one(engine: Engine, device_id: str, values: dict[str, Any]) -> bool:
    values["updated_at"] = utcnow()
    with engine.begin() as conn:
        return conn.execute(update(devices).where(devices.c.id == device_id).values(**values)).rowcount > 0


def _require(found: bool, device_id: str) -> None:
    if not found:
        raise DeviceNotFound(f"device {device_id} is not in the registry")


def set_device_secret(engine: Engine, device_id: str, password: str, realm: str) -> None:
    _require(_update_one(engine, device_id, secret_columns(device_id, password, realm)), device_id)


def delete_device(engine: Engine, device_id: str) -> None:
    """Delete a device and its channels."""
    with engine.begin() as conn:
        # The foreign key cascades; deleting explicitly also covers a SQLite without FK enforcement.
        conn.execute(delete(channels).where(channels.c.device_id == device_id))
        found = conn.execute(delete(devices).where(devices.c.id == device_id)).rowcount > 0
    _require(found, device_id)


def approve_device(engine: Engine, device_id: str) -> None:
    _require(_update_one(engine, device_id, {"approval": "approved"}), device_id)


def add_pending_device(engine: Engine, device_id: str, remote_addr: str) -> bool:
    """Hold an unknown device for an operator to approve. True if it was new, False if known."""
    validate_device_id(device_id)
    row = new_device_row(device_id, approval="pending")
    row["remote_addr"] = (remote_addr or "")[:64]
    with engine.begin() as conn:
        return insert_ignore(conn, devices, row)


def _auth(row: Any) -> DeviceAuth:
    # Realm and approval repeat across every device: one shared string each (memory at 100k devices).
    realm = sys.intern(row.realm) if row.realm else row.realm
    return DeviceAuth(row.id, row.ha1_md5, row.ha1_sha256, realm, sys.intern(row.approval))


_AUTH_COLUMNS = (devices.c.id, devices.c.ha1_md5, devices.c.ha1_sha256, devices.c.realm, devices.c.approval)


def load_device_auth(engine: Engine) -> dict[str, DeviceAuth]:
    """Every device's digest material, in one query."""
    return {auth.device_id: auth for auth in iter_device_auth(engine)}


def iter_device_auth(engine: Engine) -> Iterator[DeviceAuth]:
    """Every device's digest material, one row at a time (the signaling server keeps it compactly)."""
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=5000).execute(select(*_AUTH_COLUMNS)):
            yield _auth(row)


def get_device_auth(engine: Engine, device_id: str) -> DeviceAuth | None:
    with engine.connect() as conn:
        row = conn.execute(select(*_AUTH_COLUMNS).where(devices.c.id == device_id)).first()
    return _auth(row) if row is not None else None


def record_registration(engine: Engine, device_id: str, *, transport: str, remote_addr: str, contact: str,
                        gb_version: str, expires_at, keepalive_interval_s: int | None = None) -> bool:  # noqa: ANN001
    """Store the facts of a successful REGISTER. False if the device is not in the registry."""
    values: dict[str, Any] = {
        "transport": transport[:4], "remote_addr": remote_addr[:64], "contact": contact[:300],
        "gb_version": (gb_version or "")[:8] or None, "register_expires_at": expires_at, "registered_at": utcnow(),
    }
    if keepalive_interval_s is not None:
        values["keepalive_interval_s"] = int(keepalive_interval_s)
    return _update_one(engine, device_id, values)


_INFO_WIDTHS = {"name": 200, "manufacturer": 100, "model": 100, "firmware": 100}


def set_keepalive(engine: Engine, device_id: str, *, interval_s: int | None, count: int | None) -> None:
    """Store the keepalive interval and count the device was configured with (None: platform defaults)."""
    with engine.begin() as conn:
        conn.execute(update(devices).where(devices.c.id == device_id).values(
            keepalive_interval_s=interval_s, keepalive_count=count, updated_at=utcnow()))


def update_device_info(engine: Engine, device_id: str, *, name: str | None = None, manufacturer: str | None = None,
                       model: str | None = None, firmware: str | None = None,
                       channel_count: int | None = None) -> bool:
    """Store what a DeviceInfo answer said; None leaves a field alone. False if the device is unknown."""
    given = {"name": name, "manufacturer": manufacturer, "model": model, "firmware": firmware}
    values: dict[str, Any] = {k: str(v)[:_INFO_WIDTHS[k]] for k, v in given.items() if v is not None}
    if channel_count is not None:
        values["channel_count"] = max(0, int(channel_count))
    if not values:
        return get_device_auth(engine, device_id) is not None
    return _update_one(engine, device_id, values)


def get_device(engine: Engine, device_id: str) -> dict[str, Any] | None:
    """One device's columns, never its secrets; times are aware UTC."""
    with engine.connect() as conn:
        row = conn.execute(select(*PUBLIC_COLUMNS).where(devices.c.id == device_id)).mappings().first()
    return aware_row(dict(row)) if row is not None else None


def list_devices(engine: Engine, *, approval: str | None = None, limit: int | None = None,
                 offset: int = 0) -> list[dict[str, Any]]:
    """Devices ordered by ID, never their secrets."""
    stmt = select(*PUBLIC_COLUMNS).order_by(devices.c.id).offset(offset)
    if approval is not None:
        stmt = stmt.where(devices.c.approval == approval)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return [aware_row(dict(r)) for r in conn.execute(stmt).mappings()]


def count_devices(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(devices)).scalar_one()
