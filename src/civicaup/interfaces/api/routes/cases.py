"""/v1/cases: any employee reports; HR and the people a case was routed to see it; views are audited."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from civicaup.governance import cases
from civicaup.interfaces.api.deps import Ctx, Id

router = APIRouter(prefix="/cases", tags=["cases"])


class ReportIn(BaseModel):
    summary: str = Field(min_length=1, max_length=10_000)
    about: str = Field("", max_length=320, description="the person concerned, if known")
    evidence: list[str] = Field(default_factory=list, max_length=50,
                                description="links: http(s)://..., quarantine:ID, audit:ID, approval:ID, ...")


class CloseIn(BaseModel):
    decision: str = Field(min_length=1, max_length=10_000)
    outcome: Literal[cases.OUTCOMES]  # type: ignore[valid-type]


@router.post("")
def report(body: ReportIn, ctx: Ctx) -> dict[str, Any]:
    """Report suspected misuse; the reporter gets a receipt, not the case."""
    c = cases.report(ctx.engine, ctx.pack, ctx.me.email, body.summary, about=body.about, evidence=body.evidence)
    return c.receipt() | {"routed_to": [r["email"] for r in c.routed_to]}


@router.get("")
def list_cases(ctx: Ctx, status: Literal["open", "closed"] | None = None) -> list[dict[str, Any]]:
    """Cases this person may see (HR: all of the city's)."""
    return [c.to_json() for c in cases.visible(ctx.engine, ctx.pack, ctx.me, status=status)]


@router.get("/mine")
def my_reports(ctx: Ctx) -> list[dict[str, Any]]:
    """Receipts of the reports this person made."""
    return [c.receipt() for c in cases.reported_by(ctx.engine, ctx.pack, ctx.me.email)]


@router.get("/{cid}")
def show(cid: Id, ctx: Ctx) -> dict[str, Any]:
    """One case (audited)."""
    return cases.show(ctx.engine, ctx.pack, cid, ctx.me.email).to_json()


@router.post("/{cid}/close")
def close(cid: Id, body: CloseIn, ctx: Ctx) -> dict[str, Any]:
    """Close with the decision and the discipline outcome."""
    return cases.close(ctx.engine, ctx.pack, cid, ctx.me.email, decision=body.decision,
                       outcome=body.outcome).to_json()
