"""User accounts and bearer tokens (SQLAlchemy Core on the users and tokens tables).

There is never a default or known account: the first start creates "admin" with a random
one-time password that must be changed (`first_run_bootstrap`). Tokens are random
(secrets.token_urlsafe(32)); only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from camgrid.governance.passwords import (
    WeakPasswordError,
    check_password_policy,
    hash_password,
    verify_password,
)
from camgrid.governance.roles import ROLES
from camgrid.store.engine import utcnow
from camgrid.store.tables import tokens, users

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
BOOTSTRAP_USERNAME = "admin"
# Columns handed out: never the password hash.
SECRET_COLUMNS = frozenset({"password_hash", "totp_secret", "totp_last_step"})
PUBLIC_COLUMNS = [c for c in users.c if c.name not in SECRET_COLUMNS]

_dummy_hash: str | None = None


class UserError(ValueError):
    """Bad input about a user; the message says what is wrong."""


class UserExists(UserError):
    pass


class UserNotFound(UserError):
    pass


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _public(row: Any) -> dict[str, Any]:
    out = {c.name: row[c.name] for c in PUBLIC_COLUMNS}
    out["created_at"] = _aware(out["created_at"])
    out["last_login_at"] = _aware(out["last_login_at"])
    out["disabled"] = bool(out["disabled"])
    out["must_change_password"] = bool(out["must_change_password"])
    out["totp_enabled"] = bool(out.get("totp_enabled"))
    return out


def normalise_username(username: str) -> str:
    """Lower-case the name and check it: 3-64 of a-z 0-9 . _ -, starting with a letter or digit."""
    name = (username or "").strip().lower()
    if not USERNAME_RE.match(name):
        raise UserError(f"username {username!r} is not valid: use 3-64 characters a-z, 0-9, '.', '_' or '-', "
                        "starting with a letter or digit")
    return name


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def create_user(engine: Engine, username: str, password: str, role: str, *,
                must_change_password: bool = False, department_id: str | None = None) -> dict[str, Any]:
    """Create a user. Raises UserError, WeakPasswordError or UserExists."""
    name = normalise_username(username)
    validate_role(role)
    check_password_policy(password, name)
    row = {"username": name, "password_hash": hash_password(password), "role": role,
           "department_id": department_id, "disabled": False, "must_change_password": must_change_password,
           "created_at": utcnow()}
    try:
        with engine.begin() as conn:
            conn.execute(users.insert(), row)
    except IntegrityError:
        raise UserExists(f"user {name!r} already exists") from None
    user = get_user(engine, name)
    assert user is not None
    return user


def get_user(engine: Engine, username: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(*PUBLIC_COLUMNS).where(users.c.username == (username or "").strip().lower())
                           ).mappings().first()
    return _public(row) if row is not None else None


def get_user_by_id(engine: Engine, user_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(*PUBLIC_COLUMNS).where(users.c.id == user_id)).mappings().first()
    return _public(row) if row is not None else None


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [_public(r) for r in conn.execute(select(*PUBLIC_COLUMNS).order_by(users.c.username)).mappings()]


def count_users(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(users)).scalar_one()


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(24))
    return _dummy_hash


def authenticate(engine: Engine, username: str, password: str) -> dict[str, Any] | None:
    """The user if the password matches and the account is enabled, else None.

    An unknown username still costs one argon2 verification, so response time does not
    tell which usernames exist.
    """
    name = (username or "").strip().lower()
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == name)).mappings().first()
    if row is None:
        verify_password(_dummy(), password or "")
        return None
    ok, new_hash = verify_password(row["password_hash"], password or "")
    if not ok or row["disabled"]:
        return None
    values: dict[str, Any] = {"last_login_at": utcnow()}
    if new_hash:
        values["password_hash"] = new_hash
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
    user = _public(row)
    user["last_login_at"] = values["last_login_at"]
    return user


def check_password(engine: Engine, user_id: int, password: str) -> bool:
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar_one_or_none()
    if stored is None:
        verify_password(_dummy(), password or "")
        return False
    return verify_password(stored, password or "")[0]


def set_password(engine: Engine, user_id: int, password: str, *, must_change: bool = False,
                 keep_token: str | None = None) -> None:
    """Set a new password (policy checked) and revoke the user's tokens except `keep_token`."""
    user = get_user_by_id(engine, user_id)
    if user is None:
        raise UserNotFound(f"user #{user_id} does not exist")
    check_password_policy(password, user["username"])
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(
            password_hash=hash_password(password), must_change_password=must_change))
        stmt = delete(tokens).where(tokens.c.user_id == user_id)
        if keep_token:
            stmt = stmt.where(tokens.c.token_hash != token_hash(keep_token))
        conn.execute(stmt)


def set_disabled(engine: Engine, username: str, disabled: bool) -> dict[str, Any]:
    """Disable (and sign out everywhere) or re-enable a user. Raises UserNotFound."""
    name = (username or "").strip().lower()
    with engine.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == name)).scalar_one_or_none()
        if user_id is None:
            raise UserNotFound(f"user {name!r} does not exist")
        conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
        if disabled:
            conn.execute(delete(tokens).where(tokens.c.user_id == user_id))
    user = get_user_by_id(engine, user_id)
    assert user is not None
    return user


def set_role(engine: Engine, username: str, role: str) -> dict[str, Any]:
    """Change a user's role (takes effect on their next request). Raises UserNotFound, UserError."""
    validate_role(role)
    name = (username or "").strip().lower()
    with engine.begin() as conn:
        found = conn.execute(update(users).where(users.c.username == name).values(role=role)).rowcount > 0
    if not found:
        raise UserNotFound(f"user {name!r} does not exist")
    user = get_user(engine, name)
    assert user is not None
    return user


# -- tokens ---------------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(engine: Engine, user_id: int, ttl_s: int, *, now: datetime | None = None) -> str:
    """A new bearer token for the user, valid for ttl_s seconds; expired tokens are purged."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(delete(tokens).where(tokens.c.expires_at < utcnow()))
        conn.execute(tokens.insert(), {"token_hash": token_hash(token), "user_id": user_id, "created_at": now,
                                       "expires_at": now + timedelta(seconds=ttl_s)})
    return token


def resolve_token(engine: Engine, token: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The user a live token belongs to (with "token_expires_at"), or None when the token is
    unknown, expired or its user is disabled."""
    if not token or len(token) > 512:
        return None
    now = now or utcnow()
    stmt = (select(*PUBLIC_COLUMNS, tokens.c.expires_at.label("token_expires_at"))
            .select_from(tokens.join(users, users.c.id == tokens.c.user_id))
            .where(tokens.c.token_hash == token_hash(token)))
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    expires_at = _aware(row["token_expires_at"])
    if expires_at <= now or row["disabled"]:
        return None
    user = _public(row)
    user["token_expires_at"] = expires_at
    return user


def revoke_token(engine: Engine, token: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(delete(tokens).where(tokens.c.token_hash == token_hash(token))).rowcount > 0


# -- first start ----------------------------------------------------------------------------------
def _one_time_password() -> str:
    while True:
        candidate = secrets.token_urlsafe(18)  # 24 characters, ~144 bits
        try:
            check_password_policy(candidate, BOOTSTRAP_USERNAME)
            return candidate
        except WeakPasswordError:
            continue


def first_run_bootstrap(engine: Engine) -> str | None:
    """With no user at all, create "admin" with a random one-time password that must be changed
    at first login, and return that password (to be shown once). Otherwise return None."""
    if count_users(engine) > 0:
        return None
    password = _one_time_password()
    try:
        create_user(engine, BOOTSTRAP_USERNAME, password, "admin", must_change_password=True)
    except UserExists:  # another process bootstrapped at the same moment
        return None
    return password
