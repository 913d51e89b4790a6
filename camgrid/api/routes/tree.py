"""The device/channel tree: GET /tree?by=region|group&parent=ID answers the node's child nodes
with their total/online channel counts and the channels directly under it, paged by cursor
(camgrid/registry/tree.py aggregates; docs/benchmarks.md has its cost at 100k channels).

The channels page in primary-key order: each node's filter has an index whose entries are in
that order (civil_code, business_group_id, parent_id), so a page is an index range, no sort.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import Select

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, decode_cursor, fill_page
from camgrid.api.routes.channels import channel_item, channel_query, channel_status
from camgrid.api.security import Principal, api_context, require
from camgrid.governance import roles
from camgrid.registry import tree
from camgrid.store.tables import channels

router = APIRouter(prefix="/tree", tags=["channels"])


def own_channels_query(own: Any, status: str | None, live: bool) -> Select:
    """A node's channels in pk order (without the cursor and the limit)."""
    # With the live health view, the device's state is its word, not the stored one: SQL filters
    # only what the channel row decides.
    stmt = channel_query(status=None if live else status).where(own).order_by(None).order_by(channels.c.pk)
    return stmt.where(channels.c.status == "online") if live and status == "online" else stmt


@router.get("")
def get_tree(
    request: Request,
    by: Literal["region", "group"] = Query("region", description="region: civil codes (GB/T 2260); group: "
                                           "business groups and virtual organisations."),
    parent: str | None = Query(None, min_length=1, max_length=20, pattern=r"^([0-9]+|unassigned)$",
                               description="The node to open (a civil code, a group or organisation ID, or "
                                           "'unassigned'); omit for the top level."),
    status: Literal["online", "offline"] | None = Query(None, description="Only the node's channels in this "
                                                        "status (counts are always of all)."),
    cursor: str | None = CursorQuery,
    limit: int = Query(100, ge=1, le=1000, description="Channels per page."),
    principal: Principal = require(roles.CHANNELS_READ),
) -> dict[str, Any]:
    """The node's child nodes (id, name, kind, total, online, offline, has_children) and its own
    channels (items, next_cursor; none at the top level). With a cursor only the next page of
    channels is answered (nodes is empty)."""
    ctx = api_context(request)
    after = decode_cursor(cursor, (int,))
    with ctx.engine.connect() as conn:
        if ctx.health is not None:
            def online_of(_ids: Any) -> Any:
                return ctx.health.is_online
        else:
            online_of = tree.stored_online(conn)
        try:
            nodes = [] if after is not None else tree.children(conn, by, parent, online_of)
        except tree.NodeNotFound as exc:
            raise ApiError(404, f"{exc}; open the tree from the top (no parent)") from exc
        node = tree.node_info(conn, by, parent) if parent else None
        own = tree.own_channels(conn, by, parent) if parent else None

    if own is None:
        return {"by": by, "node": None, "nodes": nodes, "channels": {"items": [], "next_cursor": None}}
    live = ctx.health is not None
    stmt = own_channels_query(own, status, live)

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        page = stmt if key is None else stmt.where(channels.c.pk > key[0])
        with ctx.engine.connect() as conn:
            return [dict(r) for r in conn.execute(page.limit(n)).mappings()]

    accept = (lambda r: channel_status(ctx, r) == status) if status and live else None
    rows, next_cursor = fill_page(fetch, lambda r: [r["pk"]], accept, after, limit)
    return {"by": by, "node": node, "nodes": nodes,
            "channels": {"items": [channel_item(ctx, r) for r in rows], "next_cursor": next_cursor}}
