"""Console pages under /console. Each page is a template with a plain context (tests check both); every form
posts back with a CSRF field derived from the sign-in token, and every page works without JavaScript.

The same governance functions as the API decide what a person sees: the console adds no rules of its own.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from civicaup.errors import CivicaupError, InputError
from civicaup.governance import approvals, asks, cases, held_mail, stats
from civicaup.governance.errors import AuthError, ConflictError, ForbiddenError, NotFoundError
from civicaup.governance.people import actor_of
from civicaup.interfaces.api.deps import ADMIN, OVERSIGHT, Context, Id, engine_of, principal_from
from civicaup.interfaces.console.chart import stacked
from civicaup.policy.registry import get_pack
from civicaup.records import authz as records_authz
from civicaup.records import requests as records_requests
from civicaup.records.deadlines import KINDS as RECORDS_KINDS
from civicaup.records.deadlines import deadline, parse_received
from civicaup.records.holds import held_ids, list_holds
from civicaup.social import moderation
from civicaup.social.accounts import Account, list_accounts

COOKIE = "civicaup_token"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"civicaup-console-form", hashlib.sha256).hexdigest()[:40]


def _ctx(request: Request) -> Context:
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise AuthError("sign in with a token")
    p = principal_from(request, token)
    return Context(engine_of(request), p, get_pack(p.policy))


def _check_csrf(request: Request, csrf: str) -> None:
    if not hmac.compare_digest(csrf_for(request.cookies.get(COOKIE, "")), csrf or ""):
        raise ForbiddenError("the form expired or did not come from this console; reload the page")


def page(request: Request, ctx: Context | None, name: str, context: dict[str, Any], status: int = 200
         ) -> HTMLResponse:
    base: dict[str, Any] = {"msg": request.query_params.get("msg", "")}
    if ctx is not None:
        base |= {"me": ctx.me, "roles": sorted(ctx.roles), "city": ctx.pack.pack.city.name, "policy": ctx.pack.id,
                 "csrf": csrf_for(request.cookies.get(COOKIE, "")),
                 "is_admin": bool(ctx.roles & ADMIN), "is_hr": "hr" in ctx.roles,
                 "is_custodian": bool(ctx.roles & set(records_authz.CUSTODIANS))}
    return templates.TemplateResponse(request, name, base | context, status_code=status)


def back(url: str, msg: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?msg={quote(msg[:300])}", status_code=303)


# ---------------------------------------------------------------- sign in

@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return page(request, None, "login.html", {"error": ""})


@router.post("/login")
def login(request: Request, token: str = Form(..., max_length=300)) -> Response:
    try:
        principal_from(request, token)
    except AuthError as exc:
        return page(request, None, "login.html", {"error": str(exc)}, status=401)
    resp = RedirectResponse("/console/", status_code=303)
    resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/console",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/console")
    return resp


# ---------------------------------------------------------------- self-service

@router.get("/")
def home(request: Request) -> HTMLResponse:
    """My requests, my held mail (why, with the clause), and what waits for me."""
    ctx = _ctx(request)
    mine = approvals.requests(ctx.engine, ctx.pack.id, requester=ctx.me.email)
    held = [held_mail.summary(h) for h in held_mail.visible(ctx.engine, ctx.pack, ctx.me, everything=True)
            if held_mail.relation(h, ctx.me) == "sender"]
    inbox = len(approvals.awaiting(ctx.engine, ctx.pack, ctx.me)) + len(
        approvals.held_mail_for(ctx.engine, ctx.pack, ctx.me))
    return page(request, ctx, "home.html", {"my_requests": [r.to_json() for r in reversed(mine)],
                                            "my_held": held, "inbox_count": inbox})


@router.post("/request")
def ask(request: Request, kind: str = Form(...), name: str = Form(""), reason: str = Form(""),
        csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx = _ctx(request)
    if kind not in ("software", "hardware"):
        return back("/console/", "the console asks for software or hardware; other requests: the API or CLI")
    build = asks.software if kind == "software" else asks.hardware
    a = build(ctx.pack, actor_of(ctx.me), datetime.now(timezone.utc), name)
    out = approvals.submit(ctx.engine, ctx.pack, a, ctx.me, reason=reason)
    return back("/console/", out.message)


# ---------------------------------------------------------------- approvals

@router.get("/approvals")
def inbox(request: Request) -> HTMLResponse:
    """The approval inbox: requests and held mail this person may approve now."""
    ctx = _ctx(request)
    reqs = approvals.awaiting(ctx.engine, ctx.pack, ctx.me)
    held = approvals.held_mail_for(ctx.engine, ctx.pack, ctx.me)
    return page(request, ctx, "inbox.html", {"requests": [r.to_json() for r in reqs],
                                             "held": [held_mail.summary(h) for h in held]})


@router.get("/approvals/{rid}")
def request_page(request: Request, rid: Id) -> HTMLResponse:
    ctx = _ctx(request)
    req = approvals.get(ctx.engine, rid, policy=ctx.pack.id)
    if not approvals.may_see(req, ctx.me):
        raise ForbiddenError(f"{ctx.me.email} may not see request {rid}")
    return page(request, ctx, "request.html", {"req": req.to_json(), "can_decide": bool(
        req.status == "pending" and approvals.may_decide(req, ctx.me)), "history": approvals.history(ctx.engine, req)})


@router.post("/approvals/{rid}/{verdict}")
def vote(request: Request, rid: Id, verdict: str, note: str = Form(""), csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx = _ctx(request)
    if verdict == "approve":
        out = approvals.approve(ctx.engine, ctx.pack, rid, ctx.me.email, note)
    elif verdict == "deny":
        out = approvals.deny(ctx.engine, ctx.pack, rid, ctx.me.email, note)
    else:
        raise ForbiddenError("unknown action")
    return back(f"/console/approvals/{rid}", out.message)


# ---------------------------------------------------------------- quarantine

@router.get("/quarantine")
def quarantine_list(request: Request) -> HTMLResponse:
    ctx = _ctx(request)
    rows = [held_mail.summary(h) | {"as": held_mail.relation(h, ctx.me)}
            for h in held_mail.visible(ctx.engine, ctx.pack, ctx.me, everything=True)]
    return page(request, ctx, "quarantine.html", {"messages": rows})


@router.get("/quarantine/{qid}")
def message(request: Request, qid: Id) -> HTMLResponse:
    """Why a message was held, with the clause; its text for its approvers (audited)."""
    ctx = _ctx(request)
    m = held_mail.view(ctx.engine, ctx.pack, qid, ctx.me)
    return page(request, ctx, "message.html", {"message": m,
                                               "can_decide": m["as"] == "approver" and m["status"] in ("held",
                                                                                                      "approved")})


@router.post("/quarantine/{qid}/{verdict}")
def decide_mail(request: Request, qid: Id, verdict: str, csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx = _ctx(request)
    if verdict == "release":
        out = held_mail.release(ctx.engine, ctx.pack, qid, ctx.me)
    elif verdict == "reject":
        out = held_mail.reject(ctx.engine, ctx.pack, qid, ctx.me)
    else:
        raise ForbiddenError("unknown action")
    return back(f"/console/quarantine/{qid}", out.message)


# ---------------------------------------------------------------- cases

@router.get("/cases")
def case_list(request: Request) -> HTMLResponse:
    ctx = _ctx(request)
    return page(request, ctx, "cases.html", {
        "cases": [c.to_json() for c in cases.visible(ctx.engine, ctx.pack, ctx.me)],
        "my_reports": [c.receipt() for c in cases.reported_by(ctx.engine, ctx.pack, ctx.me.email)],
        "outcomes": cases.OUTCOMES})


@router.post("/cases")
def case_report(request: Request, summary: str = Form(...), about: str = Form(""), csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx = _ctx(request)
    c = cases.report(ctx.engine, ctx.pack, ctx.me.email, summary, about=about)
    return back("/console/cases", f"report {c.id} sent to " + (", ".join(r["email"] for r in c.routed_to) or "HR"))


@router.get("/cases/{cid}")
def case_page(request: Request, cid: Id) -> HTMLResponse:
    ctx = _ctx(request)
    c = cases.show(ctx.engine, ctx.pack, cid, ctx.me.email)
    return page(request, ctx, "case.html", {"case": c.to_json(), "can_close": c.status == "open" and
                                            cases.may_close(c, ctx.me), "outcomes": cases.OUTCOMES})


@router.post("/cases/{cid}/close")
def case_close(request: Request, cid: Id, decision: str = Form(...), outcome: str = Form(...),
               csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx = _ctx(request)
    c = cases.close(ctx.engine, ctx.pack, cid, ctx.me.email, decision=decision, outcome=outcome)
    return back(f"/console/cases/{cid}", f"case {c.id} closed: {c.outcome}")


# ---------------------------------------------------------------- the policy

@router.get("/coverage")
def coverage(request: Request) -> HTMLResponse:
    """Each clause of the policy with its rules and live counts."""
    ctx = _ctx(request)
    return page(request, ctx, "coverage.html", {"clauses": stats.coverage_with_counts(ctx.engine, ctx.pack),
                                                "version": ctx.pack.pack.version})


@router.get("/chart")
def chart(request: Request, by: str = "category") -> HTMLResponse:
    """Decisions by category or department over time (inline SVG, with the same numbers as a table)."""
    ctx = _ctx(request)
    key = by if by in ("category", "department") else "category"
    if ctx.roles & (OVERSIGHT | ADMIN):
        data = stats.by_day(ctx.engine, ctx.pack, key=key)
        scope = ctx.pack.pack.city.name
    else:
        ctx.require({"department-head"}, "see decision charts")
        data = stats.by_day(ctx.engine, ctx.pack, key=key, department=ctx.me.department)
        scope = ctx.me.department
    return page(request, ctx, "chart.html", {"by": key, "data": data, "chart": stacked(data), "scope": scope})


# ---------------------------------------------------------------- social media moderation

def _moderator(request: Request) -> tuple[Context, dict[str, Account]]:
    """The signed-in person and the city's accounts, if moderation.py lets them moderate any of them."""
    ctx = _ctx(request)
    accounts = {a.key: a for a in list_accounts(ctx.engine, ctx.pack.id, include_inactive=True)}
    if not any(moderation.may_moderate(ctx.engine, ctx.pack, a, ctx.me.email) for a in [None, *accounts.values()]):
        raise ForbiddenError(f"{ctx.me.email} may not moderate the {ctx.pack.pack.city.name} social media accounts "
                             "(their moderators, Department Directors and department heads, communications staff "
                             "and the City Manager may)")
    return ctx, accounts


@router.get("/social")
def social_queue(request: Request) -> HTMLResponse:
    """Flagged posts and comments of the accounts this person moderates, each suggestion with its clause;
    keep / remove / warn as plain forms (access keys k, r, w on the first item)."""
    ctx, accounts = _moderator(request)
    items = [i | {"can_warn": i["kind"] in moderation.PUBLIC_KINDS}
             for i in moderation.queue(ctx.engine, ctx.pack.id)
             if moderation.may_moderate(ctx.engine, ctx.pack, accounts.get(i["account"]), ctx.me.email)]
    return page(request, ctx, "social.html", {"items": items, "actions": moderation.ACTIONS})


@router.post("/social/{item_id}/{action}")
def social_moderate(request: Request, item_id: str, action: str, csrf: str = Form("")) -> Response:
    _check_csrf(request, csrf)
    ctx, _ = _moderator(request)
    if action not in moderation.ACTIONS:
        raise ForbiddenError("unknown action")
    out = moderation.moderate(ctx.engine, ctx.pack, item_id, action, ctx.me.email)
    return back("/console/social", f"{out.item_id} on {out.account}: {action} recorded; the item is "
                                   f"{'taken down' if out.moderation['action'] == 'remove' else 'up'}, "
                                   f"its author {out.moderation['author']}")


@router.get("/social/removals")
def social_removals(request: Request) -> HTMLResponse:
    """The public record of removed content, with the reason and the clause (WDM Prohibited Content ¶10)."""
    ctx = _ctx(request)
    return page(request, ctx, "removals.html", {"removals": moderation.removals(ctx.engine, ctx.pack.id)})


# ---------------------------------------------------------------- public-records requests

def _custodian(request: Request, action: str) -> Context:
    """The signed-in person, if the records module lets them act on public-records requests (the records
    custodians: the clerk and the city administrator, as for `civicaup records request`)."""
    ctx = _ctx(request)
    try:
        records_authz.require(ctx.engine, ctx.pack.id, ctx.me.email, action=action)
    except records_authz.NotPermittedError as exc:
        raise ForbiddenError(str(exc)) from None
    return ctx


def _city_today(ctx: Context) -> date:
    return datetime.now(timezone.utc).astimezone(ctx.pack.tz).date()


def _countdown(req: records_requests.Request, today: date) -> str:
    """How the due date stands today, in the city's time zone."""
    if req.status != "open":
        return req.status
    if req.due is None:
        return "no fixed day"
    days = (req.due - today).days
    if days < 0:
        return f"overdue by {-days} day{'s' if days != -1 else ''}"
    return "due today" if days == 0 else f"{days} day{'s' if days != 1 else ''} left"


def _records_list(request: Request, ctx: Context, status: str, *, error: str = "",
                  form: dict[str, str] | None = None, code: int = 200) -> HTMLResponse:
    today = _city_today(ctx)
    reqs = records_requests.list_requests(ctx.engine, ctx.pack.id, status=status)
    rows = [r.to_json() | {"countdown": _countdown(r, today), "overdue": r.status == "open" and r.due is not None
                           and r.due < today} for r in reqs]
    return page(request, ctx, "records.html", {
        "requests": rows, "status": status, "statuses": ("open", "closed", "all"), "kinds": RECORDS_KINDS,
        "state": ctx.pack.pack.jurisdiction.state, "today": today.isoformat(), "error": error,
        "form": form or {"kind": "public", "received_date": today.isoformat()}}, status=code)


@router.get("/records")
def records_list(request: Request, status: str = "open") -> HTMLResponse:
    """Public-records requests, soonest due first, with the form to log a new one (records custodians only)."""
    ctx = _custodian(request, "see public-records requests")
    return _records_list(request, ctx, status if status in ("open", "closed", "all") else "open")


@router.post("/records")
def records_add(request: Request, requester: str = Form("", max_length=200), contact: str = Form("", max_length=320),
                description: str = Form("", max_length=10_000), received_date: str = Form("", max_length=10),
                received_time: str = Form("", max_length=5), kind: str = Form("public", max_length=16),
                csrf: str = Form("")) -> Response:
    """Log a request; the module computes its due date under the city's state law."""
    _check_csrf(request, csrf)
    ctx = _custodian(request, "log a records request")
    form = {"requester": requester, "contact": contact, "description": description,
            "received_date": received_date, "received_time": received_time, "kind": kind}
    received = received_date.strip() + (f"T{received_time.strip()}" if received_time.strip() else "")
    try:
        req = records_requests.add_request(ctx.engine, ctx.pack.id, requester=requester, contact=contact,
                                           description=description, received=received, kind=kind,
                                           actor=ctx.me.email)
    except InputError as exc:  # the form again, with what was typed and why it was refused
        return _records_list(request, ctx, "open", error=str(exc).splitlines()[0], form=form, code=400)
    due = req.due.isoformat() if req.due else "no fixed day"
    return back(f"/console/records/{req.id}", f"request {req.id} logged: due {due} ({req.statute})")


def _records_request(ctx: Context, rid: int) -> records_requests.Request:
    try:
        return records_requests.get_request(ctx.engine, ctx.pack.id, rid)
    except InputError as exc:  # another city's request is not found either
        raise NotFoundError(str(exc)) from None


@router.get("/records/{rid}")
def records_request(request: Request, rid: Id) -> HTMLResponse:
    """One request: requester, receipt, the state-law deadline with its statute, status, the records tagged
    responsive or withheld, and the legal holds that keep them."""
    ctx = _custodian(request, "see public-records requests")
    req = _records_request(ctx, rid)
    received = parse_received(req.received)
    law = deadline(req.state, received if "T" in req.received else received.date(), req.kind)
    found = records_requests.items(ctx.engine, ctx.pack.id, rid)
    redacted = records_requests.redactions(ctx.engine, rid)
    holds = list_holds(ctx.engine, ctx.pack.id, status="active")
    why: dict[int, list[str]] = {}
    if found and holds:
        with ctx.engine.connect() as conn:
            why = held_ids(conn, ctx.pack.id, ctx.pack.tz)
    covered: dict[int, int] = {}
    items = []
    for i in found:
        kept = [w for w in why.get(i.record.id, []) if w.startswith("hold ")] if i.record else []
        for w in kept:
            covered[int(w.split()[1])] = covered.get(int(w.split()[1]), 0) + 1
        items.append({"ref": i.sha256[:12], "status": i.status, "note": i.note, "holds": kept,
                      "redactions": len(redacted.get(i.sha256, [])),
                      "record": i.record.to_json() if i.record else None})
    return page(request, ctx, "records_request.html", {
        "req": req.to_json(), "countdown": _countdown(req, _city_today(ctx)), "law": law.to_json(),
        "items": items, "holds": [h.to_json() | {"covers": covered.get(h.id, 0)} for h in holds],
        "can_close": req.status == "open"})


@router.post("/records/{rid}/close")
def records_close(request: Request, rid: Id, note: str = Form("", max_length=2000), csrf: str = Form("")) -> Response:
    """Close a request (its records are no longer kept on its account)."""
    _check_csrf(request, csrf)
    ctx = _custodian(request, "close a records request")
    _records_request(ctx, rid)
    try:
        req = records_requests.close_request(ctx.engine, ctx.pack.id, rid, actor=ctx.me.email, note=note)
    except InputError as exc:  # already closed
        raise ConflictError(str(exc).splitlines()[0]) from None
    return back(f"/console/records/{rid}", f"request {req.id} closed")


# ---------------------------------------------------------------- errors

def error_page(request: Request, exc: CivicaupError, status: int) -> Response:
    """Console errors as pages; no token (or a bad one) leads to the sign-in page."""
    if status == 401:
        resp = RedirectResponse("/console/login", status_code=303)
        if request.cookies.get(COOKIE):
            resp.delete_cookie(COOKIE, path="/console")
        return resp
    try:
        ctx: Context | None = _ctx(request)
    except CivicaupError:
        ctx = None
    return page(request, ctx, "error.html", {"status": status, "error": str(exc).splitlines()[0] if str(exc) else
                                             type(exc).__name__}, status=status)


def mount(app: FastAPI) -> None:
    app.include_router(router)
