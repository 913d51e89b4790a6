"""Random and mutated input into every pure parser: only the module's own error may escape."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camgrid.gb28181 import manscdp, ptz
from camgrid.gb28181.ids import InvalidId, parse_civil_code, parse_id
from camgrid.gb28181.manscdp import CatalogAssembler, ManscdpError, catalog_item_to_channel, parse_gb_time, parse_manscdp
from camgrid.gb28181.sdp import SdpError, build_sdp, parse_sdp

DEVICE = "34020000001180000001"
MANSCDP_SEEDS = [
    manscdp.keepalive_notify(DEVICE, 1),
    manscdp.catalog_response_pages(DEVICE, 2, [{"DeviceID": "34020000001310000001", "Name": "东门 & 西门",
                                                "Status": "ON", "Longitude": "117.2", "Info": {"PTZType": "1"}}], 5)[0],
    manscdp.alarm_notify(DEVICE, 3, 1, 5, "2024-05-17T14:07:33", "移动侦测", 117.2, 31.8, 2),
    manscdp.device_status_response(DEVICE, 4, True, alarm_status=[{"DeviceID": DEVICE, "DutyStatus": "ONDUTY"}]),
    manscdp.device_config_basic(DEVICE, 5, name="名", heartbeat_interval=60),
    "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>Catalog</CmdType><SumNum>1</SumNum>"
    "<DeviceList Num=\"1\"><Item><DeviceID>1</DeviceID><Name>大华</Name></Item></DeviceList></Response>".encode(),
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><Notify><CmdType>&b;</CmdType></Notify>',
]
SDP_SEEDS = [
    b"v=0\r\no=34020000002000000001 0 0 IN IP4 10.0.0.5\r\ns=Play\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    b"m=video 30000 TCP/RTP/AVP 96 98\r\na=recvonly\r\na=setup:passive\r\na=rtpmap:96 PS/90000\r\n"
    b"a=rtpmap:98 H264/90000\r\ny=0200000001\r\nf=v/2/5/25/1/4096a/1/8/1\r\n",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "dup", "truncate"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b"&", b"<", b">", b"<Item>", b"</Item>", b"\x00", b"\xff\xfe",
                                                  b"<!ENTITY x 'y'>", b"\r\n", b"=", b":", b" ", b"\xe4\xb8"]))
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


def _manscdp(data: bytes) -> None:
    try:
        msg = parse_manscdp(data)
    except ManscdpError:
        return
    asm = CatalogAssembler(DEVICE, msg.sn, 0.0)
    asm.feed(msg, 1.0)
    asm.result()
    for item in msg.items:
        catalog_item_to_channel(item)
    for value in msg.fields.values():
        try:
            parse_gb_time(value)
        except ManscdpError:
            pass


def _sdp(data: bytes) -> None:
    try:
        sd = parse_sdp(data)
    except SdpError:
        return
    try:
        assert parse_sdp(build_sdp(sd)) == sd
    except SdpError:
        pass  # a value that cannot be written back (e.g. a stray CR) is refused, not mangled


def _text_parsers(text: str) -> None:
    for parse, error in ((ptz.decode, ptz.PtzError), (parse_id, InvalidId), (parse_civil_code, InvalidId),
                         (parse_gb_time, ManscdpError)):
        try:
            parse(text)
        except error:
            pass


_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _manscdp(data)
    _sdp(data)
    _text_parsers(data.decode("latin-1"))


@_settings
@given(mutated(MANSCDP_SEEDS))
def test_mutated_manscdp(data: bytes) -> None:
    _manscdp(data)


@_settings
@given(mutated(SDP_SEEDS))
def test_mutated_sdp(data: bytes) -> None:
    _sdp(data)


@_settings
@given(st.text(max_size=40))
def test_random_text(text: str) -> None:
    _text_parsers(text)


@_settings
@given(st.from_regex(r"\A[0-9A-Fa-f]{16}\Z"))
def test_random_ptz_frames(frame: str) -> None:
    _text_parsers(frame)


@_settings
@given(st.dictionaries(st.sampled_from(["DeviceID", "Name", "Status", "Port", "Longitude", "Latitude", "Parental",
                                        "PTZType", "SafetyWay", "Info", "X"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)), max_size=11))
def test_catalog_item_to_channel_never_raises(item: dict) -> None:
    row = catalog_item_to_channel(item)
    assert row["status"] in ("online", "offline") and row["parental"] in (0, 1)
