"""GET /tree: the device/channel tree by civil region and by business group / virtual
organisation, with total/online counts per node, the node's own channels paged by cursor, the
unassigned node, and who may see it."""

from __future__ import annotations

import pytest
from api_helpers import FakeHealth, chan_id, channel_row, dev_id, device_row, seed

from camgrid.governance import roles
from camgrid.store.engine import utcnow
from camgrid.store.tables import organisations

GROUP, GROUP_ONLY_ON_CHANNELS = "34020000002150000001", "34020000002150000009"
VORG, VORG_NESTED = "34020000002160000001", "34020000002160000002"


def _org(oid: str, kind: str, name: str, parent: str | None = None, group: str | None = None) -> dict:
    return {"id": oid, "kind": kind, "name": name, "parent_id": parent, "business_group_id": group,
            "source_device_id": None, "updated_at": utcnow()}


@pytest.fixture
def catalog(engine):
    """Device 0 online, device 1 offline. Channels in two districts of 3402, one in 3501, two
    without a civil code; in a business group (directly, in its virtual organisation, in one
    nested below that), in a group that only the channels name, and in none."""
    seed(engine, [device_row(0, status="online"), device_row(1, status="offline")], [
        channel_row(dev_id(0), chan_id(0, 1), civil_code="340201", business_group_id=GROUP, parent_id=VORG),
        channel_row(dev_id(0), chan_id(0, 2), civil_code="340201", business_group_id=GROUP, parent_id=VORG_NESTED),
        channel_row(dev_id(0), chan_id(0, 3), civil_code="340201", status="offline", business_group_id=GROUP),
        channel_row(dev_id(1), chan_id(1, 4), civil_code="340202", business_group_id=GROUP, parent_id=dev_id(1)),
        channel_row(dev_id(0), chan_id(0, 5), civil_code="3402"),
        channel_row(dev_id(0), chan_id(0, 6), civil_code="350100", business_group_id=GROUP_ONLY_ON_CHANNELS),
        channel_row(dev_id(0), chan_id(0, 7), civil_code=""),
        channel_row(dev_id(1), chan_id(1, 8), civil_code=""),
    ])
    with engine.begin() as conn:
        conn.execute(organisations.insert(), [
            _org("34", "region", "安徽省"), _org("3402", "region", "芜湖市", "34"),
            _org("340201", "region", "镜湖区", "3402"), _org("340299", "region", "空区", "3402"),
            _org(GROUP, "business_group", "交通"), _org(VORG, "virtual_org", "路口", GROUP, GROUP),
            _org(VORG_NESTED, "virtual_org", "北路口", VORG, GROUP),
        ])


def tree(api, role="viewer", **params):
    resp = api.get("/api/v1/tree", role, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def counts(answer) -> dict[str, tuple[str, int, int]]:
    return {n["id"]: (n["name"], n["online"], n["total"]) for n in answer["nodes"]}


def test_regions_with_counts_and_the_unassigned_node(api, catalog):
    top = tree(api, by="region")
    assert counts(top) == {"34": ("安徽省", 3, 5), "35": ("", 1, 1), "unassigned": ("", 1, 2)}
    assert top["nodes"][-1]["kind"] == "unassigned" and top["channels"]["items"] == []
    city = tree(api, by="region", parent="34")
    assert counts(city) == {"3402": ("芜湖市", 3, 5)} and city["node"]["name"] == "安徽省"
    assert city["channels"]["items"] == []
    districts = tree(api, by="region", parent="3402")
    # A district the registry knows without channels is there, with nothing to open.
    assert counts(districts) == {"340201": ("镜湖区", 2, 3), "340202": ("", 0, 1), "340299": ("空区", 0, 0)}
    assert [n["has_children"] for n in districts["nodes"]] == [True, True, False]
    assert [c["id"] for c in districts["channels"]["items"]] == [chan_id(0, 5)]  # its own, not the districts'
    district = tree(api, by="region", parent="340201")
    assert district["nodes"] == [] and {c["id"] for c in district["channels"]["items"]} == {
        chan_id(0, 1), chan_id(0, 2), chan_id(0, 3)}
    none = tree(api, by="region", parent="unassigned")
    assert none["nodes"] == [] and {c["id"] for c in none["channels"]["items"]} == {chan_id(0, 7), chan_id(1, 8)}
    assert api.get("/api/v1/tree", params={"parent": "9999"}).status_code == 404
    assert api.get("/api/v1/tree", params={"parent": "34'--"}).status_code == 422


def test_groups_and_virtual_organisations_roll_up(api, catalog):
    top = tree(api, by="group")
    # The group counts the channels of its organisations, nested ones too; a group ID that only
    # channels carry is a node of its own; channels in no group are unassigned.
    assert counts(top) == {GROUP: ("交通", 2, 4), GROUP_ONLY_ON_CHANNELS: ("", 1, 1), "unassigned": ("", 2, 3)}
    group = tree(api, by="group", parent=GROUP)
    assert counts(group) == {VORG: ("路口", 2, 2)}
    assert {c["id"] for c in group["channels"]["items"]} == {chan_id(0, 3), chan_id(1, 4)}
    vorg = tree(api, by="group", parent=VORG)
    assert counts(vorg) == {VORG_NESTED: ("北路口", 1, 1)} and vorg["node"]["kind"] == "virtual_org"
    assert [c["id"] for c in vorg["channels"]["items"]] == [chan_id(0, 1)]
    none = tree(api, by="group", parent="unassigned")
    assert {c["id"] for c in none["channels"]["items"]} == {chan_id(0, 5), chan_id(0, 7), chan_id(1, 8)}
    assert api.get("/api/v1/tree", params={"by": "group", "parent": "34020000002150000077"}).status_code == 404


def test_channels_page_by_cursor_and_filter_by_status(api, catalog):
    seen, cursor = [], None
    while True:
        page = tree(api, by="region", parent="340201", limit=1, **({"cursor": cursor} if cursor else {}))
        assert len(page["channels"]["items"]) <= 1 and (cursor is None or page["nodes"] == [])
        seen += [c["id"] for c in page["channels"]["items"]]
        cursor = page["channels"]["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted({chan_id(0, 1), chan_id(0, 2), chan_id(0, 3)}) and len(seen) == 3
    online = tree(api, by="region", parent="340201", status="online")["channels"]["items"]
    assert {c["id"] for c in online} == {chan_id(0, 1), chan_id(0, 2)} and {c["status"] for c in online} == {"online"}
    offline = tree(api, by="region", parent="unassigned", status="offline")["channels"]["items"]
    assert [c["id"] for c in offline] == [chan_id(1, 8)]  # its device is offline
    assert api.get("/api/v1/tree", params={"cursor": "not-a-cursor", "parent": "34"}).status_code == 422


def test_the_live_health_view_decides_online(make_api, users, catalog):
    api = make_api(health=FakeHealth({dev_id(1)}))  # device 0 went offline, device 1 came back
    api.tokens = users
    assert counts(tree(api, by="region")) == {"34": ("安徽省", 1, 5), "35": ("", 0, 1), "unassigned": ("", 1, 2)}
    online = tree(api, by="region", parent="unassigned", status="online")["channels"]["items"]
    assert [c["id"] for c in online] == [chan_id(1, 8)]


def test_only_callers_who_may_read_channels(api, catalog, monkeypatch):
    assert api.client.get("/api/v1/tree").status_code == 401
    assert all(tree(api, role)["nodes"] for role in ("viewer", "operator", "admin"))
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, "viewer", roles.ROLE_PERMISSIONS["viewer"] - {roles.CHANNELS_READ})
    refused = api.get("/api/v1/tree", "viewer")
    assert refused.status_code == 403 and "channels:read" in refused.json()["error"]["message"]


def test_an_empty_registry_has_an_empty_tree(api):
    assert tree(api, by="region") == {"by": "region", "node": None, "nodes": [],
                                      "channels": {"items": [], "next_cursor": None}}
    assert tree(api, by="group")["nodes"] == []
