from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camgrid.gb28181.ptz import PtzAction, PtzCommand, PtzError, decode, encode


def test_examples_from_the_notes_round_trip() -> None:
    assert encode(PtzCommand.stop(), address=1) == "A50F0100000000B5"
    assert encode(PtzCommand.move(pan=1, speed=0x80), address=1) == "A50F0101808000B6"
    for frame in ("A50F0100000000B5", "A50F0101808000B6"):
        assert encode(decode(frame)) == frame
    assert decode(" a50f0101808000b6 ") == PtzCommand(PtzAction.MOVE, pan=1, pan_speed=0x80, tilt_speed=0x80, address=1)


def _with_sum(first_seven: str) -> str:
    return first_seven + f"{sum(bytes.fromhex(first_seven)) & 0xFF:02X}"


@pytest.mark.parametrize(("cmd", "op"), [
    (PtzCommand.move(pan=1), 0x01), (PtzCommand.move(pan=-1), 0x02), (PtzCommand.move(tilt=-1), 0x04),
    (PtzCommand.move(tilt=1), 0x08), (PtzCommand.move(zoom=1), 0x10), (PtzCommand.move(zoom=-1), 0x20),
    (PtzCommand.move(pan=-1, tilt=1, zoom=1), 0x1A), (PtzCommand.focus_iris(focus=1), 0x41),
    (PtzCommand.focus_iris(focus=-1), 0x42), (PtzCommand.focus_iris(iris=1), 0x44),
    (PtzCommand.focus_iris(iris=-1), 0x48), (PtzCommand.focus_iris(), 0x40),
    (PtzCommand.preset_set(3), 0x81), (PtzCommand.preset_call(3), 0x82), (PtzCommand.preset_delete(3), 0x83),
    (PtzCommand.cruise_add(1, 2), 0x84), (PtzCommand.cruise_delete(1), 0x85), (PtzCommand.cruise_speed(1, 9), 0x86),
    (PtzCommand.cruise_dwell(1, 9), 0x87), (PtzCommand.cruise_start(1), 0x88), (PtzCommand.scan(1), 0x89),
    (PtzCommand.scan_speed(1, 9), 0x8A), (PtzCommand.aux_switch(1, True), 0x8C), (PtzCommand.aux_switch(1, False), 0x8D),
])
def test_instruction_bytes(cmd: PtzCommand, op: int) -> None:
    frame = bytes.fromhex(encode(cmd))
    assert frame[3] == op
    assert decode(encode(cmd)) == cmd


def test_byte_layout_of_data_commands() -> None:
    assert encode(PtzCommand.preset_call(5), address=1) == _with_sum("A50F0182000500")
    frame = bytes.fromhex(encode(PtzCommand.cruise_dwell(2, 0xABC)))
    assert (frame[4], frame[5], frame[6]) == (2, 0xBC, 0xA0)  # 12 bits: low byte in byte6, high nibble in byte7
    frame = bytes.fromhex(encode(PtzCommand.scan(4, PtzAction.SCAN_SET_RIGHT)))
    assert (frame[3], frame[4], frame[5]) == (0x89, 4, 2)
    frame = bytes.fromhex(encode(PtzCommand.move(zoom=1, speed=0xF0), address=0xABC))
    assert (frame[2], frame[6]) == (0xBC, 0xFA)  # zoom speed nibble and the address's high nibble share byte7
    assert decode(bytes(frame).hex()).address == 0xABC


@pytest.mark.parametrize(("frame", "message"), [
    ("A50F01000000B5", "16 hex digits, got 14"),
    ("A50F0100000000B6", "checksum is B6, expected B5"),
    ("B50F0100000000C5", "start with A5"),
    ("A5000100000000A6", "check nibble"),
    ("A50F01ZZ000000B5", "hex digits"),
    ("A50F01030000 0B8", "hex digits"),
    ("A50F0103000000B8", "both directions of pan"),
    (_with_sum("A50F0180000000"), "unknown PTZ instruction 80"),
    (_with_sum("A50F01C1000000"), "unknown PTZ instruction C1"),
    (_with_sum("A50F0189000300"), "scan operation 03"),
])
def test_decode_errors(frame: str, message: str) -> None:
    with pytest.raises(PtzError, match=message):
        decode(frame)


def test_value_ranges() -> None:
    with pytest.raises(PtzError, match="preset number must be an integer 1-255"):
        PtzCommand.preset_call(0)
    with pytest.raises(PtzError, match="value"):
        PtzCommand.cruise_speed(1, 4096)
    with pytest.raises(PtzError, match="pan"):
        PtzCommand.move(pan=2)
    with pytest.raises(PtzError, match="zoom_speed"):
        PtzCommand.move(zoom=1, zoom_speed=16)
    with pytest.raises(PtzError, match="address"):
        encode(PtzCommand.stop(), address=4096)
    with pytest.raises(PtzError, match="scan action"):
        PtzCommand.scan(1, PtzAction.MOVE)


_dir = st.sampled_from([-1, 0, 1])
_byte = st.integers(0, 255)
commands = st.one_of(
    st.builds(PtzCommand, st.just(PtzAction.MOVE), pan=_dir, tilt=_dir, zoom=_dir, pan_speed=_byte,
              tilt_speed=_byte, zoom_speed=st.integers(0, 15), address=st.integers(0, 4095)),
    st.builds(PtzCommand, st.just(PtzAction.FOCUS_IRIS), focus=_dir, iris=_dir, focus_speed=_byte, iris_speed=_byte,
              address=st.integers(0, 4095)),
    st.builds(PtzCommand, st.sampled_from([PtzAction.PRESET_SET, PtzAction.PRESET_CALL, PtzAction.PRESET_DELETE]),
              preset=_byte),
    st.builds(PtzCommand, st.sampled_from([PtzAction.CRUISE_ADD, PtzAction.CRUISE_DELETE, PtzAction.CRUISE_START]),
              group=_byte, preset=_byte),
    st.builds(PtzCommand, st.sampled_from([PtzAction.CRUISE_SPEED, PtzAction.CRUISE_DWELL, PtzAction.SCAN_SPEED]),
              group=_byte, value=st.integers(0, 4095)),
    st.builds(PtzCommand, st.sampled_from([PtzAction.SCAN_START, PtzAction.SCAN_SET_LEFT, PtzAction.SCAN_SET_RIGHT]),
              group=_byte),
    st.builds(PtzCommand, st.sampled_from([PtzAction.AUX_ON, PtzAction.AUX_OFF]), aux=_byte),
)


@given(commands)
def test_round_trip(cmd: PtzCommand) -> None:
    frame = encode(cmd)
    assert len(frame) == 16 and frame == frame.upper()
    assert decode(frame) == cmd
    assert encode(decode(frame)) == frame


@given(st.binary(min_size=7, max_size=7))
def test_any_checksummed_frame_decodes_or_raises_ptz_error(body: bytes) -> None:
    frame = (body + bytes([sum(body) & 0xFF])).hex()
    try:
        cmd = decode(frame)
    except PtzError:
        return
    assert decode(encode(cmd)) == cmd
