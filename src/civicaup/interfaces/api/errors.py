"""Errors as statuses: one table of error families, found by walking the exception's MRO (a subclass can
override its family). Bad input is always 4xx; only a fault of the server or its neighbours is 5xx."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from civicaup.channels.mail import quarantine
from civicaup.channels.mail.delivery import DeliveryError
from civicaup.errors import CivicaupError, InputError, PackError, UnknownPolicyError
from civicaup.governance.errors import AuthError, ConflictError, ForbiddenError, NotFoundError
from civicaup.stores.db import StoreError

log = logging.getLogger("civicaup.api")

STATUS: dict[type[BaseException], int] = {
    AuthError: 401,
    ForbiddenError: 403,
    quarantine.NotPermitted: 403,
    NotFoundError: 404,
    quarantine.NotFound: 404,
    UnknownPolicyError: 404,
    ConflictError: 409,
    InputError: 400,
    DeliveryError: 502,
    StoreError: 503,
    PackError: 500,
    CivicaupError: 500,
}


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def body(kind: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"type": kind, "message": message}}


async def civicaup_error(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if status >= 500:
        log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, message)
    if request.url.path.startswith("/console"):
        from civicaup.interfaces.console.routes import error_page
        return error_page(request, exc, status)  # type: ignore[arg-type, return-value]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body(type(exc).__name__, message), status_code=status, headers=headers)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse(body("InternalError", "internal error; see the server log"), status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers: Starlette looks them up by the exception's MRO, so one covers a family."""
    app.add_exception_handler(CivicaupError, civicaup_error)
    app.add_exception_handler(Exception, unexpected)
