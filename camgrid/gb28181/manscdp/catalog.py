"""Catalog items → channel rows, and assembling a paged catalog answer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from camgrid.gb28181.manscdp.paging import PagedAssembler

ONLINE_VALUES = {"ON", "ONLINE", "OK"}

# channel column → Item element; text columns are "" when absent (the table keeps them NOT NULL)
_TEXT_COLUMNS = {
    "id": "DeviceID", "name": "Name", "manufacturer": "Manufacturer", "model": "Model", "owner": "Owner",
    "civil_code": "CivilCode", "block": "Block", "address": "Address",
}
_OPTIONAL_TEXT = {"parent_id": "ParentID", "business_group_id": "BusinessGroupID", "ip_address": "IPAddress",
                  "resolution": "Resolution"}
_INT_COLUMNS = {"safety_way": "SafetyWay", "register_way": "RegisterWay", "secrecy": "Secrecy", "ptz_type": "PTZType"}
# Column widths of the channels table; free text is cut to fit, codes are dropped if too long.
_WIDTHS = {"id": 20, "name": 200, "manufacturer": 100, "model": 100, "owner": 100, "civil_code": 20,
           "block": 100, "address": 300, "parent_id": 20, "business_group_id": 20, "ip_address": 64,
           "resolution": 60}
_CODE_COLUMNS = ("civil_code", "parent_id", "business_group_id", "ip_address")
_CONSUMED = ({*_TEXT_COLUMNS.values(), *_OPTIONAL_TEXT.values(), *_INT_COLUMNS.values()}
             | {"Parental", "Port", "Status", "Longitude", "Latitude"})
# Not channel attributes: the notification verb, and a device password that must not be stored.
_DROPPED = {"Event", "Password"}


def _flat(item: Mapping[str, Any], out: dict[str, str] | None = None) -> dict[str, str]:
    out = {} if out is None else out
    nested = []
    for key, value in item.items():
        if isinstance(value, Mapping):
            nested.append(value)
        elif value is not None:
            out[str(key)] = str(value).strip()
    for value in nested:
        for k, v in _flat(value).items():
            out.setdefault(k, v)
    return out


def _int(value: str | None, lo: int | None = None, hi: int | None = None) -> int | None:
    if not value or not value.isascii():
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        return None
    return n


def _coord(value: str | None, limit: float) -> float | None:
    if not value:
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    if not math.isfinite(f) or f == 0 or abs(f) > limit:
        return None  # 0 is what devices send when they were never located
    return f


def catalog_item_to_channel(item: Mapping[str, Any]) -> dict[str, Any]:
    """Map a catalog Item (flat, or with a nested "Info" dict) to channel columns.

    Unparsable values become None, never an exception; text columns default to "", parental
    to 0, free text is cut to the column's width. `id` is passed through untouched: the
    caller decides what to do with an invalid channel ID. Everything not mapped goes to `extra`, except Event and Password.
    """
    flat = _flat(item)
    get = flat.get
    row: dict[str, Any] = {col: get(tag, "")[:_WIDTHS[col]] for col, tag in _TEXT_COLUMNS.items()}
    row.update({col: get(tag, "")[:_WIDTHS[col]] or None for col, tag in _OPTIONAL_TEXT.items()})
    for col in _CODE_COLUMNS:  # a cut-off code would point somewhere else: drop it instead
        if len(get(_TEXT_COLUMNS.get(col) or _OPTIONAL_TEXT[col], "")) > _WIDTHS[col]:
            row[col] = "" if col in _TEXT_COLUMNS else None
    row["id"] = get("DeviceID", "")
    row.update({col: _int(get(tag)) for col, tag in _INT_COLUMNS.items()})
    row["parental"] = 1 if get("Parental") == "1" else 0
    row["port"] = _int(get("Port"), 0, 65535)
    row["status"] = "online" if (get("Status") or "").upper() in ONLINE_VALUES else "offline"
    row["longitude"] = _coord(get("Longitude"), 180.0)
    row["latitude"] = _coord(get("Latitude"), 90.0)
    cid = row["id"]
    row["type_code"] = cid[10:13] if len(cid) == 20 and cid.isascii() and cid.isdigit() else ""
    row["extra"] = {k: v for k, v in flat.items() if k not in _CONSUMED and k not in _DROPPED}
    return row


class CatalogAssembler(PagedAssembler):
    """Pages of one catalog answer → the full item list, keyed by DeviceID (a later copy
    replaces an earlier one, keeping its position); items without a DeviceID are dropped."""

    def key(self, item: Mapping[str, str]) -> str | None:
        return (item.get("DeviceID") or "").strip() or None
