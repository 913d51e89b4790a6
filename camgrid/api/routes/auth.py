"""Log in, log out, who am I, change my password."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, client_addr, record, require
from camgrid.governance.roles import ACCOUNT_SELF, ROLE_PERMISSIONS
from camgrid.governance.users import authenticate, check_password, issue_token, revoke_token, set_password
from camgrid.store.engine import utcnow

public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    must_change_password: bool


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    id: int
    username: str
    role: str
    permissions: list[str]
    must_change_password: bool
    token_expires_at: datetime


@public_router.post("/login", response_model=TokenResponse,
                    responses={401: {"description": "Wrong username or password"},
                               429: {"description": "Too many failed logins; see Retry-After"}})
def login(body: LoginRequest, request: Request) -> TokenResponse:
    ctx = api_context(request)
    throttle = request.app.state.throttle
    addr = client_addr(request)
    wait = throttle.check(body.username, addr)
    if wait:
        raise ApiError(429, f"too many failed logins; try again in {wait} s", headers={"Retry-After": str(wait)})
    user = authenticate(ctx.engine, body.username, body.password)
    if user is None:
        throttle.failure(body.username, addr)
        record(request, None, "auth.login_failed", body.username[:64], actor=body.username[:64] or "anonymous")
        raise ApiError(401, "wrong username or password, or the account is disabled", code="invalid_credentials")
    throttle.success(body.username, addr)
    now = utcnow()
    ttl = ctx.settings.http.token_ttl_s
    token = issue_token(ctx.engine, user["id"], ttl, now=now)
    record(request, None, "auth.login", user["username"], actor=user["username"])
    return TokenResponse(access_token=token, expires_at=now + timedelta(seconds=ttl),
                         must_change_password=user["must_change_password"])


@router.post("/logout", status_code=204)
def logout(request: Request, principal: Principal = require(ACCOUNT_SELF)) -> Response:
    revoke_token(api_context(request).engine, principal.token)
    record(request, principal, "auth.logout", principal.username)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(principal: Principal = require(ACCOUNT_SELF)) -> Me:
    return Me(id=principal.user_id, username=principal.username, role=principal.role,
              permissions=sorted(ROLE_PERMISSIONS.get(principal.role, ())),
              must_change_password=principal.must_change_password, token_expires_at=principal.token_expires_at)


@router.post("/password", status_code=204, responses={403: {"description": "The current password is wrong"}})
def change_password(body: PasswordChange, request: Request, principal: Principal = require(ACCOUNT_SELF)) -> Response:
    """Change one's own password. Other sessions of this user are signed out; this one stays."""
    engine = api_context(request).engine
    throttle, addr = request.app.state.throttle, client_addr(request)
    wait = throttle.check(principal.username, addr)
    if wait:
        raise ApiError(429, f"too many failed attempts; try again in {wait} s", headers={"Retry-After": str(wait)})
    if not check_password(engine, principal.user_id, body.current_password):
        throttle.failure(principal.username, addr)
        record(request, principal, "auth.password_change_failed", principal.username)
        raise ApiError(403, "the current password is wrong", code="invalid_credentials")
    if body.new_password == body.current_password:
        raise ApiError(422, "the new password must differ from the current one", code="weak_password")
    set_password(engine, principal.user_id, body.new_password, keep_token=principal.token)
    record(request, principal, "auth.password_change", principal.username)
    return Response(status_code=204)
