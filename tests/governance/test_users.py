"""Users, tokens, bootstrap and audit on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from camgrid.governance.audit import audit, list_audit
from camgrid.governance.passwords import WeakPasswordError, hash_password
from camgrid.governance.users import (
    UserError,
    UserExists,
    UserNotFound,
    authenticate,
    create_user,
    first_run_bootstrap,
    issue_token,
    list_users,
    resolve_token,
    revoke_token,
    set_disabled,
    set_role,
    token_hash,
)
from camgrid.store.engine import utcnow
from camgrid.store.tables import tokens, users

PASSWORD = "Correct-Horse-42"


def test_create_and_authenticate(engine):
    user = create_user(engine, "Alice", PASSWORD, "operator")
    assert user["username"] == "alice" and user["role"] == "operator" and "password_hash" not in user
    with pytest.raises(UserExists):
        create_user(engine, "ALICE", PASSWORD, "viewer")
    with pytest.raises(WeakPasswordError):
        create_user(engine, "bob", "password", "viewer")
    with pytest.raises(UserError, match="role"):
        create_user(engine, "bob", PASSWORD, "root")
    with pytest.raises(UserError, match="username"):
        create_user(engine, "no spaces!", PASSWORD, "viewer")
    ok = authenticate(engine, "alice", PASSWORD)
    assert ok is not None and ok["id"] == user["id"] and ok["last_login_at"] is not None
    assert authenticate(engine, "alice", "wrong-password") is None
    assert authenticate(engine, "nobody", PASSWORD) is None
    assert [u["username"] for u in list_users(engine)] == ["alice"]


def test_authenticate_upgrades_old_hashes(engine):
    from argon2 import PasswordHasher, Type

    user = create_user(engine, "carol", PASSWORD, "viewer")
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user["id"]).values(password_hash=old))
    assert authenticate(engine, "carol", PASSWORD) is not None
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == user["id"])).scalar_one()
    assert stored != old and stored.startswith("$argon2id$")


def test_tokens(engine):
    user = create_user(engine, "dave", PASSWORD, "viewer")
    token = issue_token(engine, user["id"], 600)
    with engine.connect() as conn:
        stored = conn.execute(select(tokens.c.token_hash)).scalars().all()
    assert stored == [token_hash(token)] and token not in stored
    resolved = resolve_token(engine, token)
    assert resolved["username"] == "dave" and resolved["token_expires_at"] > utcnow()
    assert resolve_token(engine, token, now=utcnow() + timedelta(seconds=601)) is None
    assert resolve_token(engine, "forged") is None and resolve_token(engine, "") is None
    expired = issue_token(engine, user["id"], 60, now=utcnow() - timedelta(hours=1))
    assert resolve_token(engine, expired) is None
    assert revoke_token(engine, token) and resolve_token(engine, token) is None
    # Issuing purges expired tokens.
    issue_token(engine, user["id"], 600)
    with engine.connect() as conn:
        assert token_hash(expired) not in conn.execute(select(tokens.c.token_hash)).scalars().all()


def test_disable_revokes_and_blocks(engine):
    user = create_user(engine, "erin", PASSWORD, "viewer")
    token = issue_token(engine, user["id"], 600)
    assert set_disabled(engine, "erin", True)["disabled"] is True
    assert resolve_token(engine, token) is None
    assert authenticate(engine, "erin", PASSWORD) is None
    set_disabled(engine, "erin", False)
    assert authenticate(engine, "erin", PASSWORD) is not None
    with pytest.raises(UserNotFound):
        set_disabled(engine, "nobody", True)
    assert set_role(engine, "erin", "operator")["role"] == "operator"
    with pytest.raises(UserNotFound):
        set_role(engine, "nobody", "viewer")


def test_first_run_bootstrap(engine):
    password = first_run_bootstrap(engine)
    assert password and len(password) >= 12
    admin = authenticate(engine, "admin", password)
    assert admin["role"] == "admin" and admin["must_change_password"] is True
    assert first_run_bootstrap(engine) is None  # never a second time, never a known password
    assert len(list_users(engine)) == 1


def test_bootstrap_does_nothing_when_users_exist(engine):
    create_user(engine, "frank", PASSWORD, "admin")
    assert first_run_bootstrap(engine) is None
    assert [u["username"] for u in list_users(engine)] == ["frank"]


def test_audit(engine):
    audit(engine, "alice", "device.view", "34020000001320000001", {"at": utcnow()}, "10.1.2.3")
    with engine.begin() as conn:
        audit(conn, "bob", "user.create", "carol")
    rows = list_audit(engine)
    assert [r["action"] for r in rows] == ["user.create", "device.view"]
    assert rows[1]["source_addr"] == "10.1.2.3" and isinstance(rows[1]["detail"]["at"], str)
    assert [r["actor"] for r in list_audit(engine, actor="alice")] == ["alice"]


def test_hash_password_never_stores_clear_text(engine):
    create_user(engine, "gina", PASSWORD, "viewer")
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert PASSWORD not in stored and stored.startswith("$argon2id$") and stored != hash_password(PASSWORD)
