from datetime import UTC, datetime, timedelta

from camgrid.gb28181.sip.transport import Peer
from camgrid.signaling.registrations import Registration, RegistrationTable


def test_expired_registrations_pop_once_and_renewals_survive():
    now = [100.0]
    table = RegistrationTable(clock=lambda: now[0])
    table.put(Registration("a", Peer("udp", "1.1.1.1", 5060), "", 110.0, "2.0"))
    table.put(Registration("b", Peer("udp", "1.1.1.2", 5060), "", 110.0, "2.0"))
    table.put(Registration("b", Peer("udp", "1.1.1.2", 5060), "", 200.0, "2.0"))  # renewed
    now[0] = 111
    assert [r.device_id for r in table.pop_expired()] == ["a"]
    assert table.pop_expired() == []
    assert table.get("a") is None and table.get("b") is not None


def test_restore_keeps_only_unexpired_rows_with_an_address():
    table = RegistrationTable(clock=lambda: 0.0)
    wall = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"id": "live", "register_expires_at": wall + timedelta(seconds=300), "remote_addr": "10.0.0.1:5060", "transport": "tcp"},
        {"id": "gone", "register_expires_at": wall - timedelta(seconds=1), "remote_addr": "10.0.0.2:5060"},
        {"id": "noaddr", "register_expires_at": wall + timedelta(seconds=300), "remote_addr": None},
        {"id": "naive", "register_expires_at": (wall + timedelta(seconds=60)).replace(tzinfo=None), "remote_addr": "10.0.0.3:5070"},
    ]
    assert table.restore(rows, now_wall=wall) == 2
    live = table.get("live")
    assert live.peer == Peer("tcp", "10.0.0.1", 5060) and live.expires_at == 300
    assert table.get("naive").peer.port == 5070
