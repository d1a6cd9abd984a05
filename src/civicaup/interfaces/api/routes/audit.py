"""GET /v1/audit/verify: whether the city's hash chain is intact (IT, HR, the city administrator, the clerk)."""
from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from civicaup.interfaces.api.deps import OVERSIGHT, Ctx
from civicaup.stores import audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/verify")
def verify(ctx: Ctx) -> dict[str, Any]:
    """{"intact", "entries", "problem"} of this city's own chain; the problem names the entry number only."""
    ctx.require(OVERSIGHT, "verify the audit log")
    n, problem = audit.verify(ctx.engine, audit.chain_of(ctx.pack.id))
    return {"intact": problem is None, "entries": n,
            "problem": re.sub(r"\s*\(.*\)$", "", problem) if problem else None}
