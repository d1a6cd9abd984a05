"""GET /metrics: the Prometheus text exposition of every civicaup process on this host (decisions, latency,
errors, archive ingest) and the quarantine gauges read from the store now.

Who may read it: a client on the loopback interface without any credential (Prometheus on the same host, as
scrapes usually are; a reverse proxy in front of ``serve`` must protect /metrics itself), anyone else with a
bearer token of a person whose roles include ``it``, as for the rest of the API. The figures are counts per
pack, channel, action and category: no person, address, subject or URL is in them.
"""
from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from civicaup.governance.errors import AuthError, ForbiddenError
from civicaup.interfaces.api.deps import bearer, principal_from

router = APIRouter()


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _allowed(request: Request, creds: HTTPAuthorizationCredentials | None) -> None:
    if is_loopback(request.client.host if request.client else None):
        return
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("a bearer token is required for /metrics from another host (Authorization: Bearer <token>)")
    principal = principal_from(request, creds.credentials)
    if "it" not in principal.roles:
        raise ForbiddenError(f"{principal.person.email} may not read /metrics (needs it)")


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Response:
    """Prometheus text format (version 0.0.4)."""
    from civicaup import settings
    from civicaup.operations import metrics as m
    from civicaup.operations.quarantine_gauges import QuarantineCollector

    _allowed(request, creds)
    served = request.app.state.policies
    packs = sorted(served) if served is not None else list(settings.load().packs)
    body, content_type = m.exposition(QuarantineCollector(request.app.state.engine, packs))
    return Response(body, media_type=content_type)
