"""GET /v1/me: who the token acts as."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from civicaup.interfaces.api.deps import Ctx

router = APIRouter(tags=["me"])


@router.get("/me")
def me(ctx: Ctx) -> dict[str, Any]:
    """The person, their city and their roles."""
    p = ctx.me
    return {"email": p.email, "name": p.name, "department": p.department, "title": p.title,
            "roles": sorted(ctx.roles), "policy": ctx.pack.id, "city": ctx.pack.pack.city.name,
            "policy_version": ctx.pack.pack.version}
