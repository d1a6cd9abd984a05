"""The ASGI application: REST API under /v1 (OpenAPI at /openapi.json) and the web console under /console."""
from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine

import civicaup
from civicaup.interfaces.api import errors
from civicaup.interfaces.api.routes import (acks, approvals, audit, cases, coverage, decide, directory, inventory,
                                            me, quarantine)
from civicaup.stores.db import open_store


def create_app(*, policies: Iterable[str] | None = None, engine: Engine | None = None) -> FastAPI:
    """The app; `policies` limits which cities' tokens it accepts (None: every city in the store)."""
    app = FastAPI(title="civicaup", version=getattr(civicaup, "__version__", "0.1.0"),
                  description="A city's acceptable-use policy as software: decisions that cite their clause, "
                              "approvals, quarantine, cases and the audit log. Every route acts as the person a "
                              "bearer token names, in that person's city only.")
    app.state.engine = engine or open_store()
    app.state.policies = frozenset(policies) if policies is not None else None
    errors.install(app)
    for module in (me, decide, directory, approvals, quarantine, cases, audit, coverage, inventory, acks):
        app.include_router(module.router, prefix="/v1")
    from civicaup.interfaces.api.routes import metrics
    app.include_router(metrics.router)  # /metrics, outside /v1: open to loopback, else an `it` bearer token
    from civicaup.interfaces.console.routes import mount
    mount(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    return app
