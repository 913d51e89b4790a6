"""Export bundles: MP4s that decode, a signed manifest, verification that names what changed,
and the node route with progress and signed downloads; `camgrid export verify` exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime

import av
import httpx
import pytest

from camgrid.config import MediaSettings
from camgrid.media import tokens
from camgrid.media.export import ExportError, load_or_create_key, verify_bundle, write_bundle
from camgrid.media.node import MediaNode
from recording_helpers import CHANNEL, at

SECRET = "export-secret-0123456789abcdef"


async def bundle(recorded, tmp_path, key, start=0, end=30):
    engine, root = recorded
    out = tmp_path / "bundle"
    manifest = await write_bundle(engine, root, out, channel_id=CHANNEL, start=at(start), end=at(end),
                                  exported_by="alice", reason="case 2026-114: collision at the gate", export_id="e1",
                                  key=key)
    return out, manifest


async def test_a_bundle_decodes_and_verifies(recorded, tmp_path):
    key = load_or_create_key(tmp_path / "keys" / "export.key")
    assert (tmp_path / "keys" / "export.key").stat().st_mode & 0o777 == 0o600
    progress = []
    engine, root = recorded
    out = tmp_path / "b"
    manifest = await write_bundle(engine, root, out, channel_id=CHANNEL, start=at(1), end=at(30), exported_by="alice",
                                  reason="case 114", export_id="e1", key=key, progress=progress.append)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    [entry] = manifest["files"]
    assert (entry["codec"], entry["width"], entry["height"]) == ("h264", 160, 120)
    walls = [datetime.fromisoformat(t["wall"]) for t in entry["timeline"]]
    assert abs((walls[2] - at(14)).total_seconds()) < 0.01  # the gap is listed
    with av.open(str(out / entry["name"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 200 - 25  # from the key frame at 1 s
    assert verify_bundle(out, key) == []
    assert verify_bundle(out, None) == []


async def test_verification_names_every_alteration(recorded, tmp_path):
    key = load_or_create_key(tmp_path / "export.key")
    out, manifest = await bundle(recorded, tmp_path, key)
    name = manifest["files"][0]["name"]
    data = bytearray((out / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / name).write_bytes(bytes(data))
    (out / "notes.txt").write_text("added later")
    assert verify_bundle(out, key) == [f"{name}: altered (SHA-256 differs)", "notes.txt: not part of the export"]
    doc = json.loads((out / "manifest.json").read_text())
    doc["reason"] = "something else"
    (out / "manifest.json").write_text(json.dumps(doc))
    problems = verify_bundle(out, key)
    assert any("signature does not match" in p for p in problems)
    assert not any("signature" in p for p in verify_bundle(out, None))  # without the key only the files are checked
    (out / name).unlink()
    assert f"{name}: missing" in verify_bundle(out, key)


async def test_an_empty_range_is_refused(recorded, tmp_path):
    with pytest.raises(ExportError, match="nothing of channel"):
        await bundle(recorded, tmp_path, b"k" * 32, start=100, end=200)


async def test_the_node_exports_with_progress_and_signed_downloads_and_the_cli_verifies(recorded, tmp_path):
    engine, root = recorded
    key_file = tmp_path / "data" / "keys" / "export.key"
    key = load_or_create_key(key_file)
    node = MediaNode(MediaSettings(http_port=0, rtp_ports=(0, 0), host="127.0.0.1"), SECRET, node_id="n1",
                     engine=engine, recordings_dir=root, export_key=key)
    await node.start()
    try:
        async with httpx.AsyncClient(base_url=node.url, headers={"Authorization": f"Bearer {SECRET}"}) as c:
            resp = await c.post("/node/v1/exports", json={"export_id": "export-0001", "channel_id": CHANNEL,
                                                         "from": at(0).isoformat(), "to": at(30).isoformat(),
                                                         "exported_by": "alice", "reason": "case 114"})
            assert resp.status_code == 202
            for _ in range(100):
                job = (await c.get("/node/v1/exports/export-0001")).json()
                if job["state"] != "running":
                    break
                await asyncio.sleep(0.05)
            assert job["state"] == "done" and job["progress"] == 1.0
            names = [f["name"] for f in job["files"]]
            token = tokens.issue(SECRET, "export:export-0001", "alice", 30)
            download = tmp_path / "downloaded"
            download.mkdir()
            for name in names:
                got = await c.get(f"/exports/export-0001/{name}", params={"token": token})
                assert got.status_code == 200
                (download / name).write_bytes(got.content)
            assert (await c.get(f"/exports/export-0001/{names[0]}", params={"token": "forged.sig"})).status_code == 401
            assert (await c.get("/exports/export-0001/../../rec-index.db", params={"token": token})).status_code == 404
    finally:
        await node.stop()
    cli = [sys.executable, "-m", "camgrid", "export", "verify", str(download), "--data-dir", str(tmp_path / "data")]
    ok = subprocess.run(cli, capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
    (download / names[0]).write_bytes(b"tampered")
    bad = subprocess.run(cli, capture_output=True, text=True)
    assert bad.returncode == 1 and f"ALTERED  {names[0]}: altered" in bad.stdout


async def test_a_finished_bundle_is_found_again_after_the_node_restarts(recorded, tmp_path):
    engine, root = recorded
    key = load_or_create_key(tmp_path / "export.key")
    settings = MediaSettings(http_port=0, rtp_ports=(0, 0), host="127.0.0.1")
    node = MediaNode(settings, SECRET, node_id="n1", engine=engine, recordings_dir=root, export_key=key)
    await node.start()
    try:
        node.start_export(export_id="e0000001", channel_id=CHANNEL, start=at(0), end=at(5), exported_by="a", reason="r")
        for _ in range(100):
            if node.exports["e0000001"]["state"] != "running":
                break
            await asyncio.sleep(0.05)
    finally:
        await node.stop()
    again = MediaNode(settings, SECRET, node_id="n1", engine=engine, recordings_dir=root, export_key=key)
    job = again.export_job("e0000001")
    assert job["state"] == "done" and again.export_file("e0000001", "manifest.json").is_file()
    assert again.export_job("../e0000001") is None and again.export_job("nope0000") is None
