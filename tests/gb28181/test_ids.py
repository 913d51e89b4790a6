from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camgrid.gb28181.ids import InvalidId, is_valid_id, make_id, parse_civil_code, parse_id


def test_parse_camera_id() -> None:
    gid = parse_id("34020000001320000001")
    assert (gid.centre_code, gid.province, gid.city, gid.county, gid.unit) == ("34020000", "34", "02", "00", "00")
    assert (gid.industry, gid.type_code, gid.network, gid.serial) == ("00", "132", "0", "000001")
    assert gid.type_name == "IPC"
    assert gid.industry_name == "public-security road"
    assert gid.network_name == "public-security video network"
    assert gid.is_front_end and not gid.is_platform
    assert gid.realm == "3402000000"
    assert str(gid) == "34020000001320000001"


@pytest.mark.parametrize(("type_code", "name"), [
    ("111", "DVR"), ("118", "NVR"), ("121", "checkpoint"), ("131", "camera"), ("200", "central signalling server"),
    ("215", "business group"), ("216", "virtual organisation"), ("300", "central user"), ("400", "end user"),
    ("599", "unknown (599)"),
])
def test_type_names(type_code: str, name: str) -> None:
    assert parse_id(f"3402000000{type_code}0000001").type_name == name


def test_classification() -> None:
    assert parse_id("34020000002000000001").is_platform
    assert parse_id("34020000002150000001").is_business_group
    assert parse_id("34020000002160000001").is_virtual_org
    assert not parse_id("34020000001180000001").is_front_end  # an NVR is not a front-end device
    assert parse_id("34020000001990000001").is_front_end
    assert parse_id("34020000771320000001").industry_name == "unknown (77)"
    assert parse_id("34020000001324000001").network_name == "unknown (4)"


def test_whitespace_is_ignored() -> None:
    assert parse_id(" 34020000001320000001\n").raw == "34020000001320000001"


@pytest.mark.parametrize(("value", "message"), [
    ("3402000000132000001", "must be 20 digits, got 19: '3402000000132000001'"),
    ("340200000013200000011", "got 21"),
    ("3402000000132000000A", "found 'A' at position 20"),
    ("", "got 0"),
    ("34020000001320000０01", "only digits"),
])
def test_invalid_ids_explain_themselves(value: str, message: str) -> None:
    with pytest.raises(InvalidId, match="device ID") as err:
        parse_id(value)
    assert message in str(err.value)
    assert not is_valid_id(value)


def test_non_string_is_invalid() -> None:
    with pytest.raises(InvalidId, match="int"):
        parse_id(34020000001320000001)  # type: ignore[arg-type]
    assert not is_valid_id(None)


def test_civil_codes_of_every_length() -> None:
    assert parse_civil_code("34") == ("34", None, None, None)
    assert parse_civil_code("3402") == ("34", "02", None, None)
    assert parse_civil_code("340200") == ("34", "02", "00", None)
    assert parse_civil_code("34020012") == ("34", "02", "00", "12")
    assert parse_civil_code("34020000001320000001") == ("34", "02", "00", "00")
    with pytest.raises(InvalidId, match="civil code must be 2 or 4 or 6 or 8 or 20 digits, got 3"):
        parse_civil_code("340")


def test_make_id() -> None:
    assert make_id("34020000", "00", "132", "0", 1) == "34020000001320000001"
    assert make_id("3402", "08", 131, 7, 999999) == "34020000081317999999"
    with pytest.raises(InvalidId, match="serial"):
        make_id("34020000", "00", 132, 0, 1_000_000)
    with pytest.raises(InvalidId, match="type code must be 3 digits"):
        make_id("34020000", "00", "1320", 0, 1)
    with pytest.raises(InvalidId, match="industry code"):
        make_id("34020000", "0", 132, 0, 1)


@given(st.from_regex(r"\A[0-9]{8}\Z"), st.from_regex(r"\A[0-9]{2}\Z"), st.integers(0, 999),
       st.integers(0, 9), st.integers(0, 999_999))
def test_make_parse_round_trip(centre: str, industry: str, type_code: int, network: int, serial: int) -> None:
    gid = parse_id(make_id(centre, industry, type_code, network, serial))
    assert (gid.centre_code, gid.industry, int(gid.type_code), int(gid.network), int(gid.serial)) == (
        centre, industry, type_code, network, serial)


@given(st.text(max_size=30))
def test_parse_id_only_raises_invalid_id(text: str) -> None:
    try:
        parse_id(text)
    except InvalidId:
        pass
