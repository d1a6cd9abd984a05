"""/v1/approvals: ask, list, see, approve, deny, withdraw. The requester sees their own requests; approvers the
ones they may decide; department heads their department's; IT and the city administrator all of their city's."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from civicaup.errors import InputError
from civicaup.governance import approvals, asks
from civicaup.governance.dates import until as parse_until
from civicaup.governance.errors import ForbiddenError
from civicaup.governance.people import actor_of
from civicaup.interfaces.api.deps import Ctx, Id

router = APIRouter(prefix="/approvals", tags=["approvals"])


class RequestIn(BaseModel):
    kind: Literal["software", "hardware", "access", "exemption", "purchase", "social"]
    name: str | None = Field(None, max_length=500, description="software/hardware: the program or device")
    url: str | None = Field(None, max_length=8192, description="purchase: the shop's URL")
    access: Literal[asks.ACCESS_KINDS] | None = Field(None, description="access: what kind of look")  # type: ignore[valid-type]
    subject: str | None = Field(None, max_length=320, description="access: whose data")
    rule: str | None = Field(None, max_length=100, description="exemption: the rule id")
    role: str | None = Field(None, max_length=64, description="exemption: exempt everyone with this role")
    account: str | None = Field(None, max_length=500, description="social: the account or forum")
    until: date | None = Field(None, description="exemption (required) or access: the last day")
    reason: str = Field("", max_length=4000)


class VoteIn(BaseModel):
    note: str = Field("", max_length=2000)


def _need(value: str | None, field: str, kind: str) -> str:
    if not value:
        raise InputError(f"a {kind} request needs {field}")
    return value


@router.post("", status_code=200)
def ask(body: RequestIn, ctx: Ctx) -> dict[str, Any]:
    """Ask: the engine decides; a hold becomes a pending request, a block is refused with its clause."""
    actor, t, pack = actor_of(ctx.me), datetime.now(timezone.utc), ctx.pack
    end = parse_until(body.until.isoformat(), pack) if body.until else None
    k = body.kind
    if k in ("software", "hardware"):
        a = (asks.software if k == "software" else asks.hardware)(pack, actor, t, _need(body.name, "name", k))
    elif k == "access":
        a = asks.access(pack, actor, t, _need(body.access, "access", k), _need(body.subject, "subject", k),
                        body.reason)
    elif k == "exemption":
        if end is None:
            raise InputError("an exemption request needs until: exemptions are time-bounded")
        a = asks.exemption(pack, actor, t, _need(body.rule, "rule", k), end, body.role)
    elif k == "purchase":
        a = asks.purchase(pack, actor, t, _need(body.url, "url", k))
    else:
        a = asks.social(pack, actor, t, _need(body.account, "account", k))
    return approvals.submit(ctx.engine, pack, a, ctx.me, reason=body.reason,
                            valid_until=end if k in ("access", "exemption") else None).to_json()


@router.get("")
def list_requests(ctx: Ctx, status: Literal["pending", "approved", "denied", "expired", "withdrawn"] | None = None,
                  inbox: bool = Query(False, description="only what awaits this person's approval")
                  ) -> list[dict[str, Any]]:
    """Requests this person may see (or, with inbox, may approve now)."""
    rows = (approvals.awaiting(ctx.engine, ctx.pack, ctx.me) if inbox
            else approvals.visible(ctx.engine, ctx.pack, ctx.me, status=status))
    return [r.to_json() for r in rows]


def _visible(ctx: Ctx, rid: Id) -> approvals.Request:
    req = approvals.get(ctx.engine, rid, policy=ctx.pack.id)
    if not approvals.may_see(req, ctx.me):
        raise ForbiddenError(f"{ctx.me.email} may not see request {rid}")
    return req


@router.get("/{rid}")
def get_request(rid: Id, ctx: Ctx) -> dict[str, Any]:
    """One request with its votes and history."""
    req = _visible(ctx, rid)
    return {**req.to_json(), "history": approvals.history(ctx.engine, req)}


@router.post("/{rid}/approve")
def approve(rid: Id, body: VoteIn, ctx: Ctx) -> dict[str, Any]:
    """Approve in every role this person may give."""
    out = approvals.approve(ctx.engine, ctx.pack, rid, ctx.me.email, body.note)
    return {"message": out.message, "request": out.request.to_json()}


@router.post("/{rid}/deny")
def deny(rid: Id, body: VoteIn, ctx: Ctx) -> dict[str, Any]:
    """Deny: one permitted approver's denial ends the request."""
    out = approvals.deny(ctx.engine, ctx.pack, rid, ctx.me.email, body.note)
    return {"message": out.message, "request": out.request.to_json()}


@router.post("/{rid}/withdraw")
def withdraw(rid: Id, ctx: Ctx) -> dict[str, Any]:
    """The requester withdraws a pending request."""
    out = approvals.withdraw(ctx.engine, ctx.pack, rid, ctx.me.email)
    return {"message": out.message, "request": out.request.to_json()}
