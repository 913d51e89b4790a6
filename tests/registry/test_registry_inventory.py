"""Inventory import/export: CSV (several encodings) and XLSX, row-level refusals, 100k rows."""

from __future__ import annotations

import csv
import time

import pytest
from openpyxl import Workbook, load_workbook

from camgrid.registry.channels import apply_catalog, get_channels
from camgrid.registry.devices import add_device, get_device, get_device_auth
from camgrid.registry.inventory import InventoryError, export_inventory, import_inventory
from camgrid.registry.secrets import ha1_md5

REALM = "3402000000"


def dev(n: int) -> str:
    return f"340200000013200{n:05d}"


def write_csv(path, text: str, encoding: str = "utf-8") -> None:
    path.write_bytes(text.encode(encoding))


def test_bad_rows_are_refused_and_good_rows_land(engine, tmp_path):
    f = tmp_path / "inv.csv"
    write_csv(f, "\n".join([
        "ID,Password,Name,Longitude,Latitude,Point_Class,Kind",
        f"{dev(1)},good-Secret-1,Gate 1,117.2,31.8,1,ipc",
        f"3402000000132000000X,good-Secret-2,bad id,,,,",
        f"{dev(3)},12345678,weak,,,,",
        f"{dev(4)},,no password,,,,",
        f"{dev(1)},good-Secret-9,duplicate,,,,",
        f"{dev(6)},good-Secret-6,bad lon,190,,,",
        f"{dev(7)},good-Secret-7,bad class,,,3,",
        "",
        f"{dev(8)},good-Secret-8,\"Gate, 8\",,not-a-number,,",
        f"{dev(9)},good-Secret-9,Gate 9,,,2,",
    ]) + "\n")
    report = import_inventory(engine, f, REALM)
    assert (report.accepted, report.updated, report.added) == (2, 0, 2)
    assert [(r.line, r.id) for r in report.refused] == [
        (3, "3402000000132000000X"), (4, dev(3)), (6, dev(1)), (7, dev(6)), (8, dev(7)), (10, dev(8)), (5, dev(4))]
    reasons = {r.line: r.reason for r in report.refused}
    assert "digits" in reasons[3] and "default" in reasons[4] and "line 2" in reasons[6]
    assert "longitude" in reasons[7] and "point_class" in reasons[8] and "latitude" in reasons[10]
    assert "needs a password" in reasons[5]
    assert report.ignored_columns == ["Kind"]
    text = report.to_text()
    assert "accepted 2" in text and "line 5" in text and "refused 7" in text
    d1 = get_device(engine, dev(1))
    assert (d1["name"], d1["longitude"], d1["latitude"], d1["point_class"]) == ("Gate 1", 117.2, 31.8, 1)
    assert get_device_auth(engine, dev(1)).ha1_md5 == ha1_md5(dev(1), REALM, "good-Secret-1")
    assert get_device(engine, dev(9))["point_class"] == 2
    assert get_device(engine, dev(3)) is None and get_device(engine, dev(4)) is None


def test_existing_devices_are_updated(engine, tmp_path):
    add_device(engine, dev(1), "first-Secret-1", REALM, name="old name")
    add_device(engine, dev(2), "first-Secret-2", REALM, name="keep me")
    f = tmp_path / "upd.csv"
    write_csv(f, f"id,password,name,address\n{dev(1)},,new name,Main St 1\n{dev(2)},second-Secret-2,,\n")
    report = import_inventory(engine, f, REALM)
    assert (report.accepted, report.updated, report.refused) == (2, 2, [])
    d1, d2 = get_device(engine, dev(1)), get_device(engine, dev(2))
    assert (d1["name"], d1["address"]) == ("new name", "Main St 1")
    assert get_device_auth(engine, dev(1)).ha1_md5 == ha1_md5(dev(1), REALM, "first-Secret-1")  # untouched
    assert d2["name"] == "keep me"  # an empty cell leaves the value alone
    assert get_device_auth(engine, dev(2)).ha1_md5 == ha1_md5(dev(2), REALM, "second-Secret-2")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_encodings_and_chinese_headers(engine, tmp_path, encoding):
    f = tmp_path / "cn.csv"
    write_csv(f, f"国标编码,密码,设备名称,行政区划,安装地址\n{dev(1)},good-Secret-1,东门摄像机,340200,合肥市蜀山区\n", encoding)
    report = import_inventory(engine, f, REALM)
    assert report.accepted == 1 and not report.refused
    d = get_device(engine, dev(1))
    assert (d["name"], d["civil_code"], d["address"]) == ("东门摄像机", "340200", "合肥市蜀山区")


def test_xlsx_import(engine, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "password", "name", "latitude"])
    ws.append([dev(1), "good-Secret-1", "Gate 1", 31.5])
    # XLSX keeps numbers as doubles: a 20-digit ID typed as a number has lost its last digits.
    ws.append([34020000001320000002, "good-Secret-2", "numeric id", None])
    ws.append([dev(4), 12345678, "weak numeric password", None])
    ws.append([dev(5), "good-Secret-5", "Gate 5", "31.25"])
    f = tmp_path / "inv.xlsx"
    wb.save(f)
    report = import_inventory(engine, f, REALM)
    assert report.accepted == 2
    assert [(r.line, r.reason.split(";")[0]) for r in report.refused] == [
        (3, "the ID is stored as a number and has lost digits"), (4, "the device secret is a well-known default")]
    assert get_device(engine, dev(1))["latitude"] == 31.5 and get_device(engine, dev(5))["latitude"] == 31.25


def test_whole_file_errors(engine, tmp_path):
    f = tmp_path / "noid.csv"
    write_csv(f, "name,password\nx,good-Secret-1\n")
    with pytest.raises(InventoryError, match="no 'id' column"):
        import_inventory(engine, f, REALM)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InventoryError, match="empty"):
        import_inventory(engine, empty, REALM)
    with pytest.raises(InventoryError, match="unsupported"):
        import_inventory(engine, tmp_path / "inv.json", REALM)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_has_no_secrets_and_round_trips(engine, tmp_path, suffix):
    add_device(engine, dev(1), "export-Secret-1", REALM, name="=HYPERLINK(\"http://x\")")
    add_device(engine, dev(2), "export-Secret-2", REALM, name="南门")
    apply_catalog(engine, dev(1), [{"id": "34020000001310000001", "name": "-cam", "status": "online"},
                                   {"id": "34020000001310000002", "name": "cam 2"}], partial=False)
    target = tmp_path / f"out.{suffix}"
    result = export_inventory(engine, target)
    assert (result.devices, result.channels) == (2, 2)
    secret_values = {get_device_auth(engine, d).ha1_md5 for d in (dev(1), dev(2))} | {"export-Secret-1"}
    if suffix == "csv":
        chan_file = tmp_path / "out-channels.csv"
        assert result.paths == [target, chan_file]
        content = target.read_text("utf-8-sig") + chan_file.read_text("utf-8-sig")
        rows = list(csv.DictReader(chan_file.open(encoding="utf-8-sig")))
        assert [r["id"] for r in rows] == ["34020000001310000001", "34020000001310000002"]
        assert rows[0]["name"] == "'-cam"  # not a formula when opened in a spreadsheet
    else:
        wb = load_workbook(target)
        assert wb.sheetnames == ["devices", "channels"]
        assert wb["devices"]["B2"].data_type == "s"  # the =HYPERLINK name stays text
        assert wb["channels"].max_row == 3
        content = "\n".join(str(c) for ws in wb for row in ws.iter_rows(values_only=True) for c in row)
    assert not any(s in content for s in secret_values)
    assert "ha1" not in content and "password" not in content
    # The export imports back as updates of the same devices, unchanged.
    report = import_inventory(engine, target, REALM)
    assert (report.accepted, report.updated, report.refused) == (2, 2, [])
    assert get_device(engine, dev(1))["name"] == "=HYPERLINK(\"http://x\")" and get_device(engine, dev(2))["name"] == "南门"
    assert len(get_channels(engine, dev(1))) == 2


def test_100k_rows(engine, tmp_path):
    n = 100_000
    f = tmp_path / "big.csv"
    lines = ["id,password,name,longitude,latitude"]
    lines += [f"3402{i:016d},secret-{i:08d},point {i},117.{i % 1000},31.{i % 997}" for i in range(n)]
    lines.append("3402000000000000000,secret-short-id,bad,,")  # one bad row at the end
    write_csv(f, "\n".join(lines) + "\n")
    t0 = time.perf_counter()
    report = import_inventory(engine, f, REALM)
    t1 = time.perf_counter()
    assert report.accepted == n and [r.line for r in report.refused] == [n + 2]
    # Again with new names and no passwords: 100k updates.
    write_csv(f, "id,name\n" + "\n".join(f"3402{i:016d},renamed {i}" for i in range(n)) + "\n")
    t2 = time.perf_counter()
    report = import_inventory(engine, f, REALM)
    t3 = time.perf_counter()
    assert report.updated == n and not report.refused
    assert export_inventory(engine, tmp_path / "big-out.csv").devices == n  # streamed (server-side cursor on PostgreSQL)
    t4 = time.perf_counter()
    if engine.dialect.name == "sqlite":  # the XLSX writer does not depend on the database; once is enough
        assert export_inventory(engine, tmp_path / "big.xlsx").devices == n
    t5 = time.perf_counter()
    print(f"\n[{engine.dialect.name}] 100k rows: import new {t1 - t0:.1f}s, import updates {t3 - t2:.1f}s, "
          f"export CSV {t4 - t3:.1f}s, export XLSX {t5 - t4:.1f}s")
    assert get_device(engine, "34020000000000099999")["name"] == "renamed 99999"
