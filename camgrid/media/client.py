"""The signaling side's handle on a media node: its control API over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from camgrid.media import tokens


class NodeError(RuntimeError):
    """A media node refused a call or could not be reached; the message says which node and why."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class NodeClient:
    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s,
                                       headers={"Authorization": f"Bearer {secret}"})
        self.last_load: dict[str, Any] | None = None
        self.reachable = True

    def moved(self, url: str) -> None:
        """The node came back at another address (a restarted embedded node on a free port)."""
        self.url = url.rstrip("/")
        self._http.base_url = self.url
        self.last_load = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.reachable = False
            raise NodeError(f"media node {self.url} cannot be reached: {exc.__class__.__name__} {exc}") from None
        self.reachable = True
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise NodeError(f"media node {self.url}: {detail}", response.status_code)
        return response.json()

    async def load(self) -> dict[str, Any]:
        self.last_load = await self._call("GET", "/node/v1/load")
        return self.last_load

    async def open_stream(self, stream_id: str, *, transport: str, ssrc: int | None, ssrc_strict: bool,
                          record: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._call("POST", "/node/v1/streams", json={
            "stream_id": stream_id, "transport": transport, "ssrc": ssrc, "ssrc_strict": ssrc_strict, "record": record})

    async def answer(self, stream_id: str, *, ssrc: int | None, host: str | None = None, port: int | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/node/v1/streams/{stream_id}/answer", json={"ssrc": ssrc, "host": host, "port": port})

    async def streams(self) -> dict[str, Any]:
        return await self._call("GET", "/node/v1/streams")

    async def record(self, stream_id: str, *, channel_id: str, device_id: str, mode: str = "continuous",
                     media_origin: str | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/node/v1/streams/{stream_id}/record", json={
            "channel_id": channel_id, "device_id": device_id, "mode": mode, "media_origin": media_origin})

    async def trigger(self, stream_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/node/v1/streams/{stream_id}/trigger")

    async def stop_record(self, stream_id: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/node/v1/streams/{stream_id}/record")

    async def mark_position(self, stream_id: str, wall: datetime, at: str) -> int:
        """A device playback's footage is from `wall` at its start (`at` "start"), or from the
        next key frame on (`at` "seek", just before the seek goes to the device; then
        `seek_answered`). The node tells the viewers. The mark's number."""
        answer = await self._call("POST", f"/node/v1/streams/{stream_id}/position", json={"wall": wall.isoformat(), "at": at})
        return answer["mark"]

    async def seek_answered(self, stream_id: str, mark: int, accepted: bool) -> None:
        await self._call("PUT", f"/node/v1/streams/{stream_id}/position/{mark}", json={"accepted": accepted})

    async def stream(self, stream_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/node/v1/streams/{stream_id}")

    async def close_stream(self, stream_id: str) -> dict[str, Any] | None:
        try:
            return await self._call("DELETE", f"/node/v1/streams/{stream_id}")
        except NodeError as exc:
            if exc.status == 404:
                return None
            raise

    async def export(self, **body: Any) -> dict[str, Any]:
        return await self._call("POST", "/node/v1/exports", json=body)

    async def export_status(self, export_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/node/v1/exports/{export_id}")

    def export_url(self, export_id: str, name: str, user: str, ttl_s: float) -> str:
        token = tokens.issue(self.secret, f"export:{export_id}", user, ttl_s)
        public = (self.last_load or {}).get("public_url") or self.url
        return f"{public}/exports/{export_id}/{name}?{urlencode({'token': token})}"

    def playback_url(self, channel_id: str, user: str, ttl_s: float, *, start: str, end: str | None, speed: float) -> str:
        """The WebSocket URL of recorded footage from `start`; signed for this channel and user."""
        token = tokens.issue(self.secret, f"playback:{channel_id}", user, ttl_s)
        query = urlencode({"token": token, "from": start, **({"to": end} if end else {}), "speed": speed})
        return f"{self._ws_base()}/playback/{channel_id}?{query}"

    def _ws_base(self) -> str:
        public = (self.last_load or {}).get("public_url") or self.url
        return "ws" + public[4:] if public.startswith("http") else public

    def hls_url(self, stream_id: str, user: str, ttl_s: float) -> str:
        """The HLS playlist of a running stream (fallback for players without MSE)."""
        token = tokens.issue(self.secret, stream_id, user, ttl_s)
        public = (self.last_load or {}).get("public_url") or self.url
        return f"{public}/hls/{stream_id}/index.m3u8?{urlencode({'token': token})}"

    def internal_live_url(self, stream_id: str, user: str, ttl_s: float) -> str:
        """The same WebSocket, at the address the platform reaches the node by (not the public one)."""
        token = tokens.issue(self.secret, stream_id, user, ttl_s)
        return f"ws{self.url[4:]}/live/{stream_id}?token={token}"

    def live_url(self, stream_id: str, user: str, ttl_s: float) -> str:
        """The WebSocket URL a browser opens to watch; signed for this stream and user."""
        token = tokens.issue(self.secret, stream_id, user, ttl_s)
        return f"{self._ws_base()}/live/{stream_id}?token={token}"
