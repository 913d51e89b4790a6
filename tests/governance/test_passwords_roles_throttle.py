"""Password policy and hashing, roles, login throttle (no database)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from camgrid.governance.passwords import WeakPasswordError, check_password_policy, hash_password, verify_password
from camgrid.governance.roles import ALL_PERMISSIONS, ROLE_PERMISSIONS, has_permission
from camgrid.governance.throttle import LoginThrottle


@pytest.mark.parametrize(("password", "why"), [
    ("", "empty"), ("Short-1", "at least 12"), ("alllowercaseletters", "one kind"),
    ("123456789012", "one kind"), ("aA1aA1aA1aA1", "different"), ("myname-Secret-1", "username"),
    ("x" * 300 + "A1", "longer"),
])
def test_policy_refuses_weak_passwords(password, why):
    with pytest.raises(WeakPasswordError, match=why):
        check_password_policy(password, "myname")


def test_policy_accepts_reasonable_passwords():
    for ok in ("Correct-Horse-42", "correct horse battery staple 9", "Zürich-Bahnhof-77"):
        check_password_policy(ok, "alice")


def test_hash_is_argon2id_and_verifies():
    h = hash_password("Correct-Horse-42")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "Correct-Horse-42") == (True, None)
    assert verify_password(h, "wrong") == (False, None)
    assert verify_password("not a hash", "x") == (False, None)


def test_old_parameters_are_rehashed():
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash("Correct-Horse-42")
    ok, new_hash = verify_password(weak, "Correct-Horse-42")
    assert ok and new_hash and new_hash != weak and verify_password(new_hash, "Correct-Horse-42") == (True, None)


def test_roles():
    assert ROLE_PERMISSIONS["admin"] == ALL_PERMISSIONS
    viewer, operator = ROLE_PERMISSIONS["viewer"], ROLE_PERMISSIONS["operator"]
    assert viewer < operator < ALL_PERMISSIONS
    assert not any(p.endswith(":write") or p.startswith("commands:") or p == "users:admin" for p in viewer)
    assert has_permission("operator", "commands:ptz") and not has_permission("operator", "users:admin")
    assert not has_permission("nobody", "devices:read")
    with pytest.raises(ValueError):
        has_permission("admin", "devices:delete-everything")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_throttle_by_username_and_address():
    clock = Clock()
    th = LoginThrottle(3, 60, clock)
    for _ in range(3):
        assert th.check("alice", "10.0.0.1") == 0
        th.failure("Alice", "10.0.0.1")
    assert th.check("alice", "10.0.0.2") == 60  # the username is throttled from anywhere
    assert th.check("bob", "10.0.0.1") == 60  # and the address for any username
    assert th.check("bob", "10.0.0.2") == 0
    clock.t += 45
    assert th.check("alice", None) == 15
    clock.t += 15
    assert th.check("alice", "10.0.0.1") == 0


def test_throttle_success_clears_the_username_only():
    th = LoginThrottle(2, 60, Clock())
    th.failure("alice", "10.0.0.1")
    th.failure("bob", "10.0.0.1")
    th.success("bob", "10.0.0.1")
    assert th.check("bob", None) == 0
    assert th.check("carol", "10.0.0.1") > 0


def test_throttle_memory_is_bounded():
    th = LoginThrottle(5, 60, Clock(), max_keys=100)
    for i in range(1000):
        th.failure(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(th) == 100
    with pytest.raises(ValueError):
        LoginThrottle(0, 60)
