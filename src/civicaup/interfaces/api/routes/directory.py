"""GET /v1/directory: people of the token's city. IT, HR, the city administrator and the clerk see everyone;
a department head sees their department; anyone else sees only themselves."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from civicaup.governance.errors import ForbiddenError, NotFoundError
from civicaup.governance.people import same_department
from civicaup.interfaces.api.deps import OVERSIGHT, Ctx
from civicaup.stores.directory import Person, find_person, list_people

router = APIRouter(prefix="/directory", tags=["directory"])


def _json(p: Person) -> dict[str, Any]:
    return {"email": p.email, "name": p.name, "department": p.department, "title": p.title, "roles": list(p.roles),
            "active": p.active}


def _may_see(ctx: Ctx, p: Person) -> bool:
    if ctx.roles & OVERSIGHT or p.email == ctx.me.email:
        return True
    return "department-head" in ctx.roles and same_department(p.department, ctx.me.department)


@router.get("")
def list_directory(ctx: Ctx, role: str | None = Query(None, max_length=64)) -> list[dict[str, Any]]:
    """The people this person may see."""
    return [_json(p) for p in list_people(ctx.engine, ctx.pack.id, role=role) if _may_see(ctx, p)]


@router.get("/{email}")
def get_person(email: str, ctx: Ctx) -> dict[str, Any]:
    """One person of this city."""
    p = find_person(ctx.engine, ctx.pack.id, email)
    if p is None:
        raise NotFoundError(f"no {email} in the directory of {ctx.pack.id}")
    if not _may_see(ctx, p):
        raise ForbiddenError(f"{ctx.me.email} may not see {p.email}")
    return _json(p)
