"""The device/channel tree, for the console's side panel: by civil region (GB/T 2260 codes, two
digits a level: 34 → 3402 → 340200 → ...) or by business group and virtual organisation (GB/T
28181 types 215 and 216), with total and online channel counts per node.

Counts are aggregated in SQL: one GROUP BY over the channels under the asked node whose rows are
(child key, device) pairs with their channel and online-channel counts, so an answer reads about
one row per device whatever the channel count; the device's online state (the live health view,
or the stored status) is applied per row. A channel is placed:
- by region at the node named by its civil code (a region's channels are those whose code starts
  with the region's, the node's own channels those whose code equals it);
- by group under its virtual organisation (ParentID) when that is one, else under its business
  group (BusinessGroupID);
and under the UNASSIGNED node when it has no civil code, or neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Select, and_, case, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from camgrid.registry._sql import IN_CHUNK, chunks
from camgrid.store.tables import channels, devices, organisations

UNASSIGNED = "unassigned"
By = Literal["region", "group"]
IsOnline = Callable[[str], bool]

_ONLINE = func.sum(case((channels.c.status == "online", 1), else_=0))
_GROUP_KINDS = ("business_group", "virtual_org")


class NodeNotFound(LookupError):
    pass


@dataclass(slots=True)
class Org:
    id: str
    kind: str
    name: str
    parent: str | None  # the node above it in the group tree; None: at the root


def stored_online(conn: Connection) -> Callable[[Iterable[str]], IsOnline]:
    """Device online state from the devices table (no live health view: an API of its own)."""
    def lookup(device_ids: Iterable[str]) -> IsOnline:
        online: set[str] = set()
        for part in chunks(sorted(set(device_ids)), IN_CHUNK):
            online.update(conn.execute(select(devices.c.id).where(devices.c.id.in_(part),
                                                                  devices.c.status == "online")).scalars())
        return online.__contains__
    return lookup


def _node(node_id: str, name: str, kind: str, counts: list[int] | None, has_children: bool) -> dict[str, Any]:
    total, online = counts or (0, 0)
    return {"id": node_id, "name": name, "kind": kind, "total": total, "online": online, "offline": total - online,
            "has_children": has_children or total > 0}


def _tally(rows: list[Any], key_of: Callable[[Any], str | None],
           online_of: Callable[[Iterable[str]], IsOnline]) -> dict[str, list[int]]:
    """rows of (device_id, ..., n, n_online) → {child key: [total, online]}; key None skips a row."""
    is_online = online_of({r[0] for r in rows})
    out: dict[str, list[int]] = {}
    for r in rows:
        key = key_of(r)
        if key is None:
            continue
        entry = out.get(key)
        if entry is None:
            entry = out[key] = [0, 0]
        entry[0] += r[-2]
        if r[-1] and is_online(r[0]):
            entry[1] += r[-1]
    return out


# --- by civil region ---------------------------------------------------------------------------

def _prefix_range(prefix: str) -> ColumnElement[bool]:
    """civil_code starts with `prefix` (digits): a range the index serves, LIKE for exactness."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    code = channels.c.civil_code
    return and_(code >= prefix, code < upper, code.like(prefix + "%"))


def _region_orgs(conn: Connection, prefix: str) -> dict[str, str]:
    stmt = select(organisations.c.id, organisations.c.name).where(organisations.c.kind == "region")
    if prefix:
        stmt = stmt.where(organisations.c.id.like(prefix + "%"))
    return {oid: name for oid, name in conn.execute(stmt)}


def region_counts(prefix: str) -> Select:
    """(device, child code, channels, online channels) under the region `prefix` ('' = all)."""
    key = func.substr(channels.c.civil_code, 1, len(prefix) + 2)
    stmt = select(channels.c.device_id, key, func.count(), _ONLINE).group_by(channels.c.device_id, key)
    return stmt.where(_prefix_range(prefix), channels.c.civil_code != prefix) if prefix else stmt


def region_children(conn: Connection, parent: str | None,
                    online_of: Callable[[Iterable[str]], IsOnline]) -> list[dict[str, Any]]:
    if parent == UNASSIGNED:
        return []
    prefix = parent or ""
    width = len(prefix) + 2
    tally = _tally(conn.execute(region_counts(prefix)).all(), lambda r: r[1] or UNASSIGNED, online_of)
    orgs = _region_orgs(conn, prefix)
    if parent is not None and not orgs and not tally and not _region_has_channels(conn, prefix):
        raise NodeNotFound(f"region {parent} has no channels and is not in the registry")
    children = {oid for oid in orgs if len(oid) == width} | set(tally)
    deeper = {oid[:width] for oid in orgs if len(oid) > width}
    nodes = [_node(k, orgs.get(k, ""), "region", tally.get(k), k in deeper)
             for k in sorted(children - {UNASSIGNED})]
    if UNASSIGNED in tally:
        nodes.append(_node(UNASSIGNED, "", "unassigned", tally[UNASSIGNED], False))
    return nodes


def _region_has_channels(conn: Connection, code: str) -> bool:
    return conn.execute(select(channels.c.pk).where(channels.c.civil_code == code).limit(1)).first() is not None


def region_filter(node: str) -> ColumnElement[bool]:
    """The node's own channels (not those of the regions under it)."""
    return channels.c.civil_code == ("" if node == UNASSIGNED else node)


# --- by business group / virtual organisation --------------------------------------------------

def group_orgs(conn: Connection) -> dict[str, Org]:
    """Business groups and virtual organisations, each with its parent in the group tree."""
    rows = conn.execute(select(organisations.c.id, organisations.c.kind, organisations.c.name, organisations.c.parent_id,
                               organisations.c.business_group_id)
                        .where(organisations.c.kind.in_(_GROUP_KINDS))).all()
    known = {r.id for r in rows}
    groups = {r.id for r in rows if r.kind == "business_group"}
    out: dict[str, Org] = {}
    for r in rows:
        parent = None
        if r.kind == "virtual_org":
            if r.parent_id in known and r.parent_id != r.id:
                parent = r.parent_id
            elif r.business_group_id in groups:
                parent = r.business_group_id
        out[r.id] = Org(r.id, r.kind, r.name, parent)
    return out


def _place(orgs: dict[str, Org], group: str | None, parent_id: str | None) -> str:
    if parent_id in orgs and orgs[parent_id].kind == "virtual_org":
        return parent_id  # type: ignore[return-value]
    return group or UNASSIGNED


def _ancestors(orgs: dict[str, Org], node: str) -> list[str]:
    """node, its parent, ..., up to a root node (cycles in reported data are cut)."""
    chain, seen = [node], {node}
    while node in orgs and (up := orgs[node].parent) is not None and up not in seen:
        chain.append(up)
        seen.add(up)
        node = up
    return chain


def _subtree_vorgs(orgs: dict[str, Org], node: str) -> set[str]:
    return {o.id for o in orgs.values() if o.kind == "virtual_org" and node in _ancestors(orgs, o.id)[1:]}


def group_children(conn: Connection, parent: str | None,
                   online_of: Callable[[Iterable[str]], IsOnline]) -> list[dict[str, Any]]:
    if parent == UNASSIGNED:
        return []
    orgs = group_orgs(conn)
    group_col, parent_col = channels.c.business_group_id, channels.c.parent_id
    # Device first: rows arrive about in device order, which the GROUP BY's sort likes best.
    stmt = (select(channels.c.device_id, group_col.label("g"), parent_col.label("p"), func.count().label("n"),
                   _ONLINE.label("up"))
            .group_by(channels.c.device_id, group_col, parent_col))
    if parent is not None:
        vorgs = _subtree_vorgs(orgs, parent) | ({parent} if orgs.get(parent, Org("", "", "", None)).kind == "virtual_org" else set())
        if len(vorgs) <= IN_CHUNK:  # else: the whole table (a subtree that large is rare)
            where = [parent_col.in_(sorted(vorgs))] if vorgs else []
            if parent not in orgs or orgs[parent].kind == "business_group":
                where.append(group_col == parent)
            stmt = stmt.where(or_(*where))
    rows = conn.execute(stmt).all()
    if parent is not None and parent not in orgs and not any(r[1] == parent for r in rows):
        raise NodeNotFound(f"no business group or virtual organisation {parent}")

    placed: dict[tuple[str | None, str | None], str | None] = {}  # rows share few (group, parent) pairs

    def child_of(r: Any) -> str | None:
        pair = (r[1], r[2])
        if pair not in placed:
            chain = _ancestors(orgs, _place(orgs, *pair))
            if parent is None:
                placed[pair] = chain[-1]
            elif parent not in chain or chain[0] == parent:
                placed[pair] = None  # elsewhere, or the node's own channel
            else:
                placed[pair] = chain[chain.index(parent) - 1]
        return placed[pair]

    tally = _tally(rows, child_of, online_of)
    with_children = {o.parent for o in orgs.values() if o.parent is not None}
    keys = {o.id for o in orgs.values() if o.parent == parent} | set(tally)
    nodes = []
    for k in keys - {UNASSIGNED}:
        org = orgs.get(k)
        nodes.append(_node(k, org.name if org else "", org.kind if org else "business_group", tally.get(k),
                           k in with_children))
    nodes.sort(key=lambda n: (n["kind"] != "business_group", n["name"] or n["id"], n["id"]))
    if UNASSIGNED in tally:
        nodes.append(_node(UNASSIGNED, "", "unassigned", tally[UNASSIGNED], False))
    return nodes


def _not_in(col: Any, values: list[str]) -> ColumnElement[bool]:
    parts = [col.not_in(part) for part in chunks(values, IN_CHUNK)]
    return or_(col.is_(None), and_(*parts)) if parts else true()


def group_filter(conn: Connection, node: str) -> ColumnElement[bool]:
    """The node's own channels (not those of the virtual organisations under it)."""
    orgs = group_orgs(conn)
    if node in orgs and orgs[node].kind == "virtual_org":
        return channels.c.parent_id == node
    vorgs = sorted(o.id for o in orgs.values() if o.kind == "virtual_org")
    group = channels.c.business_group_id.is_(None) if node == UNASSIGNED else channels.c.business_group_id == node
    return and_(group, _not_in(channels.c.parent_id, vorgs))


def node_info(conn: Connection, by: By, node: str) -> dict[str, Any]:
    if node == UNASSIGNED:
        return {"id": node, "name": "", "kind": "unassigned"}
    kinds = ("region",) if by == "region" else _GROUP_KINDS
    row = conn.execute(select(organisations.c.name, organisations.c.kind)
                       .where(organisations.c.id == node, organisations.c.kind.in_(kinds))).first()
    return {"id": node, "name": row.name if row else "", "kind": row.kind if row else
            ("region" if by == "region" else "business_group")}


def children(conn: Connection, by: By, parent: str | None,
             online_of: Callable[[Iterable[str]], IsOnline]) -> list[dict[str, Any]]:
    return (region_children if by == "region" else group_children)(conn, parent, online_of)


def own_channels(conn: Connection, by: By, node: str) -> ColumnElement[bool]:
    return region_filter(node) if by == "region" else group_filter(conn, node)
