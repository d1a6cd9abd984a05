"""/v1/quarantine: held mail, through the mail quarantine's functions. An employee sees only their own held
messages (and why); approvers the ones they may release; IT and the city administrator all of their city's."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from civicaup.governance import held_mail
from civicaup.interfaces.api.deps import Ctx, Id

router = APIRouter(prefix="/quarantine", tags=["quarantine"])


@router.get("")
def list_held(ctx: Ctx, everything: bool = Query(False, alias="all", description="also released and rejected")
              ) -> list[dict[str, Any]]:
    """Held messages this person may see, each with rule, clause and who must approve."""
    return [held_mail.summary(h) | {"as": held_mail.relation(h, ctx.me)}
            for h in held_mail.visible(ctx.engine, ctx.pack, ctx.me, everything=everything)]


@router.get("/{qid}")
def show(qid: Id, ctx: Ctx) -> dict[str, Any]:
    """One held message: why it was held (findings with clause and quote); the text for its approvers (audited)."""
    return held_mail.view(ctx.engine, ctx.pack, qid, ctx.me)


@router.post("/{qid}/release")
def release(qid: Id, ctx: Ctx) -> dict[str, Any]:
    """Approve as this person; when every approver the pack names has approved, the original is re-injected."""
    out = held_mail.release(ctx.engine, ctx.pack, qid, ctx.me)
    return {"message": out.message, "delivered": out.delivered, "held": held_mail.summary(out.held)}


@router.post("/{qid}/reject")
def reject(qid: Id, ctx: Ctx) -> dict[str, Any]:
    """Refuse the message; the sender is sent a notice naming the clause."""
    out = held_mail.reject(ctx.engine, ctx.pack, qid, ctx.me)
    return {"message": out.message, "held": held_mail.summary(out.held)}
