"""The rates from seconds (pure): group sums of a day's ledger, and the rates with their targets.

Definitions (docs/rates.md says the same for people):
- online rate = Σ online seconds / Σ observed seconds over the channels and days asked for;
  a channel is online while its device is online and its own status is ON.
- intactness rate = Σ intact seconds / Σ observed seconds; intact = online with no open fault
  (a video-quality finding, or the catalog's VLOST / DEFECT).
- HD rate = channel-days whose measured resolution is at least `hd_min_height` lines / channel-
  days with a measured resolution (channels never measured are reported apart, not hidden).
Targets (what the networks' owners are held to): online ≥ 98 % for class-one points and ≥ 95 %
for class-two, intactness ≥ 95 %, HD 100 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camgrid.ops.rates.ledger import ChannelInfo, Totals

DIMENSIONS = ("all", "organisation", "manufacturer", "device_type")
ONLINE_TARGET = {1: 0.98, 2: 0.95}
INTACT_TARGET = 0.95
HD_TARGET = 1.0
SUMS = ("channels", "observed_s", "online_s", "intact_s", "hd", "measured")


def dimension_key(dimension: str, info: ChannelInfo) -> str:
    if dimension == "organisation":
        return info.organisation_id
    if dimension == "manufacturer":
        return info.manufacturer
    if dimension == "device_type":
        return info.type_code
    return ""


@dataclass(frozen=True)
class GroupIndex:
    """Each slot's group code per dimension (what summing needs), built once per grouping: the
    Python pass over the channels costs far more than the sums, and groupings rarely change."""
    codes: dict[str, np.ndarray]
    keys: dict[str, list[tuple[str, int]]]
    size: int

    @classmethod
    def build(cls, infos: Sequence[ChannelInfo]) -> GroupIndex:
        codes, keys = {}, {}
        n = len(infos)
        for dimension in DIMENSIONS:
            index: dict[tuple[str, int], int] = {}
            codes[dimension] = np.fromiter((index.setdefault((dimension_key(dimension, info), info.point_class),
                                                             len(index)) for info in infos), dtype=np.int64, count=n)
            keys[dimension] = list(index)
        return cls(codes, keys, n)


def group_sums(index: GroupIndex | Sequence[ChannelInfo], totals: Totals, height: np.ndarray,
               hd_min_height: int) -> list[dict[str, Any]]:
    """One row per (dimension, key, point class) over the channels observed at all that day
    (slot i: the index's or infos' slot i, totals[i], height[i]). Reads only what it is given,
    so it can run in a thread on copies while the ledger goes on."""
    if not isinstance(index, GroupIndex):
        index = GroupIndex.build(index)
    n = index.size
    observed = totals.observed[:n] > 0
    height = height[:n]
    measured = (height > 0) & observed
    hd = (height >= hd_min_height) & measured
    columns = {"channels": observed.astype(float), "observed_s": totals.observed[:n], "online_s": totals.online[:n],
               "intact_s": totals.intact[:n], "hd": hd.astype(float), "measured": measured.astype(float)}
    rows: list[dict[str, Any]] = []
    for dimension in DIMENSIONS:
        keys = index.keys[dimension]
        if not keys:
            continue
        codes = index.codes[dimension]
        summed = {name: np.bincount(codes, weights=values, minlength=len(keys)) for name, values in columns.items()}
        for code, (key, point_class) in enumerate(keys):
            if summed["channels"][code] == 0:
                continue
            row = {"dimension": dimension, "key": key, "point_class": point_class}
            for name in SUMS:
                value = float(summed[name][code])
                row[name] = int(round(value)) if name in ("channels", "hd", "measured") else value
            rows.append(row)
    return rows


@dataclass
class Figures:
    """Summed seconds of one group, and the rates and targets from them."""
    channels: int = 0
    observed_s: float = 0.0
    online_s: float = 0.0
    intact_s: float = 0.0
    hd: int = 0
    measured: int = 0
    point_classes: set[int] = field(default_factory=set)

    def add(self, row: Mapping[str, Any]) -> None:
        self.channels += int(row["channels"])
        self.observed_s += float(row["observed_s"])
        self.online_s += float(row["online_s"])
        self.intact_s += float(row["intact_s"])
        self.hd += int(row["hd"])
        self.measured += int(row["measured"])
        self.point_classes.add(int(row["point_class"]))

    def as_dict(self, days: int = 1) -> dict[str, Any]:
        online = _ratio(self.online_s, self.observed_s)
        intact = _ratio(self.intact_s, self.observed_s)
        hd = _ratio(self.hd, self.measured)
        classes = self.point_classes - {0}
        online_target = ONLINE_TARGET.get(next(iter(classes))) if len(classes) == 1 and 0 not in self.point_classes else None
        return {
            "channels": round(self.channels / max(days, 1)),  # channels observed per day, on average
            "channel_days": self.channels,
            "observed_hours": round(self.observed_s / 3600, 2),
            "online_rate": online, "intactness_rate": intact, "hd_rate": hd,
            "hd_channel_days": self.hd, "measured_channel_days": self.measured,
            "unmeasured_channel_days": self.channels - self.measured,
            "targets": {"online_rate": online_target, "intactness_rate": INTACT_TARGET, "hd_rate": HD_TARGET},
            "meets": {"online_rate": _meets(online, online_target), "intactness_rate": _meets(intact, INTACT_TARGET),
                      "hd_rate": _meets(hd, HD_TARGET)},
        }


def combine(rows: Iterable[Mapping[str, Any]], key_of) -> dict[Any, Figures]:  # noqa: ANN001
    out: dict[Any, Figures] = {}
    for row in rows:
        out.setdefault(key_of(row), Figures()).add(row)
    return out


def channel_figures(observed_s: float, online_s: float, intact_s: float) -> dict[str, Any]:
    return {"observed_hours": round(observed_s / 3600, 3), "online_rate": _ratio(online_s, observed_s),
            "intactness_rate": _ratio(intact_s, observed_s)}


def _ratio(part: float, whole: float) -> float | None:
    return round(min(part / whole, 1.0), 6) if whole > 0 else None


def _meets(value: float | None, target: float | None) -> bool | None:
    if value is None or target is None:
        return None
    return value >= target - 1e-9
