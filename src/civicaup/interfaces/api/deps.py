"""Dependencies: the store, and the person a request acts as (bearer token -> Principal, in one city)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from civicaup.governance import tokens
from civicaup.governance.errors import AuthError, ForbiddenError
from civicaup.policy.compile import CompiledPack
from civicaup.policy.registry import get_pack
from civicaup.stores.directory import Person

bearer = HTTPBearer(auto_error=False, description="A token from `civicaup token create --as EMAIL --policy POLICY`")

ADMIN = frozenset({"it", "city-administrator"})
OVERSIGHT = frozenset({"it", "hr", "city-administrator", "clerk"})


@dataclass(frozen=True)
class Context:
    engine: Engine
    principal: tokens.Principal
    pack: CompiledPack

    @property
    def me(self) -> Person:
        return self.principal.person

    @property
    def roles(self) -> frozenset[str]:
        return self.principal.roles

    def require(self, roles: frozenset[str] | set[str], what: str) -> None:
        if not self.roles & roles:
            raise ForbiddenError(f"{self.me.email} may not {what} (needs {' or '.join(sorted(roles))})")


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def principal_from(request: Request, token: str) -> tokens.Principal:
    return tokens.authenticate(engine_of(request), token, policies=request.app.state.policies)


def context(request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Context:
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("a bearer token is required (Authorization: Bearer <token>)")
    p = principal_from(request, creds.credentials)
    return Context(engine_of(request), p, get_pack(p.policy))


Ctx = Annotated[Context, Depends(context)]

# Ids in paths: positive and within a 32-bit integer (the store's INTEGER), else 422 before any query.
Id = Annotated[int, Path(ge=1, le=2_147_483_647, description="an id")]
