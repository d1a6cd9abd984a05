"""GET /v1/audit/verify: whether the hash chain is intact (IT, HR, the city administrator, the clerk)."""
from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from civicaup.interfaces.api.deps import OVERSIGHT, Ctx
from civicaup.stores import audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/verify")
def verify(ctx: Ctx) -> dict[str, Any]:
    """{"intact", "entries", "problem"}; the problem names the entry number only (the log is shared by the
    cities of an install, so no other detail of it is shown)."""
    ctx.require(OVERSIGHT, "verify the audit log")
    n, problem = audit.verify(ctx.engine)
    return {"intact": problem is None, "entries": n,
            "problem": re.sub(r"\s*\(.*\)$", "", problem) if problem else None}
