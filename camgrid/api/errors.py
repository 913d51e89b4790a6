"""One JSON error shape for every failure: {"error": {"code": ..., "message": ...}}.

CommandError is the signaling side's error for a device command that could not be carried
out (404 unknown device, 409 offline/unreachable, 502 refused, 504 no answer); it is the
same class as camgrid.signaling.errors.CommandError, so both sides share one type.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from camgrid.governance.passwords import WeakPasswordError
from camgrid.governance.users import UserError, UserExists, UserNotFound
from camgrid.gb28181.ptz import PtzError
from camgrid.registry.channels import ChannelNotFound
from camgrid.registry.devices import DeviceExists, DeviceNotFound, RegistryError
from camgrid.registry.secrets import WeakSecretError
from camgrid.signaling.errors import CommandError

log = logging.getLogger(__name__)

__all__ = ["ApiError", "CommandError", "error_response", "install_error_handlers"]

STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 422: "validation_error", 429: "too_many_requests", 500: "internal_error",
    502: "bad_gateway", 503: "unavailable", 504: "timeout",
}
COMMAND_CODES = {404: "device_unknown", 409: "device_unavailable", 502: "device_refused", 504: "device_timeout"}
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiError(Exception):
    """An error a route raises on purpose; becomes the JSON error body with `status`."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.headers = headers


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                   details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    if status == 401:
        headers = {**BEARER_CHALLENGE, **(headers or {})}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return f"{where} {'.'.join(rest)}" if rest else where
    return ".".join(parts)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
               for e in exc.errors()]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "the request is not valid"
    return error_response(422, "validation_error", message, details=details)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route; see /api/v1/docs"
    return error_response(exc.status_code, STATUS_CODES.get(exc.status_code, "error"), message,
                          headers=getattr(exc, "headers", None))


async def _api(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _command(_: Request, exc: CommandError) -> JSONResponse:
    status = exc.status if 400 <= exc.status < 600 else 502
    return error_response(status, COMMAND_CODES.get(status, STATUS_CODES.get(status, "command_failed")), exc.message)


def _mapped(status: int, code: str | None = None):  # noqa: ANN202
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return error_response(status, code or STATUS_CODES[status], str(exc))
    return handler


# SQLite reports a missing table as an OperationalError too: only these mean "cannot be used now".
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error",
                      "database or disk is full")
DATABASE_RETRY_AFTER_S = 5


def database_unavailable(exc: DBAPIError) -> bool:
    """The database cannot be reached or used now (down, restarting, locked, disk full): a
    condition that passes, unlike a failing statement."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        text = str(exc.orig).lower()
        return any(m in text for m in SQLITE_UNAVAILABLE)
    return True


async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                str(exc.orig).strip().splitlines()[0][:200] if exc.orig else type(exc).__name__)
    return error_response(503, "database_unavailable",
                          "the database cannot be reached now; devices are still answered and video still "
                          "recorded, and what was queued is written when it is back: try again shortly",
                          headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to handle the request; the error is logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api)  # type: ignore[arg-type]
    app.add_exception_handler(CommandError, _command)  # type: ignore[arg-type]
    # Domain errors, most specific first (Starlette looks handlers up along the MRO).
    app.add_exception_handler(DeviceNotFound, _mapped(404))
    app.add_exception_handler(ChannelNotFound, _mapped(404))
    app.add_exception_handler(UserNotFound, _mapped(404))
    app.add_exception_handler(DeviceExists, _mapped(409, "conflict"))
    app.add_exception_handler(UserExists, _mapped(409, "conflict"))
    app.add_exception_handler(WeakPasswordError, _mapped(422, "weak_password"))
    app.add_exception_handler(WeakSecretError, _mapped(422, "weak_secret"))
    app.add_exception_handler(RegistryError, _mapped(422))
    app.add_exception_handler(UserError, _mapped(422))
    app.add_exception_handler(PtzError, _mapped(422))
    app.add_exception_handler(DBAPIError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
