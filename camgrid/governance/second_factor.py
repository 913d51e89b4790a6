"""Each user's optional second factor (TOTP) in the database: set up (a new secret, not yet
required), enable (once a code from the app proves it is set up), check at login, turn off.
Blocking; the API calls it from a worker thread."""

from __future__ import annotations

from sqlalchemy import Engine, or_, select, update

from camgrid.governance import totp
from camgrid.governance.users import UserError, UserNotFound
from camgrid.store.tables import users


def _row(engine: Engine, user_id: int):  # noqa: ANN202
    with engine.connect() as conn:
        row = conn.execute(select(users.c.id, users.c.username, users.c.totp_secret, users.c.totp_enabled,
                                  users.c.totp_last_step).where(users.c.id == user_id)).mappings().first()
    if row is None:
        raise UserNotFound(f"user #{user_id} does not exist")
    return row


def begin(engine: Engine, user_id: int, key: bytes) -> tuple[str, str]:
    """A new secret for the user (replacing one not yet enabled); returns (secret, otpauth URI).
    Login does not ask for codes until `enable` confirms one."""
    row = _row(engine, user_id)
    if row["totp_enabled"]:
        raise UserError("the one-time code is on already; turn it off first to set up another phone")
    secret = totp.new_secret()
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(
            totp_secret=totp.seal(secret, key, user_id), totp_enabled=False, totp_last_step=None))
    return secret, totp.provisioning_uri(secret, row["username"])


def enable(engine: Engine, user_id: int, code: str, key: bytes, *, now: float | None = None) -> bool:
    """Turn the second factor on if `code` matches the secret set up; False if it does not."""
    row = _row(engine, user_id)
    if row["totp_enabled"]:
        raise UserError("the one-time code is on already")
    if row["totp_secret"] is None:
        raise UserError("set up the one-time code first (POST /api/v1/auth/totp/setup)")
    step = totp.match(totp.unseal(row["totp_secret"], key, user_id), code, now=now)
    if step is None:
        return False
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(totp_enabled=True, totp_last_step=step))
    return True


def verify(engine: Engine, user_id: int, code: str, key: bytes, *, now: float | None = None) -> bool:
    """A login's code: right for now and not used before (also not by a concurrent login)."""
    row = _row(engine, user_id)
    if not row["totp_enabled"] or row["totp_secret"] is None:
        return False
    step = totp.match(totp.unseal(row["totp_secret"], key, user_id), code, now=now, after_step=row["totp_last_step"])
    if step is None:
        return False
    with engine.begin() as conn:  # only one login can move the step forward to this one
        moved = conn.execute(update(users).where(users.c.id == user_id, or_(
            users.c.totp_last_step.is_(None), users.c.totp_last_step < step)).values(totp_last_step=step))
    return moved.rowcount == 1


def disable(engine: Engine, user_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(totp_secret=None, totp_enabled=False,
                                                                       totp_last_step=None))
