"""GET /v1/inventory/violations: unapproved and prohibited software and devices (IT and the city administrator:
the city's; a department head: their department's)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from civicaup.governance import inventory
from civicaup.interfaces.api.deps import ADMIN, Ctx

router = APIRouter(prefix="/inventory", tags=["inventory"])


@router.get("/violations")
def violations(ctx: Ctx) -> list[dict[str, Any]]:
    if ctx.roles & ADMIN:
        return inventory.violations(ctx.engine, ctx.pack.id)
    ctx.require({"department-head"}, "see inventory violations")
    return inventory.violations(ctx.engine, ctx.pack.id, department=ctx.me.department)


@router.get("/licences")
def licences(ctx: Ctx) -> list[dict[str, Any]]:
    """The approved list with licence terms (home use); anyone may read it."""
    return [x.to_json() for x in inventory.licence_list(ctx.engine, ctx.pack.id)]
