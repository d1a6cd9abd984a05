"""/v1/acknowledgements and /v1/training: acknowledge the current policy; who is missing what (HR and the city
administrator: everyone; a department head: their department)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from civicaup.governance import acknowledgements as acks
from civicaup.interfaces.api.deps import Ctx

router = APIRouter(tags=["acknowledgements"])
HR = frozenset({"hr", "city-administrator"})


def _scope(ctx: Ctx, what: str) -> str | None:
    if ctx.roles & HR:
        return None
    ctx.require({"department-head"}, what)
    return ctx.me.department


@router.post("/acknowledgements")
def acknowledge(ctx: Ctx) -> dict[str, Any]:
    """This person acknowledges the current version of the policy."""
    return {"message": acks.record(ctx.engine, ctx.pack, ctx.me.email), "version": ctx.pack.pack.version}


@router.get("/acknowledgements/missing")
def missing(ctx: Ctx) -> dict[str, Any]:
    return acks.missing(ctx.engine, ctx.pack, department=_scope(ctx, "see missing acknowledgements"))


@router.get("/training/missing")
def training_missing(ctx: Ctx) -> dict[str, Any]:
    return acks.training_missing(ctx.engine, ctx.pack, department=_scope(ctx, "see missing training"))
