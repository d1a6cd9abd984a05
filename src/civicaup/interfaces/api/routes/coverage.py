"""GET /v1/coverage: every clause of the city's policy with its rules and live counts; /v1/stats for charts."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from civicaup.governance import stats
from civicaup.interfaces.api.deps import ADMIN, OVERSIGHT, Ctx

router = APIRouter(tags=["coverage"])


@router.get("/coverage")
def coverage(ctx: Ctx) -> dict[str, Any]:
    """Each clause: its sentences (enforced, workflow, informs, cannot-act), rules and how often each fired."""
    return {"policy": ctx.pack.id, "version": ctx.pack.pack.version,
            "clauses": stats.coverage_with_counts(ctx.engine, ctx.pack)}


@router.get("/stats/decisions")
def decisions(ctx: Ctx, by: Literal["category", "department"] = "category") -> dict[str, Any]:
    """Findings per day by category or department. Oversight roles see the city; a department head their
    department; others nothing but their department's totals are not shown either (403)."""
    if ctx.roles & (OVERSIGHT | ADMIN):
        return stats.by_day(ctx.engine, ctx.pack, key=by)
    ctx.require({"department-head"}, "see decision statistics")
    return stats.by_day(ctx.engine, ctx.pack, key=by, department=ctx.me.department)
