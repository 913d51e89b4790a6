"""Deny by default: every protected route depends on a valid bearer token (router level) and
states the permission it needs with `require("perm")` (route level)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from camgrid.api.errors import ApiError
from camgrid.governance.audit import audit
from camgrid.governance.roles import ACCOUNT_SELF, ALL_PERMISSIONS, has_permission
from camgrid.governance.users import resolve_token

bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login.")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    must_change_password: bool
    token: str
    token_expires_at: datetime


def api_context(request: Request) -> Any:
    """The ApiContext the app was built with."""
    return request.app.state.ctx


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_principal(request: Request,
                      credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
    """The authenticated caller, or 401. FastAPI caches it per request, so the router-level
    dependency and each route's `require` share one token lookup."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(401, "this route needs a bearer token: log in at POST /api/v1/auth/login and send "
                            "'Authorization: Bearer <token>'")
    user = resolve_token(api_context(request).engine, credentials.credentials)
    if user is None:
        raise ApiError(401, "the token is unknown, expired or revoked, or the account is disabled; log in again",
                       code="invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    principal = Principal(user["id"], user["username"], user["role"], user["must_change_password"],
                          credentials.credentials, user["token_expires_at"])
    request.state.principal = principal
    return principal


def require(permission: str) -> Any:
    """A route dependency that admits only callers whose role grants `permission`.

    Use as a parameter default: ``principal: Principal = require("devices:read")``.
    """
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.must_change_password and permission != ACCOUNT_SELF:
            raise ApiError(403, "the password of this account must be changed first: POST /api/v1/auth/password",
                           code="password_change_required")
        if not has_permission(principal.role, permission):
            raise ApiError(403, f"this needs the permission {permission!r}, which the role "
                                f"{principal.role!r} does not have")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the route-coverage test
    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return Depends(dependency)


def route_permissions(dependant: Any) -> set[str]:
    """Every permission a route's dependency tree requires (for tests and docs)."""
    found: set[str] = set()
    stack = [dependant]
    while stack:
        dep = stack.pop()
        perm = getattr(dep.call, "permission", None)
        if perm:
            found.add(perm)
        stack.extend(dep.dependencies)
    return found


def record(request: Request, principal: Principal | None, action: str, target: str = "",
           detail: dict[str, Any] | None = None, *, actor: str | None = None) -> None:
    """Write an audit row for this request (synchronous: call from a worker thread)."""
    audit(api_context(request).engine, actor or (principal.username if principal else "anonymous"), action,
          target, detail, client_addr(request))
