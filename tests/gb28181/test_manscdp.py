from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from camgrid.gb28181 import manscdp
from camgrid.gb28181.manscdp import (
    CatalogAssembler,
    ManscdpError,
    catalog_item_to_channel,
    decode_body,
    format_gb_time,
    parse_gb_time,
    parse_manscdp,
)

NVR = "34020000001180000001"

HIKVISION_CATALOG = """<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>34020000001180000001</DeviceID>
<SumNum>2</SumNum>
<DeviceList Num="2">
<Item>
<DeviceID>34020000001310000001</DeviceID>
<Name>东门入口</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>3402000000</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>34020000001180000001</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>ON</Status>
<Longitude>117.283</Longitude>
<Latitude>31.861</Latitude>
<Info>
<PTZType>1</PTZType>
<Resolution>6/4</Resolution>
<DownloadSpeed>1/2/4/8</DownloadSpeed>
</Info>
</Item>
<Item>
<DeviceID>34020000001310000002</DeviceID>
<Name>停车场</Name>
<Manufacturer>Hikvision</Manufacturer>
<Status>OFF</Status>
<Longitude>0.0</Longitude>
<Latitude>0.0</Latitude>
<Info>
<PTZType>3</PTZType>
</Info>
</Item>
</DeviceList>
</Response>
""".encode("gb18030")

DAHUA_UTF8_DECLARED_GB2312 = """<?xml version="1.0" encoding="GB2312" ?>
<Response>
    <CmdType>Catalog</CmdType>
    <SN>5</SN>
    <DeviceID>34020000001320000009</DeviceID>
    <SumNum>1</SumNum>
    <DeviceList Num="1">
        <Item>
            <DeviceID>34020000001320000009</DeviceID>
            <Name>大华 通道一</Name>
            <Manufacturer>Dahua</Manufacturer>
            <Status>ONLINE</Status>
            <IPAddress>192.168.1.108</IPAddress>
            <Port>5060</Port>
        </Item>
    </DeviceList>
</Response>
""".encode("utf-8")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&lol4;</DeviceID></Notify>"""


def _page(sn: int, total: int, ids: list[str], name_suffix: str = "") -> manscdp.ManscdpMessage:
    items = [{"DeviceID": i, "Name": f"cam {i[-3:]}{name_suffix}", "Status": "ON"} for i in ids]
    body = manscdp.encode_manscdp("Response", "Catalog", sn, NVR, [("SumNum", total), ("DeviceList", items)])
    return parse_manscdp(body)


# -- decoding and parsing ------------------------------------------------------------------------

def test_hikvision_catalog_in_gb18030() -> None:
    msg = parse_manscdp(HIKVISION_CATALOG)
    assert (msg.root, msg.cmd_type, msg.sn, msg.device_id) == ("Response", "Catalog", 17430, NVR)
    assert (msg.sum_num, msg.list_num, msg.charset) == (2, 2, "GB18030")
    assert [i["Name"] for i in msg.items] == ["东门入口", "停车场"]
    assert msg.items[0]["PTZType"] == "1" and msg.items[0]["DownloadSpeed"] == "1/2/4/8"
    assert msg.fields == {}


def test_dahua_utf8_declared_gb2312_is_not_garbled() -> None:
    text, charset = decode_body(DAHUA_UTF8_DECLARED_GB2312)
    assert charset == "UTF-8" and "大华 通道一" in text
    msg = parse_manscdp(DAHUA_UTF8_DECLARED_GB2312)
    assert msg.items[0]["Name"] == "大华 通道一"
    assert msg.charset == "UTF-8"


@pytest.mark.parametrize("name", ["东门入口", "中", "通", "通道", "测试通道", "摄像机01", "大门"])
def test_real_gb18030_declared_gb2312_stays_gb18030(name: str) -> None:
    body = f'<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><Name>{name}</Name></Notify>'
    text, charset = decode_body(body.encode("gb18030"))
    assert charset == "GB18030" and name in text
    assert parse_manscdp(body.encode("gb18030")).fields["Name"] == name


def _gb2312_hanzi() -> list[str]:
    out = []
    for lead in range(0xB0, 0xF8):
        for trail in range(0xA1, 0xFF):
            try:
                out.append(bytes([lead, trail]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return out


def test_every_gb2312_hanzi_survives_both_encodings() -> None:
    """UTF-8 is always recognised; GB18030 too once a body holds a few hanzi (a lone hanzi
    with lead byte C2/C3, such as 隆 = C2 A1 = '¡' in UTF-8, is the documented exception)."""
    hanzi = _gb2312_hanzi()
    for i, ch in enumerate(hanzi):
        name = ch + hanzi[(i * 7919) % len(hanzi)] + hanzi[(i * 104729) % len(hanzi)]
        body = f"<Notify><CmdType>Keepalive</CmdType><Name>{name}</Name></Notify>"
        assert decode_body(body.encode("utf-8")) == (body, "UTF-8")
        assert decode_body(body.encode("gb18030")) == (body, "GB18030"), name


def test_ascii_body_reports_declared_charset() -> None:
    assert decode_body(b'<?xml version="1.0" encoding="UTF-8"?><a/>')[1] == "UTF-8"
    assert decode_body(b'<?xml version="1.0" encoding="GB2312"?><a/>')[1] == "GB18030"
    assert decode_body(b"<a/>")[1] == "GB18030"


def test_neither_charset_clean_picks_fewer_replacements() -> None:
    text, charset = decode_body("通道".encode("gb18030") + b"\xff")
    assert charset == "GB18030" and text.startswith("通道")
    text, charset = decode_body("通道".encode("utf-8") + b"\x80")
    assert charset == "UTF-8" and text.startswith("通道")


def test_utf8_bom() -> None:
    body = b"\xef\xbb\xbf" + '<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>3</SN></Notify>'.encode()
    msg = parse_manscdp(body)
    assert (msg.cmd_type, msg.sn, msg.charset) == ("Keepalive", 3, "UTF-8")


def test_bare_ampersand_in_name() -> None:
    body = (b'<?xml version="1.0" encoding="GB2312"?><Response><CmdType>Catalog</CmdType><SN>1</SN>'
            b"<DeviceID>" + NVR.encode() + b"</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\"><Item>"
            b"<DeviceID>34020000001310000001</DeviceID><Name>R&D lab &amp; store &#x4E2D; &nbsp;</Name>"
            b"</Item></DeviceList></Response>")
    assert parse_manscdp(body).items[0]["Name"] == "R&D lab & store \u4e2d &nbsp;"


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(ManscdpError, match="DTD or entity"):
        parse_manscdp(BILLION_LAUGHS)


def test_external_entity_is_refused() -> None:
    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<Notify><CmdType>Keepalive</CmdType><DeviceID>&e;</DeviceID></Notify>")
    with pytest.raises(ManscdpError):
        parse_manscdp(body)


def test_oversized_body_is_refused() -> None:
    body = manscdp.keepalive_notify(NVR, 1) + b" " * (64 * 1024)
    with pytest.raises(ManscdpError, match="limit"):
        parse_manscdp(body)
    assert parse_manscdp(body, max_size=128 * 1024).cmd_type == "Keepalive"


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"),
    (b"   \r\n", "empty"),
    (b"<Notify><CmdType>Keepalive</CmdType><SN>1", "not well-formed"),
    (b"<Foo><CmdType>Keepalive</CmdType></Foo>", "unknown root element <Foo>"),
    (b"<Notify><SN>1</SN></Notify>", "no <CmdType>"),
    (b"<Notify><CmdType> </CmdType></Notify>", "no <CmdType>"),
    ("<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>", "bytes"),
])
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ManscdpError, match=message):
        parse_manscdp(body)  # type: ignore[arg-type]


def test_sn_missing_or_garbage_is_zero() -> None:
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType></Notify>").sn == 0
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType><SN>abc</SN></Notify>").sn == 0
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType><SN> 42 </SN></Notify>").sn == 42
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType><SN>+-5</SN></Notify>").sn == 0
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType><SN>-5</SN></Notify>").sn == 0
    assert parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType></Notify>").device_id == ""


def test_device_quirks() -> None:
    body = (b"<Response>\n<CmdType> Catalog </CmdType><SN>9</SN><DeviceID> " + NVR.encode() + b" </DeviceID>"
            b"<Sumnum>3</Sumnum><DeviceList Num=\"x\"><Item><DeviceID>1</DeviceID></Item></DeviceList>"
            b"</Response>\x00\x00\r\n")
    msg = parse_manscdp(body)
    assert (msg.cmd_type, msg.device_id, msg.sum_num, msg.list_num) == ("Catalog", NVR, 3, None)
    assert "Sumnum" not in msg.fields


def test_control_characters_are_dropped() -> None:
    msg = parse_manscdp(b"<Notify><CmdType>Keepalive</CmdType><Status>O\x01K</Status></Notify>")
    assert msg.fields["Status"] == "OK"


def test_empty_catalog_page() -> None:
    msg = parse_manscdp(manscdp.catalog_response_pages(NVR, 4, [], 10)[0])
    assert (msg.sum_num, msg.list_num, msg.items) == (0, 0, [])
    assert "DeviceList" not in msg.fields


def test_nested_fields_are_dotted() -> None:
    msg = parse_manscdp(manscdp.alarm_notify("34020000001340000001", 8, 1, 5, "2024-05-17T14:07:33",
                                             "motion", 117.2, 31.8, 2))
    assert msg.fields == {"AlarmPriority": "1", "AlarmMethod": "5", "AlarmTime": "2024-05-17T14:07:33",
                          "AlarmDescription": "motion", "Longitude": "117.2", "Latitude": "31.8",
                          "Info.AlarmType": "2"}


def test_device_status_with_alarm_list() -> None:
    body = manscdp.device_status_response(NVR, 3, online=True, status="OK", encode=True, record=False,
                                          device_time=datetime(2024, 5, 17, 6, 7, 33, tzinfo=timezone.utc),
                                          alarm_status=[{"DeviceID": "34020000001340000001", "DutyStatus": "OFFDUTY"}])
    msg = parse_manscdp(body)
    assert msg.fields == {"Result": "OK", "Online": "ONLINE", "Status": "OK", "Encode": "ON", "Record": "OFF",
                          "DeviceTime": "2024-05-17T14:07:33"}
    assert msg.items == [] and msg.lists["Alarmstatus"] == [{"DeviceID": "34020000001340000001", "DutyStatus": "OFFDUTY"}]


# -- builders ------------------------------------------------------------------------------------

def test_encode_declares_gb2312_and_escapes() -> None:
    body = manscdp.encode_manscdp("Notify", "Keepalive", 1, NVR, [("Status", "<OK> & 通")])
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>')
    assert "&lt;OK&gt; &amp; 通".encode("gb18030") in body
    assert parse_manscdp(body).fields["Status"] == "<OK> & 通"
    utf = manscdp.encode_manscdp("Notify", "Keepalive", 1, NVR, [("Status", "通")], charset="UTF-8")
    assert utf.startswith(b'<?xml version="1.0" encoding="UTF-8"?>') and "通".encode() in utf
    with pytest.raises(ValueError, match="element name"):
        manscdp.encode_manscdp("Notify", "Keepalive", 1, NVR, [("Bad Name", "x")])
    with pytest.raises(ValueError, match="root"):
        manscdp.encode_manscdp("Bogus", "Keepalive", 1, NVR, [])


def test_keepalive_and_queries_round_trip() -> None:
    msg = parse_manscdp(manscdp.keepalive_notify(NVR, 12))
    assert (msg.root, msg.cmd_type, msg.sn, msg.device_id, msg.fields) == ("Notify", "Keepalive", 12, NVR, {"Status": "OK"})
    for build, cmd in [(manscdp.catalog_query, "Catalog"), (manscdp.device_info_query, "DeviceInfo"),
                       (manscdp.device_status_query, "DeviceStatus"), (manscdp.catalog_subscribe_query, "Catalog")]:
        msg = parse_manscdp(build(NVR, 5))
        assert (msg.root, msg.cmd_type, msg.sn, msg.device_id) == ("Query", cmd, 5, NVR)


def test_catalog_pages() -> None:
    items = [{"DeviceID": f"340200000013100000{i:02d}", "Name": f"通道{i}", "Status": "ON",
              "Info": {"PTZType": "1"}} for i in range(7)]
    pages = [parse_manscdp(p) for p in manscdp.catalog_response_pages(NVR, 3, items, 3)]
    assert [(p.sum_num, p.list_num) for p in pages] == [(7, 3), (7, 3), (7, 1)]
    assert pages[2].items == [{"DeviceID": "34020000001310000006", "Name": "通道6", "Status": "ON", "PTZType": "1"}]
    with pytest.raises(ValueError, match="page_size"):
        manscdp.catalog_response_pages(NVR, 3, items, 0)


def test_catalog_notify_requires_events() -> None:
    msg = parse_manscdp(manscdp.catalog_notify(NVR, 2, [{"DeviceID": "34020000001310000001", "Event": "OFF"}]))
    assert (msg.root, msg.cmd_type, msg.items) == ("Notify", "Catalog", [{"DeviceID": "34020000001310000001", "Event": "OFF"}])
    with pytest.raises(ValueError, match="no Event"):
        manscdp.catalog_notify(NVR, 2, [{"DeviceID": "34020000001310000001"}])


def test_device_info_response() -> None:
    msg = parse_manscdp(manscdp.device_info_response(NVR, 4, device_name="仓库NVR", manufacturer="Hikvision",
                                                     model="DS-7608", firmware="V4.1", channel=8))
    assert msg.fields == {"DeviceName": "仓库NVR", "Result": "OK", "Manufacturer": "Hikvision", "Model": "DS-7608",
                          "Firmware": "V4.1", "Channel": "8"}


def test_alarm_and_results() -> None:
    msg = parse_manscdp(manscdp.alarm_response(NVR, 9))
    assert (msg.root, msg.cmd_type, msg.fields) == ("Response", "Alarm", {"Result": "OK"})
    msg = parse_manscdp(manscdp.response_result("DeviceControl", NVR, 10, "ERROR"))
    assert (msg.cmd_type, msg.sn, msg.fields) == ("DeviceControl", 10, {"Result": "ERROR"})
    sparse = parse_manscdp(manscdp.alarm_notify(NVR, 1, 2, 6, "2024-05-17T14:07:33", None, None, None, None))
    assert sparse.fields == {"AlarmPriority": "2", "AlarmMethod": "6", "AlarmTime": "2024-05-17T14:07:33"}


def test_record_info() -> None:
    start = datetime(2024, 5, 17, 6, 0, tzinfo=timezone.utc)
    msg = parse_manscdp(manscdp.record_info_query("34020000001310000001", 6, start, "2024-05-17T15:00:00"))
    assert msg.fields == {"StartTime": "2024-05-17T14:00:00", "EndTime": "2024-05-17T15:00:00", "Secrecy": "0", "Type": "all"}
    records = [{"DeviceID": "34020000001310000001", "Name": "cam", "StartTime": "2024-05-17T14:00:00",
                "EndTime": "2024-05-17T14:30:00", "Secrecy": "0", "Type": "time"} for _ in range(3)]
    pages = [parse_manscdp(p) for p in manscdp.record_info_response_pages("34020000001310000001", 6, records, 2, name="cam")]
    assert [(p.sum_num, p.list_num, len(p.items)) for p in pages] == [(3, 2, 2), (3, 1, 1)]
    assert pages[0].fields == {"Name": "cam"} and pages[0].items[0]["Type"] == "time"


def test_device_control_builders() -> None:
    cases = [
        (manscdp.device_control_ptz(NVR, 1, "a50f0101808000b6"), {"PTZCmd": "A50F0101808000B6", "Info.ControlPriority": "5"}),
        (manscdp.device_control_teleboot(NVR, 1), {"TeleBoot": "Boot"}),
        (manscdp.device_control_record(NVR, 1, True), {"RecordCmd": "Record"}),
        (manscdp.device_control_record(NVR, 1, False), {"RecordCmd": "StopRecord"}),
        (manscdp.device_control_guard(NVR, 1, True), {"GuardCmd": "SetGuard"}),
        (manscdp.device_control_guard(NVR, 1, False), {"GuardCmd": "ResetGuard"}),
        (manscdp.device_control_alarm_reset(NVR, 1), {"AlarmCmd": "ResetAlarm"}),
    ]
    for body, fields in cases:
        msg = parse_manscdp(body)
        assert (msg.root, msg.cmd_type, msg.fields) == ("Control", "DeviceControl", fields)
    with pytest.raises(ValueError, match="16 hex"):
        manscdp.device_control_ptz(NVR, 1, "A50F01</PTZCmd>")


def test_device_config_basic() -> None:
    msg = parse_manscdp(manscdp.device_config_basic(NVR, 2, name="新名字", heartbeat_interval=30))
    assert (msg.cmd_type, msg.fields) == ("DeviceConfig", {"BasicParam.Name": "新名字", "BasicParam.HeartBeatInterval": "30"})
    with pytest.raises(ValueError, match="at least one"):
        manscdp.device_config_basic(NVR, 2)


# -- times ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["2024-05-17T14:07:33", "2024-05-17 14:07:33", "2024-05-17T14:07:33.232",
                                  " 2024-5-17T14:07:33 "])
def test_parse_gb_time_variants(text: str) -> None:
    dt = parse_gb_time(text)
    assert dt.tzinfo is timezone.utc
    assert dt.replace(microsecond=0) == datetime(2024, 5, 17, 6, 7, 33, tzinfo=timezone.utc)


def test_parse_gb_time_zones() -> None:
    assert parse_gb_time("2024-05-17T14:07:33.5").microsecond == 500000
    assert parse_gb_time("2024-05-17T14:07:33Z") == datetime(2024, 5, 17, 14, 7, 33, tzinfo=timezone.utc)
    assert parse_gb_time("2024-05-17T14:07:33+02:00").hour == 12
    assert parse_gb_time("2024-05-17T14:07:33", ZoneInfo("Europe/Berlin")).hour == 12
    assert parse_gb_time("2024-05-17") == datetime(2024, 5, 16, 16, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00", "2024-02-30T00:00:00", "0000-01-01T00:00:00",
                                  "２０２４-05-17T14:07:33"])
def test_parse_gb_time_garbage(text: str) -> None:
    with pytest.raises(ManscdpError):
        parse_gb_time(text)


def test_format_gb_time() -> None:
    dt = datetime(2024, 5, 17, 6, 7, 33, 232000, tzinfo=timezone.utc)
    assert format_gb_time(dt) == "2024-05-17T14:07:33"
    assert format_gb_time(dt, millis=True) == "2024-05-17T14:07:33.232"
    assert format_gb_time(dt, ZoneInfo("UTC")) == "2024-05-17T06:07:33"
    assert parse_gb_time(format_gb_time(dt)) == dt.replace(microsecond=0)
    with pytest.raises(ValueError, match="naive"):
        format_gb_time(datetime(2024, 5, 17))
    assert format_gb_time(datetime(2024, 5, 17, 14, tzinfo=timezone(timedelta(hours=8)))) == "2024-05-17T14:00:00"


# -- catalog → channels --------------------------------------------------------------------------

def test_catalog_item_to_channel_hikvision() -> None:
    first, second = parse_manscdp(HIKVISION_CATALOG).items
    row = catalog_item_to_channel(first)
    assert row == {
        "id": "34020000001310000001", "name": "东门入口", "manufacturer": "Hikvision", "model": "IP Camera",
        "owner": "Owner", "civil_code": "3402000000", "block": "", "address": "Address", "parental": 0,
        "parent_id": NVR, "business_group_id": None, "safety_way": 0, "register_way": 1, "secrecy": 0,
        "ip_address": None, "port": None, "status": "online", "longitude": 117.283, "latitude": 31.861,
        "ptz_type": 1, "resolution": "6/4", "type_code": "131", "extra": {"DownloadSpeed": "1/2/4/8"},
    }
    row2 = catalog_item_to_channel(second)
    assert (row2["status"], row2["longitude"], row2["latitude"], row2["ptz_type"]) == ("offline", None, None, 3)


def test_catalog_item_to_channel_tolerates_garbage() -> None:
    row = catalog_item_to_channel({
        "DeviceID": "123", "Parental": "yes", "Port": "70000", "SafetyWay": "x", "Longitude": "nan",
        "Latitude": "95", "Status": "ok", "Password": "secret", "Event": "ADD", "CertNum": "9",
        "Name": "x" * 500, "ParentID": "3" * 25, "Info": {"PTZType": "dome", "Resolution": ""},
    })
    assert (row["id"], row["parental"], row["port"], row["safety_way"]) == ("123", 0, None, None)
    assert (row["longitude"], row["latitude"], row["status"], row["type_code"]) == (None, None, "online", "")
    assert (row["ptz_type"], row["resolution"], row["parent_id"], len(row["name"])) == (None, None, None, 200)
    assert row["extra"] == {"CertNum": "9"}
    assert catalog_item_to_channel({})["status"] == "offline"


def test_dahua_item_to_channel() -> None:
    row = catalog_item_to_channel(parse_manscdp(DAHUA_UTF8_DECLARED_GB2312).items[0])
    assert (row["name"], row["status"], row["ip_address"], row["port"], row["type_code"]) == (
        "大华 通道一", "online", "192.168.1.108", 5060, "132")


# -- paged catalog assembly ----------------------------------------------------------------------

def test_three_pages_out_of_order_with_duplicate() -> None:
    ids = [f"340200000013100000{i:02d}" for i in range(1, 8)]
    asm = CatalogAssembler(NVR, 100, started_at=0.0)
    asm.feed(_page(100, 7, ids[6:7]), now=1.0)          # page 3 first
    asm.feed(_page(100, 7, ids[0:3]), now=1.1)          # page 1
    assert not asm.complete and asm.received == 4
    asm.feed(_page(100, 7, ids[0:1], " (again)"), now=1.2)  # a retransmitted item: last wins
    assert asm.received == 4 and not asm.complete
    asm.feed(_page(4711, 7, ids[3:6]), now=1.3)         # page 2 with the device's own SN
    assert asm.complete
    items, partial, expected = asm.result()
    assert (partial, expected, len(items)) == (False, 7, 7)
    assert sorted(i["DeviceID"] for i in items) == ids
    assert next(i for i in items if i["DeviceID"] == ids[0])["Name"].endswith("(again)")
    assert asm.sns == [100, 4711] and asm.pages == 4
    assert not asm.timed_out(100.0, 5.0)


def test_timed_out_partial_catalog() -> None:
    ids = [f"340200000013100000{i:02d}" for i in range(1, 6)]
    asm = CatalogAssembler(NVR, 5, started_at=10.0)
    assert not asm.timed_out(14.0, 5.0) and asm.timed_out(15.0, 5.0)  # no page at all yet
    assert asm.result() == ([], True, None)
    asm.feed(_page(5, 5, ids[:2]), now=12.0)
    asm.feed(_page(5, 5, ids[2:3]), now=13.0)
    assert not asm.timed_out(17.9, 5.0)
    assert asm.timed_out(18.0, 5.0)
    items, partial, expected = asm.result()
    assert (len(items), partial, expected) == (3, True, 5)


def test_empty_catalog_is_complete_and_itemless_ids_dropped() -> None:
    asm = CatalogAssembler(NVR, 1, started_at=0.0)
    asm.feed(parse_manscdp(manscdp.catalog_response_pages(NVR, 1, [], 10)[0]), now=0.5)
    assert asm.complete and asm.result() == ([], False, 0)
    asm2 = CatalogAssembler(NVR, 1, started_at=0.0)
    asm2.feed(_page(1, 1, [""]), now=0.1)
    assert asm2.dropped == 1 and not asm2.complete


def test_smaller_sumnum_never_ends_early() -> None:
    asm = CatalogAssembler(NVR, 1, started_at=0.0)
    asm.feed(_page(1, 3, ["34020000001310000001"]), now=0.1)
    asm.feed(_page(1, 1, ["34020000001310000002"]), now=0.2)
    assert asm.expected == 3 and not asm.complete


# -- the keepalive fast path ---------------------------------------------------------------------
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from camgrid.gb28181.manscdp import codec  # noqa: E402

_space = st.sampled_from(["", "\r\n", "\n", " ", "\r\n  ", "\t"])


@hsettings(max_examples=300, deadline=None)
@given(decl=st.sampled_from(["", '<?xml version="1.0" encoding="GB2312"?>', '<?xml version="1.0" encoding="UTF-8"?>',
                             "<?xml version='1.0'?>", '<?xml version="1.0" encoding="gb18030" standalone="yes"?>']),
       sn=st.integers(min_value=0, max_value=10**16 - 1), device=st.from_regex(r"[0-9A-Za-z]{1,32}", fullmatch=True),
       status=st.sampled_from(["OK", "ERROR", "ok", "Online"]), gaps=st.lists(_space, min_size=8, max_size=8),
       tail=st.sampled_from(["", "\r\n", "\x00\x00", " \r\n"]), sn_pad=st.sampled_from(["", " ", "00"]))
def test_keepalive_fast_path_equals_the_xml_parse(decl, sn, device, status, gaps, tail, sn_pad):
    g = gaps
    body = (f"{g[0]}{decl}{g[1]}<Notify>{g[2]}<CmdType>Keepalive</CmdType>{g[3]}<SN>{sn_pad}{sn}</SN>{g[4]}"
            f"<DeviceID>{device}</DeviceID>{g[5]}<Status>{status}</Status>{g[6]}</Notify>{g[7]}{tail}").encode()
    fast = codec._plain_keepalive(body)
    assert fast is not None, body
    with pytest.MonkeyPatch.context() as m:
        m.setattr(codec, "_plain_keepalive", lambda data: None)
        slow = manscdp.parse_manscdp(body)
    assert fast == slow


@pytest.mark.parametrize("body", [
    b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status>"
    b"<Info><DeviceID>34020000001310000001</DeviceID></Info></Notify>",  # fault list: needs the XML parser
    b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>3402&amp;</DeviceID><Status>OK</Status></Notify>",
    b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status>",
    b'<!DOCTYPE x [<!ENTITY a "b">]><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID><Status>OK</Status></Notify>',
])
def test_other_keepalive_shapes_take_the_xml_path(body):
    assert codec._plain_keepalive(body) is None
