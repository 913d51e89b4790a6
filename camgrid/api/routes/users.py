"""Users (admin only): list, create, disable/enable, change role, reset password."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, record, require
from camgrid.governance import roles, second_factor
from camgrid.governance.users import create_user, get_user, list_users, set_disabled, set_password, set_role

router = APIRouter(prefix="/users", tags=["users"])
Role = Literal["admin", "operator", "maintainer", "viewer"]


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    department_id: str | None = None
    disabled: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None = None
    totp_enabled: bool = False


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    must_change_password: bool = Field(True, description="Make the user choose a new password at first login.")


class UserPatch(BaseModel):
    disabled: bool | None = None
    role: Role | None = None
    password: str | None = Field(None, min_length=1, max_length=1024,
                                 description="A new password; the user must change it at next login.")
    totp_reset: bool | None = Field(None, description="true: turn the user's one-time code off (a lost phone); "
                                    "they can set up a new one after logging in.")


@router.get("", response_model=list[UserOut])
def list_all(request: Request, principal: Principal = require(roles.USERS_ADMIN)) -> list[dict]:
    return list_users(api_context(request).engine)


@router.post("", response_model=UserOut, status_code=201)
def create(body: UserCreate, request: Request, principal: Principal = require(roles.USERS_ADMIN)) -> dict:
    user = create_user(api_context(request).engine, body.username, body.password, body.role,
                       must_change_password=body.must_change_password)
    record(request, principal, "user.create", user["username"], {"role": body.role})
    return user


@router.patch("/{username}", response_model=UserOut)
def patch(username: str, body: UserPatch, request: Request, principal: Principal = require(roles.USERS_ADMIN)) -> dict:
    engine = api_context(request).engine
    user = get_user(engine, username)
    if user is None:
        raise ApiError(404, f"user {username!r} does not exist")
    if user["id"] == principal.user_id and (body.disabled or (body.role and body.role != "admin")):
        raise ApiError(409, "an administrator cannot disable or demote their own account; ask another administrator")
    changes: dict[str, object] = {}
    if body.password is not None:
        set_password(engine, user["id"], body.password, must_change=True)
        changes["password"] = "reset"
    if body.role is not None and body.role != user["role"]:
        set_role(engine, user["username"], body.role)
        changes["role"] = body.role
    if body.disabled is not None and body.disabled != user["disabled"]:
        set_disabled(engine, user["username"], body.disabled)
        changes["disabled"] = body.disabled
    if body.totp_reset and user.get("totp_enabled"):
        second_factor.disable(engine, user["id"])
        changes["totp"] = "reset"
    if changes:
        record(request, principal, "user.update", user["username"], changes)
    return get_user(engine, user["username"])  # type: ignore[return-value]
