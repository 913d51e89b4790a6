"""What simulated devices are: IDs, secrets and catalogs, from a seed or a CSV. No I/O here."""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

# Device kinds and the GB type code of the device itself.
KIND_TYPES = {"ipc": "132", "nvr": "118", "platform": "200"}


@dataclass(slots=True)
class SimChannel:
    id: str
    name: str
    ptz_type: int = 3
    longitude: float | None = None
    latitude: float | None = None
    status: str = "ON"
    parent_id: str = ""
    business_group_id: str = ""


@dataclass(slots=True)
class SimDeviceSpec:
    id: str
    password: str
    kind: str = "ipc"  # ipc | nvr | platform
    name: str = ""
    channels: list[SimChannel] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)  # region, 215 and 216 catalog items
    civil_code: str = ""  # the channels' CivilCode; default: the first 6 digits of the device ID


def device_secret(seed: str, device_id: str) -> str:
    """A per-device secret derived from a seed, so the platform side can be provisioned alike."""
    return hashlib.sha256(f"{seed}:{device_id}".encode()).hexdigest()[:16]


def _gb(centre: str, type_code: str, serial: int, industry: str = "00", network: str = "0") -> str:
    return f"{centre}{industry}{type_code}{network}{serial:06d}"


def generate(
    count: int, channels: int, *, centre: str = "34020000", seed: str = "camgrid-sim", password: str | None = None,
    first_serial: int = 1, mix: bool = True, districts: int = 0,
) -> list[SimDeviceSpec]:
    """`count` devices: mostly IPCs, every tenth an NVR, and (when count >= 20) one lower platform.

    Channel IDs are unique across the whole set. With `password` every device uses it (for a
    quick demo against one known secret); otherwise each device gets its own derived secret.
    With `districts`, the devices (not the lower platform) take turns over that many districts of
    the centre's city: their channels' CivilCode names the district, and their catalogs carry the
    region items and one business group with a virtual organisation per district.
    """
    rng = random.Random(seed)
    specs = []
    chan_serial = first_serial * 1000
    for i in range(count):
        serial = first_serial + i
        if mix and count >= 20 and i == count - 1:
            kind = "platform"
        elif mix and i % 10 == 9:
            kind = "nvr"
        else:
            kind = "ipc"
        dev_id = _gb(centre, KIND_TYPES[kind], serial)
        spec = SimDeviceSpec(dev_id, password or device_secret(seed, dev_id), kind, f"sim-{kind}-{serial}")
        n = max(1, channels) if kind != "ipc" else max(1, min(channels, 1) if channels else 1)
        if kind == "ipc":
            n = max(1, channels)
        group_id = ""
        if kind == "platform":
            group_id = _gb(centre, "215", serial)
            vorg_id = _gb(centre, "216", serial)
            spec.groups = [
                {"DeviceID": group_id, "Name": f"业务分组 {serial}", "ParentID": dev_id},
                {"DeviceID": vorg_id, "Name": f"虚拟组织 {serial}", "ParentID": group_id, "BusinessGroupID": group_id},
            ]
        if districts > 0 and kind != "platform":
            group_id = _district_orgs(spec, centre, i % districts + 1)
        for c in range(n):
            chan_serial += 1
            chan_id = _gb(centre, "131" if kind != "ipc" else "132", chan_serial % 1_000_000, network="0")
            chan = SimChannel(
                chan_id, f"{spec.name} 通道{c + 1}", ptz_type=rng.choice([1, 2, 3, 3, 3]),
                longitude=round(117.2 + rng.uniform(-0.2, 0.2), 6), latitude=round(31.8 + rng.uniform(-0.2, 0.2), 6),
                parent_id=(spec.groups[-1]["DeviceID"] if spec.groups else dev_id), business_group_id=group_id,
            )
            spec.channels.append(chan)
        specs.append(spec)
    return specs


def _district_orgs(spec: SimDeviceSpec, centre: str, district: int) -> str:
    """Put the device in a district of the centre's city; returns its business group."""
    city = centre[:4]
    spec.civil_code = f"{city}{district:02d}"
    group_id = _gb(centre, "215", 0, network="1")
    spec.groups = [
        {"DeviceID": city, "Name": f"模拟市 {city}"},
        {"DeviceID": spec.civil_code, "Name": f"模拟区 {district:02d}"},
        {"DeviceID": group_id, "Name": "模拟业务分组"},
        {"DeviceID": _gb(centre, "216", district, network="1"), "Name": f"片区 {district:02d}",
         "ParentID": group_id, "BusinessGroupID": group_id},
    ]
    return group_id


def load_csv(path: Path, channels: int) -> list[SimDeviceSpec]:
    """Devices from a CSV with columns id,password[,name[,kind]] (the same file `device import` takes)."""
    specs = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            dev_id, password = row.get("id", ""), row.get("password", "")
            if not dev_id or not password:
                continue
            kind = row.get("kind") or "ipc"
            spec = SimDeviceSpec(dev_id, password, kind, row.get("name") or dev_id)
            for c in range(max(1, channels)):
                chan_id = dev_id[:10] + "131" + dev_id[13] + f"{(int(dev_id[14:]) * 100 + c) % 1_000_000:06d}"
                spec.channels.append(SimChannel(chan_id, f"{spec.name} ch{c + 1}", parent_id=dev_id))
            specs.append(spec)
    return specs


def catalog_items(spec: SimDeviceSpec) -> list[dict]:
    """The device's catalog as MANSCDP Item dicts (groups first, then channels)."""
    items: list[dict] = [dict(g) for g in spec.groups]
    for ch in spec.channels:
        item = {
            "DeviceID": ch.id, "Name": ch.name, "Manufacturer": "camgrid-sim", "Model": "SIM-IPC",
            "Owner": "Owner", "CivilCode": spec.civil_code or spec.id[:6], "Address": "Simulated street",
            "Parental": "0", "ParentID": ch.parent_id or spec.id, "SafetyWay": "0", "RegisterWay": "1",
            "Secrecy": "0", "Status": ch.status,
        }
        if ch.business_group_id:
            item["BusinessGroupID"] = ch.business_group_id
        if ch.longitude is not None:
            item["Longitude"] = f"{ch.longitude:.6f}"
            item["Latitude"] = f"{ch.latitude:.6f}"
        item["Info"] = {"PTZType": str(ch.ptz_type), "Resolution": "6/4"}
        items.append(item)
    return items


RECORD_FILE_S = 1800  # device-side files are half an hour long, aligned to the clock
RECORD_DAYS = 7  # how far back a simulated device's storage reaches
RECORD_LIMIT = 2000  # at most this many records per answer, as real devices cap their lists


def device_records(channel: SimChannel, start: float, end: float, now: float, *, record_type: str = "all",
                   file_s: int = RECORD_FILE_S, days: int = RECORD_DAYS) -> list[dict]:
    """The channel's recordings overlapping [start, end] (Unix seconds) as RecordList items with
    datetime times. Deterministic: a file exists unless a hash of (channel, slot) says it is one
    of the ~10 % that are missing (gaps, as on real storage); every 7th file is an alarm recording."""
    first = max(start, now - days * 86400)
    last = min(end, now)
    items: list[dict] = []
    slot = int(first // file_s)
    while slot * file_s < last and len(items) < RECORD_LIMIT:
        digest = hashlib.blake2s(f"{channel.id}:{slot}".encode(), digest_size=2).digest()
        kind = "alarm" if slot % 7 == 0 else "time"
        if digest[0] % 10 != 0 and record_type in ("all", kind):
            file_start = slot * file_s
            file_end = min(file_start + file_s, now)
            stamp = datetime.fromtimestamp(file_start, timezone.utc)
            items.append({
                "DeviceID": channel.id, "Name": channel.name,
                "FilePath": f"/record/{channel.id}/{stamp:%Y%m%d%H%M%S}.mp4", "Address": "sim-storage",
                "StartTime": stamp, "EndTime": datetime.fromtimestamp(file_end, timezone.utc),
                "Secrecy": 0, "Type": kind, "RecorderID": channel.id,
                "FileSize": int((file_end - file_start) * 4_000_000 / 8),
            })
        slot += 1
    return items
