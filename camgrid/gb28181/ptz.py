"""PTZCmd: the 8-byte front-end control frame carried as 16 hex digits (GB/T 28181 A.3).

    byte1 A5 · byte2 version (high nibble) + check nibble · byte3 address low 8 bits ·
    byte4 instruction · byte5 data1 · byte6 data2 · byte7 data3 (high nibble) + address
    high 4 bits (low nibble) · byte8 sum of bytes 1-7 mod 256
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

HEADER = 0xA5
VERSION = 0

# byte4 bits of a pan/tilt/zoom instruction
_RIGHT, _LEFT, _DOWN, _UP, _ZOOM_IN, _ZOOM_OUT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
# byte4 bits of a focus/iris instruction (0x40-0x4F)
_FOCUS_FAR, _FOCUS_NEAR, _IRIS_OPEN, _IRIS_CLOSE = 0x01, 0x02, 0x04, 0x08


class PtzError(ValueError):
    """A PTZCmd that is malformed or a command whose values are out of range."""


class PtzAction(str, Enum):
    MOVE = "move"  # pan/tilt/zoom; no direction = stop
    FOCUS_IRIS = "focus_iris"  # no direction = stop focus/iris
    PRESET_SET = "preset_set"
    PRESET_CALL = "preset_call"
    PRESET_DELETE = "preset_delete"
    CRUISE_ADD = "cruise_add"
    CRUISE_DELETE = "cruise_delete"  # preset 0 deletes the whole cruise
    CRUISE_SPEED = "cruise_speed"
    CRUISE_DWELL = "cruise_dwell"
    CRUISE_START = "cruise_start"
    SCAN_START = "scan_start"
    SCAN_SET_LEFT = "scan_set_left"
    SCAN_SET_RIGHT = "scan_set_right"
    SCAN_SPEED = "scan_speed"
    AUX_ON = "aux_on"
    AUX_OFF = "aux_off"


_OPCODES = {
    PtzAction.PRESET_SET: 0x81, PtzAction.PRESET_CALL: 0x82, PtzAction.PRESET_DELETE: 0x83,
    PtzAction.CRUISE_ADD: 0x84, PtzAction.CRUISE_DELETE: 0x85, PtzAction.CRUISE_SPEED: 0x86,
    PtzAction.CRUISE_DWELL: 0x87, PtzAction.CRUISE_START: 0x88,
    PtzAction.SCAN_START: 0x89, PtzAction.SCAN_SET_LEFT: 0x89, PtzAction.SCAN_SET_RIGHT: 0x89,
    PtzAction.SCAN_SPEED: 0x8A, PtzAction.AUX_ON: 0x8C, PtzAction.AUX_OFF: 0x8D,
}
_SCAN_SUBOPS = {PtzAction.SCAN_START: 0, PtzAction.SCAN_SET_LEFT: 1, PtzAction.SCAN_SET_RIGHT: 2}
_SCAN_BY_SUBOP = {v: k for k, v in _SCAN_SUBOPS.items()}
_TWELVE_BIT = (PtzAction.CRUISE_SPEED, PtzAction.CRUISE_DWELL, PtzAction.SCAN_SPEED)
_PRESET_ONLY = (PtzAction.PRESET_SET, PtzAction.PRESET_CALL, PtzAction.PRESET_DELETE)


def _check(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PtzError(f"{name} must be an integer {lo}-{hi}, got {value!r}")


@dataclass(frozen=True)
class PtzCommand:
    """One PTZ instruction. Only the fields of its action are used; the rest stay 0.

    pan: 1 right, -1 left · tilt: 1 up, -1 down · zoom: 1 in (tele), -1 out (wide) ·
    focus: 1 far, -1 near · iris: 1 open, -1 close · group: cruise/scan group (byte5) ·
    preset: preset number (byte6) · value: 12-bit cruise speed / dwell seconds / scan speed ·
    aux: auxiliary switch number · address: 12-bit device address.
    """

    action: PtzAction = PtzAction.MOVE
    pan: int = 0
    tilt: int = 0
    zoom: int = 0
    pan_speed: int = 0
    tilt_speed: int = 0
    zoom_speed: int = 0
    focus: int = 0
    iris: int = 0
    focus_speed: int = 0
    iris_speed: int = 0
    group: int = 0
    preset: int = 0
    value: int = 0
    aux: int = 0
    address: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", PtzAction(self.action))
        for name in ("pan", "tilt", "zoom", "focus", "iris"):
            _check(name, getattr(self, name), -1, 1)
        for name in ("pan_speed", "tilt_speed", "focus_speed", "iris_speed", "group", "preset", "aux"):
            _check(name, getattr(self, name), 0, 255)
        _check("zoom_speed", self.zoom_speed, 0, 15)
        _check("value", self.value, 0, 4095)
        _check("address", self.address, 0, 4095)

    # -- constructors -----------------------------------------------------------------------------
    @classmethod
    def move(cls, pan: int = 0, tilt: int = 0, zoom: int = 0, speed: int = 0x80,
             zoom_speed: int | None = None) -> PtzCommand:
        """`speed` drives both pan and tilt (as devices expect even for a one-axis move)."""
        pt_speed = speed if (pan or tilt) else 0
        if zoom_speed is None:
            zoom_speed = (speed >> 4) if zoom else 0
        return cls(PtzAction.MOVE, pan=pan, tilt=tilt, zoom=zoom, pan_speed=pt_speed, tilt_speed=pt_speed,
                   zoom_speed=zoom_speed)

    @classmethod
    def stop(cls) -> PtzCommand:
        return cls(PtzAction.MOVE)

    @classmethod
    def focus_iris(cls, focus: int = 0, iris: int = 0, speed: int = 0x80) -> PtzCommand:
        return cls(PtzAction.FOCUS_IRIS, focus=focus, iris=iris, focus_speed=speed if focus else 0,
                   iris_speed=speed if iris else 0)

    @classmethod
    def preset_set(cls, number: int) -> PtzCommand:
        _check("preset number", number, 1, 255)
        return cls(PtzAction.PRESET_SET, preset=number)

    @classmethod
    def preset_call(cls, number: int) -> PtzCommand:
        _check("preset number", number, 1, 255)
        return cls(PtzAction.PRESET_CALL, preset=number)

    @classmethod
    def preset_delete(cls, number: int) -> PtzCommand:
        _check("preset number", number, 1, 255)
        return cls(PtzAction.PRESET_DELETE, preset=number)

    @classmethod
    def cruise_add(cls, group: int, preset: int) -> PtzCommand:
        return cls(PtzAction.CRUISE_ADD, group=group, preset=preset)

    @classmethod
    def cruise_delete(cls, group: int, preset: int = 0) -> PtzCommand:
        return cls(PtzAction.CRUISE_DELETE, group=group, preset=preset)

    @classmethod
    def cruise_speed(cls, group: int, speed: int) -> PtzCommand:
        return cls(PtzAction.CRUISE_SPEED, group=group, value=speed)

    @classmethod
    def cruise_dwell(cls, group: int, seconds: int) -> PtzCommand:
        return cls(PtzAction.CRUISE_DWELL, group=group, value=seconds)

    @classmethod
    def cruise_start(cls, group: int) -> PtzCommand:
        return cls(PtzAction.CRUISE_START, group=group)

    @classmethod
    def scan(cls, group: int, action: PtzAction = PtzAction.SCAN_START) -> PtzCommand:
        if action not in _SCAN_SUBOPS:
            raise PtzError(f"scan action must be one of {[a.value for a in _SCAN_SUBOPS]}, got {action!r}")
        return cls(action, group=group)

    @classmethod
    def scan_speed(cls, group: int, speed: int) -> PtzCommand:
        return cls(PtzAction.SCAN_SPEED, group=group, value=speed)

    @classmethod
    def aux_switch(cls, number: int, on: bool) -> PtzCommand:
        return cls(PtzAction.AUX_ON if on else PtzAction.AUX_OFF, aux=number)


def _direction(bits: int, plus: int, minus: int, what: str) -> int:
    if bits & plus and bits & minus:
        raise PtzError(f"instruction asks for both directions of {what}")
    return 1 if bits & plus else -1 if bits & minus else 0


def _bits(value: int, plus: int, minus: int) -> int:
    return plus if value > 0 else minus if value < 0 else 0


def _frame_bytes(cmd: PtzCommand) -> tuple[int, int, int, int]:
    """(instruction, data1, data2, data3 nibble)."""
    a = cmd.action
    if a is PtzAction.MOVE:
        op = _bits(cmd.pan, _RIGHT, _LEFT) | _bits(cmd.tilt, _UP, _DOWN) | _bits(cmd.zoom, _ZOOM_IN, _ZOOM_OUT)
        return op, cmd.pan_speed, cmd.tilt_speed, cmd.zoom_speed
    if a is PtzAction.FOCUS_IRIS:
        op = 0x40 | _bits(cmd.focus, _FOCUS_FAR, _FOCUS_NEAR) | _bits(cmd.iris, _IRIS_OPEN, _IRIS_CLOSE)
        return op, cmd.focus_speed, cmd.iris_speed, 0
    if a in _PRESET_ONLY:
        return _OPCODES[a], 0, cmd.preset, 0
    if a in _TWELVE_BIT:
        return _OPCODES[a], cmd.group, cmd.value & 0xFF, cmd.value >> 8
    if a in _SCAN_SUBOPS:
        return _OPCODES[a], cmd.group, _SCAN_SUBOPS[a], 0
    if a in (PtzAction.AUX_ON, PtzAction.AUX_OFF):
        return _OPCODES[a], cmd.aux, 0, 0
    return _OPCODES[a], cmd.group, cmd.preset, 0  # cruise add/delete/start


def encode(cmd: PtzCommand, address: int | None = None) -> str:
    """16 upper-case hex digits. `address` overrides cmd.address when given."""
    addr = cmd.address if address is None else address
    _check("address", addr, 0, 4095)
    op, d1, d2, d3 = _frame_bytes(cmd)
    b2 = (VERSION << 4) | (((HEADER >> 4) + (HEADER & 0x0F) + VERSION) & 0x0F)
    frame = [HEADER, b2, addr & 0xFF, op, d1, d2, (d3 << 4) | (addr >> 8)]
    frame.append(sum(frame) & 0xFF)
    return bytes(frame).hex().upper()


def decode(hex_cmd: str) -> PtzCommand:
    if not isinstance(hex_cmd, str):
        raise PtzError(f"PTZCmd must be text, got {type(hex_cmd).__name__}")
    text = hex_cmd.strip()
    if len(text) != 16:
        raise PtzError(f"PTZCmd must be 16 hex digits, got {len(text)}: {text[:40]!r}")
    try:
        if not text.isascii():
            raise ValueError
        b = bytes.fromhex(text)
    except ValueError:
        raise PtzError(f"PTZCmd must be hex digits 0-9A-F: {text!r}") from None
    if b[0] != HEADER:
        raise PtzError(f"PTZCmd must start with A5, got {b[0]:02X}")
    version = b[1] >> 4
    if b[1] & 0x0F != ((HEADER >> 4) + (HEADER & 0x0F) + version) & 0x0F:
        raise PtzError(f"PTZCmd byte 2 check nibble is wrong: {b[1]:02X}")
    if sum(b[:7]) & 0xFF != b[7]:
        raise PtzError(f"PTZCmd checksum is {b[7]:02X}, expected {sum(b[:7]) & 0xFF:02X}")
    op, d1, d2, d3 = b[3], b[4], b[5], b[6] >> 4
    address = ((b[6] & 0x0F) << 8) | b[2]
    if op < 0x40:
        if op & 0xC0:
            raise PtzError(f"unknown PTZ instruction {op:02X}")
        return PtzCommand(PtzAction.MOVE, pan=_direction(op, _RIGHT, _LEFT, "pan"),
                          tilt=_direction(op, _UP, _DOWN, "tilt"), zoom=_direction(op, _ZOOM_IN, _ZOOM_OUT, "zoom"),
                          pan_speed=d1, tilt_speed=d2, zoom_speed=d3, address=address)
    if op <= 0x4F:
        return PtzCommand(PtzAction.FOCUS_IRIS, focus=_direction(op, _FOCUS_FAR, _FOCUS_NEAR, "focus"),
                          iris=_direction(op, _IRIS_OPEN, _IRIS_CLOSE, "iris"),
                          focus_speed=d1, iris_speed=d2, address=address)
    if op in (0x81, 0x82, 0x83):
        action = {0x81: PtzAction.PRESET_SET, 0x82: PtzAction.PRESET_CALL, 0x83: PtzAction.PRESET_DELETE}[op]
        return PtzCommand(action, preset=d2, address=address)
    if op in (0x84, 0x85, 0x88):
        action = {0x84: PtzAction.CRUISE_ADD, 0x85: PtzAction.CRUISE_DELETE, 0x88: PtzAction.CRUISE_START}[op]
        return PtzCommand(action, group=d1, preset=d2, address=address)
    if op in (0x86, 0x87, 0x8A):
        action = {0x86: PtzAction.CRUISE_SPEED, 0x87: PtzAction.CRUISE_DWELL, 0x8A: PtzAction.SCAN_SPEED}[op]
        return PtzCommand(action, group=d1, value=(d3 << 8) | d2, address=address)
    if op == 0x89:
        if d2 not in _SCAN_BY_SUBOP:
            raise PtzError(f"unknown scan operation {d2:02X} (00 start, 01 left edge, 02 right edge)")
        return PtzCommand(_SCAN_BY_SUBOP[d2], group=d1, address=address)
    if op in (0x8C, 0x8D):
        return PtzCommand(PtzAction.AUX_ON if op == 0x8C else PtzAction.AUX_OFF, aux=d1, address=address)
    raise PtzError(f"unknown PTZ instruction {op:02X}")
