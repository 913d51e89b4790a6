"""Export bundles: a time range of recorded footage as MP4 files with a signed manifest.

A bundle is a directory: one MP4 per picture format (usually one; a device that changed
resolution mid-range gives two), and manifest.json naming the channel, the range, who exported
it and why, and for every file its size and SHA-256, plus a timeline that maps each file's
media time back to wall-clock time (gaps in the recording are joined in the file and listed
there). The manifest is signed with HMAC-SHA256 under the platform's export key, so that
`camgrid export verify DIR` names any file (or manifest field) altered after export.

The MP4s are fragmented MP4 (init segment + fragments), which players and FFmpeg read as any
MP4. Blocking file I/O is done in worker threads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from camgrid.governance import keys
from camgrid.media.playback import read_recorded

FORMAT = "camgrid-export/1"
MANIFEST = "manifest.json"


class ExportError(ValueError):
    pass


def load_or_create_key(path: Path) -> bytes:
    """The export signing key (32 random bytes, owner-only), created on first use."""
    try:
        return keys.load_or_create(path, what="an export key")
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


@dataclass
class _OpenFile:
    name: str
    handle: Any
    sha: Any = field(default_factory=hashlib.sha256)
    bytes: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    media_start: float = 0.0
    media_end: float = 0.0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha.update(data)
        self.bytes += len(data)


async def write_bundle(engine: Engine, root: Path, out_dir: Path, *, channel_id: str, start: datetime, end: datetime,
                       exported_by: str, reason: str, export_id: str, key: bytes,
                       progress: Callable[[float], None] = lambda fraction: None) -> dict[str, Any]:
    """Write the bundle into `out_dir` (which must not exist yet); returns the manifest."""
    out_dir.mkdir(parents=True)
    files: list[_OpenFile] = []
    current: _OpenFile | None = None
    missing: list[dict[str, Any]] = []
    total = (end - start).total_seconds()
    try:
        async for item in read_recorded(engine, root, channel_id, start, end):
            if item.kind == "init":
                if current is not None:
                    current.handle.close()
                current = _OpenFile(f"footage-{len(files) + 1}.mp4", open(out_dir / f"footage-{len(files) + 1}.mp4", "wb"),
                                    info=item.info or {}, media_start=item.media_s)
                files.append(current)
                current.write(item.data)
            elif item.kind == "segment" and current is not None:
                current.timeline.append({"media_s": round(item.media_s - current.media_start, 3), "wall": item.wall.isoformat()})
                if item.wall is not None and total > 0:
                    progress(min(1.0, max(0.0, (item.wall - start).total_seconds() / total)))
            elif item.kind == "fragment" and current is not None:
                current.write(item.data)
                current.media_end = item.media_s
            elif item.kind == "missing":
                missing.append(item.info or {})
    finally:
        if current is not None:
            current.handle.close()
    if not files:
        raise ExportError(f"nothing of channel {channel_id} is recorded between {start.isoformat()} and {end.isoformat()}")
    for f in files:
        with open(out_dir / f.name, "rb") as handle:
            os.fsync(handle.fileno())
    manifest = {
        "format": FORMAT, "export_id": export_id, "channel_id": channel_id,
        "from": start.isoformat(), "to": end.isoformat(), "exported_by": exported_by, "reason": reason,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "files": [{"name": f.name, "bytes": f.bytes, "sha256": f.sha.hexdigest(), **f.info, "timeline": f.timeline}
                  for f in files],
        "missing_segments": missing,
    }
    manifest["signature"] = {"alg": "HMAC-SHA256", "value": sign(manifest, key)}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    progress(1.0)
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_bundle(directory: Path, key: bytes | None) -> list[str]:
    """What is wrong with a bundle, one line each; an empty list means intact. Without the key,
    the files are checked against the manifest but the manifest itself cannot be."""
    problems: list[str] = []
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{MANIFEST} is missing: this is not an export bundle, or it was removed"]
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{MANIFEST} is not valid JSON ({exc}): it was altered"]
    if manifest.get("format") != FORMAT:
        problems.append(f"{MANIFEST}: unknown format {manifest.get('format')!r}")
    if key is not None:
        given = (manifest.get("signature") or {}).get("value", "")
        if not hmac.compare_digest(str(given), sign(manifest, key)):
            problems.append(f"{MANIFEST}: the signature does not match: the manifest was altered or signed with another key")
    listed = set()
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        listed.add(name)
        if "/" in name or name.startswith("."):
            problems.append(f"{name}: not a plain file name")
            continue
        file = directory / name
        if not file.is_file():
            problems.append(f"{name}: missing")
            continue
        if file.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: altered (size {file.stat().st_size} bytes, exported {entry.get('bytes')})")
        elif _sha256(file) != entry.get("sha256"):
            problems.append(f"{name}: altered (SHA-256 differs)")
    for extra in sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in listed and p.name != MANIFEST):
        problems.append(f"{extra}: not part of the export")
    return problems
