"""Catalog refreshes and Catalog NOTIFY events, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from camgrid.gb28181.manscdp.catalog import catalog_item_to_channel
from camgrid.registry.channels import (
    ChannelNotFound,
    apply_catalog,
    apply_catalog_events,
    get_channels,
    set_channel_attributes,
)
from camgrid.registry.devices import DeviceNotFound, RegistryError, add_device, get_device
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices, organisations

REALM = "3402000000"
NVR = "34020000001180000001"


def ch(n: int, **kw) -> dict:
    item = {"DeviceID": f"340200000013200{n:05d}", "Name": f"cam {n}", "Status": "ON", "Longitude": "117.1",
            "Latitude": "31.8", "ParentID": NVR, "Info": {"PTZType": "1"}}
    item.update(kw)
    return catalog_item_to_channel(item)


def orgs(engine) -> dict[str, dict]:
    with engine.connect() as c:
        return {r["id"]: dict(r) for r in c.execute(sa.select(organisations)).mappings()}


@pytest.fixture
def nvr(engine):
    add_device(engine, NVR, "nvr-Secret-1", REALM, name="NVR")
    return engine


def test_full_catalog_adds_updates_and_removes(nvr):
    engine = nvr
    diff = apply_catalog(engine, NVR, [ch(1), ch(2), ch(3)], partial=False)
    assert sorted(diff.added) == [ch(i)["id"] for i in (1, 2, 3)] and not diff.removed and not diff.updated
    dev = get_device(engine, NVR)
    assert dev["channel_count"] == 3 and dev["catalog_partial"] is False and dev["catalog_at"] is not None
    rows = {r["id"]: r for r in get_channels(engine, NVR)}
    first = rows[ch(1)["id"]]
    assert (first["name"], first["status"], first["ptz_type"], first["type_code"], first["longitude"]) == (
        "cam 1", "online", 1, "132", 117.1)

    # The same catalog again changes nothing; a renamed channel is "updated"; a missing one removed.
    assert apply_catalog(engine, NVR, [ch(1), ch(2), ch(3)], partial=False).updated == []
    diff = apply_catalog(engine, NVR, [ch(1, Name="renamed"), ch(2), ch(4)], partial=False)
    assert diff.added == [ch(4)["id"]] and diff.updated == [ch(1)["id"]] and diff.removed == [ch(3)["id"]]
    assert {r["id"] for r in get_channels(engine, NVR)} == {ch(i)["id"] for i in (1, 2, 4)}
    assert get_device(engine, NVR)["channel_count"] == 3


def test_partial_catalog_never_deletes(nvr):
    engine = nvr
    apply_catalog(engine, NVR, [ch(1), ch(2), ch(3)], partial=False)
    diff = apply_catalog(engine, NVR, [ch(1, Status="OFF")], partial=True)
    assert diff.updated == [ch(1)["id"]] and diff.removed == []
    assert len(get_channels(engine, NVR)) == 3
    assert get_device(engine, NVR)["catalog_partial"] is True


def test_operator_columns_survive_refreshes_and_new_channels_inherit_the_device(nvr):
    engine = nvr
    with engine.begin() as c:
        c.execute(organisations.insert().values(id="D001", kind="department", name="Traffic", updated_at=utcnow()))
        c.execute(sa.update(devices).where(devices.c.id == NVR).values(point_class=2))
    apply_catalog(engine, NVR, [ch(1), ch(2)], partial=False)
    assert {r["point_class"] for r in get_channels(engine, NVR)} == {2}
    assert set_channel_attributes(engine, ch(1)["id"], point_class=1, organisation_id="D001") == 1
    apply_catalog(engine, NVR, [ch(1, Name="new name"), ch(2)], partial=False)
    row = next(r for r in get_channels(engine, NVR) if r["id"] == ch(1)["id"])
    assert (row["name"], row["point_class"], row["organisation_id"]) == ("new name", 1, "D001")
    set_channel_attributes(engine, ch(1)["id"], point_class=0, organisation_id="")
    row = next(r for r in get_channels(engine, NVR) if r["id"] == ch(1)["id"])
    assert (row["point_class"], row["organisation_id"]) == (None, None)
    with pytest.raises(RegistryError, match="point class"):
        set_channel_attributes(engine, ch(1)["id"], point_class=3)
    with pytest.raises(RegistryError, match="organisation"):
        set_channel_attributes(engine, ch(1)["id"], organisation_id="NOPE")
    with pytest.raises(ChannelNotFound):
        set_channel_attributes(engine, "34020000001329999999", point_class=1)


def test_groups_and_regions_go_to_organisations(nvr):
    engine = nvr
    items = [
        catalog_item_to_channel({"DeviceID": "3402", "Name": "Hefei"}),
        catalog_item_to_channel({"DeviceID": "340200", "Name": "Hefei city"}),
        catalog_item_to_channel({"DeviceID": "34020000002150000001", "Name": "Police", "ParentID": "34020000002000000001"}),
        catalog_item_to_channel({"DeviceID": "34020000002160000001", "Name": "East", "ParentID": "34020000002150000001",
                                 "BusinessGroupID": "34020000002150000001"}),
        ch(1, ParentID="34020000002160000001", BusinessGroupID="34020000002150000001"),
        catalog_item_to_channel({"DeviceID": "not-an-id", "Name": "junk"}),
    ]
    diff = apply_catalog(engine, NVR, items, partial=False)
    assert diff.added == [ch(1)["id"]] and diff.skipped == ["not-an-id"]
    got = orgs(engine)
    assert got["3402"]["kind"] == "region" and got["340200"]["parent_id"] == "3402"
    assert got["34020000002150000001"]["kind"] == "business_group"
    vo = got["34020000002160000001"]
    assert (vo["kind"], vo["parent_id"], vo["business_group_id"], vo["source_device_id"]) == (
        "virtual_org", "34020000002150000001", "34020000002150000001", NVR)
    assert get_device(engine, NVR)["channel_count"] == 1
    # A full refresh without the virtual organisation removes it; regions stay (they are shared).
    apply_catalog(engine, NVR, items[:3] + items[4:5], partial=False)
    assert "34020000002160000001" not in orgs(engine) and "340200" in orgs(engine)


def test_catalog_for_an_unknown_device_is_refused(engine):
    with pytest.raises(DeviceNotFound):
        apply_catalog(engine, NVR, [ch(1)], partial=False)


def test_catalog_events(nvr):
    engine = nvr
    apply_catalog(engine, NVR, [ch(1), ch(2), ch(3)], partial=False)
    events = [
        {**ch(1), "Event": "OFF"},
        {**ch(2), "Event": "VLOST"},
        {**ch(3), "Event": "DEL"},
        {**ch(4, Name="added"), "Event": "ADD"},
        {**ch(9), "Event": "ON"},  # unknown channel: ignored
        {**ch(5), "Event": "WHATEVER"},
    ]
    changes = apply_catalog_events(engine, NVR, events)
    assert changes == [("OFF", ch(1)["id"]), ("VLOST", ch(2)["id"]), ("DEL", ch(3)["id"]), ("ADD", ch(4)["id"])]
    rows = {r["id"]: r for r in get_channels(engine, NVR)}
    assert rows[ch(1)["id"]]["status"] == "offline"
    assert rows[ch(2)["id"]]["fault"] == "VLOST" and rows[ch(2)["id"]]["status"] == "online"
    assert ch(3)["id"] not in rows and rows[ch(4)["id"]]["name"] == "added"
    assert get_device(engine, NVR)["channel_count"] == 3
    # ON clears the fault; UPDATE rewrites attributes; DEFECT sets a fault.
    changes = apply_catalog_events(engine, NVR, [
        {**ch(2), "Event": "ON"}, {**ch(1), "Event": "ON"}, {**ch(4, Name="renamed"), "Event": "UPDATE"},
        {**ch(1), "Event": "DEFECT"}])
    assert [e for e, _ in changes] == ["ON", "ON", "UPDATE", "DEFECT"]
    rows = {r["id"]: r for r in get_channels(engine, NVR)}
    assert rows[ch(2)["id"]]["fault"] is None and rows[ch(1)["id"]]["status"] == "online"
    assert rows[ch(1)["id"]]["fault"] == "DEFECT" and rows[ch(4)["id"]]["name"] == "renamed"
    # Group items in events land in organisations.
    apply_catalog_events(engine, NVR, [{**catalog_item_to_channel({"DeviceID": "34020000002150000009", "Name": "G"}),
                                        "Event": "ADD"}])
    assert orgs(engine)["34020000002150000009"]["kind"] == "business_group"


def test_large_catalog_is_bulk(nvr):
    """A 20k-channel catalog: one upsert per 5000 rows, not one statement per row."""
    engine = nvr
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(1))
    rows = [ch(i) for i in range(20000)]
    t0 = time.perf_counter()
    diff = apply_catalog(engine, NVR, rows, partial=False)
    t1 = time.perf_counter()
    assert len(diff.added) == 20000
    diff = apply_catalog(engine, NVR, rows[:19000] + [ch(i, Name="x") for i in range(19000, 20000)], partial=False)
    t2 = time.perf_counter()
    assert len(diff.updated) == 1000 and not diff.added
    print(f"\n[{engine.dialect.name}] catalog of 20000 new channels: {t1 - t0:.2f}s; refresh with 1000 changed: {t2 - t1:.2f}s; "
          f"{len(statements)} statements")
    assert len(statements) < 200
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(channels)).scalar_one() == 20000
