from datetime import UTC, datetime, timedelta

from camgrid.gb28181.sip.transport import Peer
from camgrid.signaling.registrations import RegistrationTable


def test_expired_registrations_pop_once_and_renewals_survive():
    now = [100.0]
    table = RegistrationTable(clock=lambda: now[0])
    table.put("a", Peer("udp", "1.1.1.1", 5060), 110.0, "2.0")
    table.put("b", Peer("udp", "1.1.1.2", 5060), 110.0, "2.0")
    table.put("b", Peer("udp", "1.1.1.2", 5060), 200.0, "2.0")  # renewed
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


# -- the compact table against a plain-dict model -------------------------------------------------
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from camgrid.registry.slots import DeviceSlots  # noqa: E402

_IDS = [f"3402000000132{i:07d}" for i in range(6)]
_PEERS = [Peer("udp", "10.0.0.1", 5060), Peer("udp", "10.0.0.1", 5061), Peer("udp", "cam.example", 5060),
          Peer("udp", "::1", 5060), Peer("tcp", "10.0.0.9", 40000)]
_OPS = st.one_of(
    st.tuples(st.sampled_from(["put", "register"]), st.sampled_from(_IDS), st.sampled_from(_PEERS), st.floats(0.1, 30),
              st.sampled_from(["2.0", "3.0", "x"])),
    st.tuples(st.just("remove"), st.sampled_from(_IDS)),
    st.tuples(st.just("touch"), st.sampled_from(_IDS), st.sampled_from(_PEERS)),
    st.tuples(st.just("wait"), st.floats(0, 10)),
    st.tuples(st.just("expire")),
)


@hsettings(max_examples=300, deadline=None)
@given(st.lists(_OPS, max_size=60))
def test_table_matches_a_dict_model(ops):
    now = [1000.0]
    table = RegistrationTable(clock=lambda: now[0], slots=DeviceSlots())
    model: dict[str, tuple[Peer, float, str]] = {}
    expired_seen: list[str] = []
    for op in ops:
        if op[0] == "put":
            _, dev, peer, ttl, ver = op
            table.put(dev, peer, now[0] + ttl, ver)
            model[dev] = (peer, now[0] + ttl, ver)
        elif op[0] == "register":  # put and note_answer in one, telling whether it was registered
            _, dev, peer, ttl, ver = op
            was_live = dev in model and model[dev][1] > now[0]
            fingerprint = len(expired_seen) + 1
            assert table.register(dev, peer, now[0] + ttl, ver, now[0], fingerprint) == (dev, was_live)
            model[dev] = (peer, now[0] + ttl, ver)
            assert not table.replayed(dev, now[0], fingerprint, peer, now[0])
            assert table.replayed(dev, now[0] - 1, fingerprint + 1, peer, now[0])  # an older nonce than noted
        elif op[0] == "remove":
            removed = table.remove(op[1])
            assert (removed is not None) == (op[1] in model)
            model.pop(op[1], None)
        elif op[0] == "touch":
            _, dev, peer = op
            live = dev in model and model[dev][1] > now[0]
            assert table.touch(dev, peer) == live
            if live:
                model[dev] = (peer, *model[dev][1:])
        elif op[0] == "wait":
            now[0] += op[1]
        else:
            popped = table.pop_expired()
            due = sorted(d for d, (_, at, _) in model.items() if at <= now[0])
            assert sorted(r.device_id for r in popped) == due
            expired_seen.extend(due)
            for d in due:
                del model[d]
        for dev in _IDS:
            live = dev in model and model[dev][1] > now[0]
            assert table.is_registered(dev) == live
            if live:
                peer, at, ver = model[dev]
                reg = table.get(dev)
                assert (reg.peer.transport, reg.peer.host, reg.peer.port) == (peer.transport, peer.host, peer.port)
                assert reg.expires_at == at and reg.gb_version == ver
                if peer.transport == "tcp":
                    assert reg.peer is peer  # the connection travels with it
        assert len(table) == len(model)


# -- replays of a digest answer -------------------------------------------------------------------
def test_the_answer_a_device_registered_with_counts_only_from_its_own_address():
    now = [100.0]
    table = RegistrationTable(clock=lambda: now[0])
    home, elsewhere = Peer("udp", "10.0.0.1", 5060), Peer("udp", "10.0.0.9", 5060)
    assert not table.replayed("dev", 50.0, 0xABC, home, 60.0)  # never seen: nothing to compare
    table.put("dev", home, 200.0)
    table.note_answer("dev", 50.0, 0xABC)
    assert not table.replayed("dev", 50.0, 0xABC, home, 60.0)  # a renewal with an unchanged Authorization
    assert table.replayed("dev", 50.0, 0xABC, elsewhere, 60.0)
    assert table.replayed("dev", 50.0, 0xABC, Peer("udp", "10.0.0.1", 5061), 60.0)  # another port is elsewhere
    assert not table.replayed("dev", 55.0, 0xDEF, elsewhere, 60.0)  # a new answer: the digest decides
    table.remove("dev")
    assert table.replayed("dev", 50.0, 0xABC, home, 60.0)  # after the registration ended, even from home


def test_an_answer_to_an_older_nonce_is_a_replay_unless_the_clock_stepped_back():
    table = RegistrationTable(clock=lambda: 0.0)
    peer = Peer("udp", "10.0.0.1", 5060)
    table.put("dev", peer, 3600.0)
    table.note_answer("dev", 1000.0, 0x1)
    assert table.replayed("dev", 999.0, 0x2, peer, 1010.0)
    assert not table.replayed("dev", 1000.5, 0x2, peer, 1010.0)
    assert not table.replayed("dev", 900.0, 0x2, peer, 950.0)  # the stored nonce lies in the future: not judged


def test_a_tcp_answer_counts_only_on_the_registered_connection():
    table = RegistrationTable(clock=lambda: 0.0)
    conn, other = Peer("tcp", "10.0.0.1", 5060), Peer("tcp", "10.0.0.1", 5060)
    table.put("dev", conn, 3600.0)
    table.note_answer("dev", 10.0, 0x7)
    assert not table.replayed("dev", 10.0, 0x7, conn, 20.0)
    assert table.replayed("dev", 10.0, 0x7, other, 20.0)  # same address, another connection
