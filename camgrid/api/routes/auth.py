"""Log in (with the one-time code when the account has one), log out, who am I, change my
password, set up or turn off the one-time code (TOTP)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, client_addr, record, require
from camgrid.governance.roles import ACCOUNT_SELF, ROLE_PERMISSIONS
from camgrid.governance import second_factor, totp
from camgrid.governance.users import (UserError, authenticate, check_password, get_user_by_id, issue_token,
                                     revoke_token, set_password)
from camgrid.store.engine import utcnow

public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(None, max_length=12, description="The 6-digit code from the authenticator app, "
                             "for accounts that turned the one-time code on.")


class TotpSetup(BaseModel):
    password: str = Field(min_length=1, max_length=1024, description="The account's password, again.")


class TotpCode(BaseModel):
    code: str = Field(min_length=6, max_length=12)


class TotpOff(BaseModel):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=6, max_length=12)


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
    totp_enabled: bool = False


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
    if user["totp_enabled"]:
        if not body.totp:
            raise ApiError(401, "this account asks for its one-time code: enter the 6 digits from the authenticator "
                                "app", code="totp_required")
        if not second_factor.verify(ctx.engine, user["id"], body.totp, _totp_key(ctx)):
            throttle.failure(body.username, addr)
            record(request, None, "auth.totp_failed", user["username"], actor=user["username"])
            raise ApiError(401, "the one-time code is wrong or was used already; wait for the next one (check "
                                "that the phone's clock is right)", code="totp_invalid")
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
def me(request: Request, principal: Principal = require(ACCOUNT_SELF)) -> Me:
    user = get_user_by_id(api_context(request).engine, principal.user_id) or {}
    return Me(id=principal.user_id, username=principal.username, role=principal.role,
              permissions=sorted(ROLE_PERMISSIONS.get(principal.role, ())),
              must_change_password=principal.must_change_password, token_expires_at=principal.token_expires_at,
              totp_enabled=bool(user.get("totp_enabled")))


def _totp_key(ctx) -> bytes:  # noqa: ANN001
    return totp.load_or_create_key(ctx.settings.totp_key_file)


def _password_again(request: Request, principal: Principal, password: str) -> None:
    throttle, addr = request.app.state.throttle, client_addr(request)
    wait = throttle.check(principal.username, addr)
    if wait:
        raise ApiError(429, f"too many failed attempts; try again in {wait} s", headers={"Retry-After": str(wait)})
    if not check_password(api_context(request).engine, principal.user_id, password):
        throttle.failure(principal.username, addr)
        raise ApiError(403, "the password is wrong", code="invalid_credentials")


@router.post("/totp/setup")
def totp_setup(body: TotpSetup, request: Request, principal: Principal = require(ACCOUNT_SELF)) -> dict[str, str]:
    """A new secret for the authenticator app (scan `otpauth_uri` as a QR code, or type `secret`).
    Login asks for codes only after POST /auth/totp/enable with a code that matches."""
    _password_again(request, principal, body.password)
    ctx = api_context(request)
    try:
        secret, uri = second_factor.begin(ctx.engine, principal.user_id, _totp_key(ctx))
    except UserError as exc:
        raise ApiError(409, str(exc)) from None
    record(request, principal, "auth.totp_setup", principal.username)
    return {"secret": secret, "otpauth_uri": uri}


@router.post("/totp/enable", status_code=204)
def totp_enable(body: TotpCode, request: Request, principal: Principal = require(ACCOUNT_SELF)) -> Response:
    """Turn the one-time code on with a first code from the app (proves the app has the secret)."""
    ctx = api_context(request)
    try:
        ok = second_factor.enable(ctx.engine, principal.user_id, body.code, _totp_key(ctx))
    except UserError as exc:
        raise ApiError(409, str(exc)) from None
    if not ok:
        raise ApiError(400, "the code does not match: type the current 6 digits, and check the phone's clock",
                       code="totp_invalid")
    record(request, principal, "auth.totp_enable", principal.username)
    return Response(status_code=204)


@router.post("/totp/disable", status_code=204)
def totp_disable(body: TotpOff, request: Request, principal: Principal = require(ACCOUNT_SELF)) -> Response:
    """Turn the one-time code off, with the password and a current code (a lost phone: an
    administrator resets it with PATCH /users/{name} {"totp_reset": true})."""
    _password_again(request, principal, body.password)
    ctx = api_context(request)
    if not second_factor.verify(ctx.engine, principal.user_id, body.code, _totp_key(ctx)):
        raise ApiError(403, "the one-time code is wrong or was used already", code="totp_invalid")
    second_factor.disable(ctx.engine, principal.user_id)
    record(request, principal, "auth.totp_disable", principal.username)
    return Response(status_code=204)


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
