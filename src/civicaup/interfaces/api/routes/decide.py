"""POST /v1/decide/{channel}: one event in, the Decision out (nothing is stored). The actor is the token's
person, except for mail, whose actor is the sender as the directory knows them."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from civicaup.channels import events
from civicaup.channels.mail.mime import parse_mail
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import Actor, MailEvent
from civicaup.errors import InputError
from civicaup.governance import asks
from civicaup.governance.approvals import granted_exemptions
from civicaup.governance.people import actor_of
from civicaup.interfaces.api.deps import Ctx
from civicaup.stores.directory import find_person, list_people

router = APIRouter(prefix="/decide", tags=["decide"])
MAX_MAIL = 50 << 20

DECISION = {"description": "The Decision: action and findings, each naming its rule and clause"}


class URLIn(BaseModel):
    url: str = Field(min_length=1, max_length=8192)


class NameIn(BaseModel):
    name: str = Field(min_length=1, max_length=500, description="a program or device name")


class PostIn(BaseModel):
    text: str = Field(max_length=100_000)
    kind: Literal["comment", "post", "reply", "chat", "draft"] = "comment"


class AccessIn(BaseModel):
    kind: Literal[asks.ACCESS_KINDS] = Field(description="what kind of look at another person's data")  # type: ignore[valid-type]
    subject: str = Field(min_length=1, max_length=320, description="whose data (e-mail address)")
    reason: str = Field("", max_length=4000)


def _now(ctx: Ctx) -> datetime:
    return datetime.now(timezone.utc).astimezone(ctx.pack.tz)


def _grants(ctx: Ctx, actor: Actor, at: datetime) -> frozenset[str]:
    """The personal or role exemptions the actor holds now (the same grants the milter and the helper apply)."""
    return granted_exemptions(ctx.engine, ctx.pack.id, actor.email, actor.roles, at)


@router.post("/mail", responses={200: DECISION},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "message/rfc822": {"schema": {"type": "string", "format": "binary"}}}}})
async def decide_mail(request: Request, ctx: Ctx,
                      sender: str | None = Query(None, max_length=320,
                                                 description="authenticated sender (default Return-Path, else From)")
                      ) -> dict[str, Any]:
    """A raw RFC 5322 message as the request body."""
    raw = await request.body()
    if len(raw) > MAX_MAIL:
        raise InputError(f"message larger than {MAX_MAIL >> 20} MB")
    mail = parse_mail(raw or b"\r\n")
    who = (sender or events.default_sender(mail)).strip().lower()
    person = find_person(ctx.engine, ctx.pack.id, who) if who else None
    actor = actor_of(person) if person and person.active else Actor(email=who)
    staff = frozenset((p.name, p.email) for p in list_people(ctx.engine, ctx.pack.id) if p.name)
    at = _now(ctx)
    ev = MailEvent(actor=actor, at=at, mail=mail, sender=who, staff_names=staff,
                   granted_exemptions=_grants(ctx, actor, at) if person and person.active else frozenset())
    return evaluate(ev, ctx.pack).to_json()


@router.post("/url", responses={200: DECISION})
def decide_url(body: URLIn, ctx: Ctx) -> dict[str, Any]:
    """A URL as the proxy would see it, requested by the token's person."""
    from civicaup.channels.web.url import normalise_url
    from civicaup.engine.event import WebEvent
    actor, at = actor_of(ctx.me), _now(ctx)
    ev = WebEvent(actor=actor, at=at, url=normalise_url(body.url), granted_exemptions=_grants(ctx, actor, at))
    return evaluate(ev, ctx.pack).to_json()


@router.post("/software", responses={200: DECISION})
def decide_software(body: NameIn, ctx: Ctx) -> dict[str, Any]:
    """A program the token's person wants to install."""
    return asks.software(ctx.pack, actor_of(ctx.me), _now(ctx), body.name).decision.to_json()


@router.post("/hardware", responses={200: DECISION})
def decide_hardware(body: NameIn, ctx: Ctx) -> dict[str, Any]:
    """A device the token's person wants to connect."""
    return asks.hardware(ctx.pack, actor_of(ctx.me), _now(ctx), body.name).decision.to_json()


@router.post("/post", responses={200: DECISION})
def decide_post(body: PostIn, ctx: Ctx) -> dict[str, Any]:
    """A social-media post or comment on an official account."""
    ev = events.post_event(body.text, ctx.pack, kind=body.kind)
    return evaluate(ev, ctx.pack).to_json()


@router.post("/access", responses={200: DECISION})
def decide_access(body: AccessIn, ctx: Ctx) -> dict[str, Any]:
    """A look at another person's data by the token's person (no request is made: see POST /v1/approvals)."""
    from civicaup.engine.event import AccessEvent
    ev = AccessEvent(actor=actor_of(ctx.me), at=_now(ctx), kind=body.kind, subject=body.subject.strip().lower(),
                     reason=body.reason)
    return evaluate(ev, ctx.pack).to_json()
