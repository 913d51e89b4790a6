"""The native REGISTER decision (_sipfast.RegisterDecider) against the registrar's own.

Two registrars over the same registry and nonce key take the same REGISTERs in the same order:
one as the signaling server does with the decider (a challenge answered in C, a verified answer
accepted by Registrar.accept_verified, everything else to Registrar.handle_native), the other
with the Python decision only. Every answer must be the same bytes (but for the nonce a
challenge carries, the To tag and the Date), and so must what the operator sees: who is
registered, the failures by reason, the bans. The hot shapes must be decided in C, or the
native path would be silently idle.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_mutations import mutations

from camgrid.bus import MemoryBus
from camgrid.config import SipSettings
from camgrid.gb28181.sip import fastpath
from camgrid.gb28181.sip.digest import Challenge, NonceFactory, authorization_header
from camgrid.gb28181.sip.transport import Peer
from camgrid.registry.devices import add_device
from camgrid.registry.slots import DeviceSlots
from camgrid.signaling.auth_cache import AuthCache
from camgrid.signaling.persist import RegistrationWriter
from camgrid.signaling.registrar import NativeRegister, Registrar, gb_date
from camgrid.signaling.registrations import RegistrationTable
from camgrid.store.engine import make_engine, migrate

pytestmark = pytest.mark.skipif(not fastpath.NATIVE, reason=f"native SIP path not available: {fastpath.REASON}")

PLATFORM = "34020000002000000001"
REALM = "3402000000"
URI = f"sip:{PLATFORM}@{REALM}"
SERVER = "camgrid"
DEVICE, OTHER, PENDING, UNKNOWN = "34020000001320000001", "34020000001320000002", "34020000001320000003", "34020000001320000009"
SECRETS = {DEVICE: "Dev1-Secret-77", OTHER: "Dev2-Secret-88", PENDING: "Dev3-Secret-99"}
HOSTS = [("192.168.1.64", 5060), ("10.0.0.7", 5062)]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('decide') / 'camgrid.db'}")
    migrate(engine)
    add_device(engine, DEVICE, SECRETS[DEVICE], REALM)
    add_device(engine, OTHER, SECRETS[OTHER], REALM)
    add_device(engine, PENDING, SECRETS[PENDING], REALM, approval="pending")
    yield engine
    engine.dispose()


class Side:
    """A registrar and the answers it sent; `native` makes it decide as the server does with C."""

    def __init__(self, engine, native: bool, key: bytes | None = None, **sip) -> None:
        slots = DeviceSlots()
        self.load = SimpleNamespace(overloaded=False)
        self.registrar = Registrar(
            None, SipSettings(id=PLATFORM, **sip), engine, MemoryBus(), registrations=RegistrationTable(slots=slots),
            writer=RegistrationWriter(engine), auth=AuthCache(engine, slots=slots),
            on_registered=lambda *a: None, on_unregistered=lambda *a: None)
        if key is not None:
            self.registrar.nonces = NonceFactory(REALM, self.registrar.settings.nonce_ttl_s, key=key)
        self.registrar.overloaded = lambda: self.load.overloaded
        self.registrar.auth.load_all()
        self.decider = self.registrar.native_decider(self.load) if native else None
        self.decided: Counter[int] = Counter()
        self.built_in_c = 0  # 200 OKs the decider built

    def take(self, data: bytes, host: str, port: int) -> bytes | None:
        """The answer sent, or None when the general path would take the datagram."""
        peer = Peer("udp", host, port)
        if self.decider is None:
            found, verified = fastpath.register(data, host, port, SERVER), None
        else:
            decided = self.decider.decide(data, host, port, SERVER)
            if decided is None:
                return None
            self.decided[decided[0]] += 1
            if decided[0] == 1:
                return decided[1]
            found, verified = decided[1], (decided if decided[0] == 2 else None)
        if found is None:
            return None
        req = NativeRegister(found, host, lambda *a: None, Counter())
        if verified is not None:
            self.built_in_c += verified[5] is not None
            self.registrar.accept_verified(req, peer, *verified[2:])
        elif not self.registrar.handle_native(req, peer):
            return None
        return req.answer

    def state(self) -> tuple:
        r = self.registrar
        return ({d: r.registrations.is_registered(d) for d in SECRETS}, dict(r.failures),
                {k: r.bans.is_banned(k) for k in (*SECRETS, UNKNOWN, *(h for h, _ in HOSTS))})


def same_bytes(answer: bytes | None) -> bytes | None:
    if answer is None:
        return None
    answer = re.sub(rb'nonce="[^"]*"', b'nonce="N"', answer)
    answer = re.sub(rb"(\r\nTo: [^\r]*?);tag=[^;\r]*", rb"\1;tag=T", answer)
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: D", answer)


def request(device: str, n: int, *, auth: str | None = None, expires: str | None = "Expires: 3600\r\n",
            contact_params: str = "", ver: str = "") -> bytes:
    return (f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bKd{n}\r\n"
            f"From: <sip:{device}@{REALM}>;tag=f{n}\r\nTo: <sip:{device}@{REALM}>\r\nCall-ID: d{n}@192.168.1.64\r\n"
            f"CSeq: {n} REGISTER\r\nContact: <sip:{device}@192.168.1.64:5060>{contact_params}\r\n"
            + (f"Authorization: {auth}\r\n" if auth is not None else "")
            + f"Max-Forwards: 70\r\nUser-Agent: IPC\r\n{ver}{expires or ''}Content-Length: 0\r\n\r\n").encode()


def answer_for(nonces: NonceFactory, device: str, secret: str, *, qop: bool = True, algorithm: str = "MD5",
               realm: str = REALM, username: str | None = None, upper: bool = False) -> str:
    challenge = Challenge(realm, nonces.make(), algorithm, "auth" if qop else None)
    header = authorization_header(challenge, username or device, secret, "REGISTER", URI)
    if upper:
        header = re.sub(r'response="([0-9a-f]+)"', lambda m: f'response="{m.group(1).upper()}"', header)
    return header


def test_the_hot_shapes_are_decided_in_c_and_answer_as_python_does(registry):
    c = Side(registry, native=True)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key())
    host, port = HOSTS[0]
    first = request(DEVICE, 1)
    challenge = c.take(first, host, port)
    assert c.decided[1] == 1 and challenge.startswith(b"SIP/2.0 401 Unauthorized\r\n")
    assert same_bytes(challenge) == same_bytes(py.take(first, host, port))
    nonce = Challenge.parse(re.search(rb"WWW-Authenticate: ([^\r]*)", challenge).group(1).decode()).nonce
    assert c.registrar.nonces.check(nonce) == "ok"  # a nonce made in C is one of ours

    auth = authorization_header(Challenge(REALM, nonce), DEVICE, SECRETS[DEVICE], "REGISTER", URI)
    second = request(DEVICE, 2, auth=auth)
    accepted = c.take(second, host, port)
    assert c.decided[2] == 1 and accepted.startswith(b"SIP/2.0 200 OK\r\n"), accepted
    assert same_bytes(accepted) == same_bytes(py.take(second, host, port))
    assert c.state() == py.state()
    assert c.registrar.registrations.is_registered(DEVICE)


@pytest.mark.parametrize("case", [
    "wrong_secret", "stale_nonce", "foreign_nonce", "other_username", "other_realm", "sha256", "qop_auth_int",
    "unregister", "too_brief", "contact_expires_text", "pending", "unknown", "overloaded", "banned"])
async def test_what_c_leaves_to_python_is_answered_the_same(registry, case):
    c = Side(registry, native=True)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key())
    nonces = py.registrar.nonces
    device, kwargs = DEVICE, {}
    if case == "wrong_secret":
        kwargs["auth"] = answer_for(nonces, DEVICE, "Not-The-Secret-1")
    elif case == "stale_nonce":
        old = NonceFactory(REALM, key=nonces.native_key(), clock=lambda: time.time() - 3600)
        kwargs["auth"] = answer_for(old, DEVICE, SECRETS[DEVICE])
    elif case == "foreign_nonce":
        kwargs["auth"] = answer_for(NonceFactory(REALM), DEVICE, SECRETS[DEVICE])
    elif case == "other_username":
        kwargs["auth"] = answer_for(nonces, DEVICE, SECRETS[DEVICE], username=OTHER)
    elif case == "other_realm":
        kwargs["auth"] = answer_for(nonces, DEVICE, SECRETS[DEVICE], realm="3402000001")
    elif case == "sha256":
        kwargs["auth"] = answer_for(nonces, DEVICE, SECRETS[DEVICE], algorithm="SHA-256")
    elif case == "qop_auth_int":
        kwargs["auth"] = answer_for(nonces, DEVICE, SECRETS[DEVICE]).replace("qop=auth", "qop=auth-int")
    elif case == "unregister":
        kwargs.update(auth=answer_for(nonces, DEVICE, SECRETS[DEVICE]), expires="Expires: 0\r\n")
    elif case == "too_brief":
        kwargs["expires"] = "Expires: 30\r\n"
    elif case == "contact_expires_text":
        kwargs["contact_params"] = ";expires=soon"
    elif case in ("pending", "unknown"):
        device = PENDING if case == "pending" else UNKNOWN
    elif case == "overloaded":
        c.load.overloaded = py.load.overloaded = True
    elif case == "banned":
        for side in (c, py):
            for _ in range(side.registrar.settings.ban_failures):
                side.registrar.bans.failure(DEVICE)
    data = request(device, 7, **kwargs)
    assert same_bytes(c.take(data, *HOSTS[0])) == same_bytes(py.take(data, *HOSTS[0]))
    assert c.decided[1] == c.decided[2] == 0, f"C decided {case}"
    assert c.state() == py.state()


def test_an_uppercase_answer_and_no_qop_verify_in_c(registry):
    c = Side(registry, native=True, digest_qop=False)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key(), digest_qop=False)
    for n, auth in enumerate([answer_for(c.registrar.nonces, DEVICE, SECRETS[DEVICE], qop=False),
                              answer_for(c.registrar.nonces, OTHER, SECRETS[OTHER], upper=True)]):
        device = DEVICE if n == 0 else OTHER
        data = request(device, n, auth=auth, ver="X-GB-Ver: 3.0\r\n")
        assert same_bytes(c.take(data, *HOSTS[1])) == same_bytes(py.take(data, *HOSTS[1]))
    assert c.decided[2] == 2
    challenge = c.take(request(DEVICE, 9, ver="X-GB-Ver: 3.0\r\n"), *HOSTS[1])
    assert b"qop" not in challenge and b"\r\nX-GB-Ver: 3.0\r\n" in challenge
    assert c.state() == py.state()


def test_no_decider_where_c_cannot_decide_as_python(registry):
    assert Side(registry, native=True, digest_algorithm="SHA-256").decider is None
    side = Side(registry, native=False)
    side.registrar.nonces = NonceFactory(REALM, clock=lambda: 1e9)
    assert side.registrar.native_decider(side.load) is None


STEPS = st.lists(st.tuples(
    st.sampled_from([DEVICE, OTHER, PENDING, UNKNOWN]),
    st.sampled_from(["none", "right", "right", "wrong", "stale", "sha256", "upper"]),
    st.sampled_from(["Expires: 3600\r\n", "Expires: 0\r\n", "Expires:  120 \r\n", "Expires: 30\r\n", "Expires: x\r\n",
                     None]),
    st.sampled_from(["", ";expires=600", ";Expires=0", ";expires= 90 ", ";expires=a"]),
    st.sampled_from(HOSTS),
    st.booleans(),
), min_size=1, max_size=14)
_EDITS = [b" ", b"\t", b"\r\n", b",", b";", b"=", b'"', b"\\", b"\x00", b"\xe4\xb8\xad", b"A", b"0"]


@given(steps=STEPS, mutated=st.lists(mutations([request(DEVICE, 1)], _EDITS), max_size=3))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_sequence_of_registers_ends_the_same(registry, steps, mutated):
    c = Side(registry, native=True)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key())
    nonces = py.registrar.nonces
    stale = NonceFactory(REALM, key=nonces.native_key(), clock=lambda: time.time() - 1000)
    for n, (device, auth_kind, expires, contact, (host, port), gb3) in enumerate(steps):
        secret = SECRETS.get(device, "Guess-Secret-1")
        auth = None if auth_kind == "none" else answer_for(
            stale if auth_kind == "stale" else nonces, device, "Wrong-Secret-2" if auth_kind == "wrong" else secret,
            algorithm="SHA-256" if auth_kind == "sha256" else "MD5", upper=auth_kind == "upper")
        data = request(device, n, auth=auth, expires=expires, contact_params=contact,
                       ver="X-GB-Ver: 3.0\r\n" if gb3 else "")
        assert same_bytes(c.take(data, host, port)) == same_bytes(py.take(data, host, port)), data
        assert c.state() == py.state()
    for data in mutated:
        assert same_bytes(c.take(data, *HOSTS[0])) == same_bytes(py.take(data, *HOSTS[0])), data
        assert c.state() == py.state()


@pytest.mark.parametrize("expires, contact_params, ver", [
    ("Expires: 3600\r\n", "", ""), (None, ";expires=600", "X-GB-Ver: 3.0\r\n"), ("Expires: 999999\r\n", "", ""),
    ("Expires: 120\r\n", ";Expires=90;transport=udp", "X-GB-Ver: 2.0\r\n")])
def test_the_200_ok_built_in_c_is_the_registrars_to_the_byte(registry, expires, contact_params, ver):
    c = Side(registry, native=True)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key())
    tz = c.registrar.tz
    for n in range(8):  # the first 200 of a second is built in Python, which tells C that second's Date
        auth = answer_for(c.registrar.nonces, DEVICE, SECRETS[DEVICE])
        data = request(DEVICE, n, auth=auth, expires=expires, contact_params=contact_params, ver=ver)
        built_before = c.built_in_c
        before = datetime.now(UTC)
        ours = c.take(data, *HOSTS[0])
        after = datetime.now(UTC)
        theirs = py.take(data, *HOSTS[0])
        date = re.search(rb"\r\nDate: ([^\r]*)\r\n", ours).group(1)
        assert gb_date(before, tz).encode() <= date <= gb_date(after, tz).encode()  # the registrar's Date then
        tag = re.search(rb"\r\nTo: [^\r]*?(;tag=[^;\r]*)", ours).group(1)
        theirs = re.sub(rb"(\r\nTo: [^\r]*?);tag=[^;\r]*", rb"\1" + tag, theirs)
        assert ours == re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: " + date, theirs)
        if c.built_in_c > built_before:
            break
    assert c.built_in_c == 1
    assert c.state() == py.state()


def test_a_replayed_answer_gets_no_200_from_c(registry):
    c = Side(registry, native=True)
    py = Side(registry, native=False, key=c.registrar.nonces.native_key())
    auth = answer_for(c.registrar.nonces, DEVICE, SECRETS[DEVICE])
    for n in range(2):  # the second one's 200 would be built in C (same second, Date told)
        data = request(DEVICE, n, auth=answer_for(c.registrar.nonces, DEVICE, SECRETS[DEVICE]))
        assert same_bytes(c.take(data, *HOSTS[0])) == same_bytes(py.take(data, *HOSTS[0]))
    data = request(DEVICE, 5, auth=auth)  # an older nonce than the live registration's, from elsewhere
    replayed = c.take(data, *HOSTS[1])
    assert c.decided[2] == 3 and replayed.startswith(b"SIP/2.0 401 Unauthorized\r\n") and b"stale=TRUE" in replayed
    assert same_bytes(replayed) == same_bytes(py.take(data, *HOSTS[1]))
    assert c.state() == py.state() and c.registrar.failures["replayed"] == 1
