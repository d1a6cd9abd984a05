"""`civicaup request software|hardware|access|exemption|purchase|social` and
`civicaup approvals list|show|approve|deny|withdraw|remind`.

Held mail is part of the approval inbox under ids `mail-<quarantine id>`; approving it releases it through the
mail quarantine (the same as `quarantine release`), denying it rejects it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Optional

import typer

from civicaup.governance import approvals, asks
from civicaup.governance.dates import until as parse_until
from civicaup.governance.errors import NotFoundError
from civicaup.governance.people import actor_of, person, policy_for
from civicaup.interfaces.cli.output import emit_json, show_decision
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store

request_app = typer.Typer(no_args_is_help=True, help="Ask for something the policy holds for approval.")
approvals_app = typer.Typer(no_args_is_help=True, help="Approval requests and held mail: list, decide, remind.")

POLICY = typer.Option(..., "--policy", help="pack id (see 'civicaup policy list')")
AS = typer.Option(..., "--as", help="your e-mail address in the directory")
JSON = typer.Option(False, "--json", help="print one JSON object")
REASON = typer.Option("", "--reason", help="why it is needed")


def _ask(policy: str, as_email: str, build: Callable[..., asks.Ask], *args: Any, reason: str = "",
         valid_until: datetime | None = None, as_json: bool = False) -> None:
    pack = get_pack(policy)
    engine = open_store()
    who = person(engine, pack.id, as_email)
    ask = build(pack, actor_of(who), datetime.now(timezone.utc), *args)
    out = approvals.submit(engine, pack, ask, who, reason=reason, valid_until=valid_until)
    if as_json:
        emit_json(out.to_json())
        return
    show_decision(out.decision, f"{ask.kind} {ask.subject}", as_json=False)
    print(out.message)


@request_app.command()
def software(name: str = typer.Argument(..., metavar="NAME"), policy: str = POLICY, as_email: str = AS,
             reason: str = REASON, as_json: bool = JSON) -> None:
    """A program to download or install."""
    _ask(policy, as_email, asks.software, name, reason=reason, as_json=as_json)


@request_app.command()
def hardware(name: str = typer.Argument(..., metavar="NAME"), policy: str = POLICY, as_email: str = AS,
             reason: str = REASON, as_json: bool = JSON) -> None:
    """A device to connect to the city's system."""
    _ask(policy, as_email, asks.hardware, name, reason=reason, as_json=as_json)


@request_app.command()
def access(kind: str = typer.Option(..., "--kind", help=", ".join(asks.ACCESS_KINDS)),
           subject: str = typer.Option(..., "--subject", help="whose data (e-mail address)"),
           reason: str = typer.Option(..., "--reason", help="why, for the approvers and the audit log"),
           until: Optional[str] = typer.Option(None, "--until", help="last day of access (default: the city's term)"),
           policy: str = POLICY, as_email: str = AS, as_json: bool = JSON) -> None:
    """A look at another person's mail, files or browsing history (every step is audited)."""
    pack = get_pack(policy)
    end = parse_until(until, pack) if until else None
    _ask(policy, as_email, lambda p, a, t: asks.access(p, a, t, kind, subject, reason), reason=reason,
         valid_until=end, as_json=as_json)


@request_app.command()
def exemption(rule: str = typer.Option(..., "--rule", help="the rule id (see 'civicaup policy show')"),
              until: str = typer.Option(..., "--until", help="last day of the exemption (ISO date)"),
              role: Optional[str] = typer.Option(None, "--for-role", help="exempt everyone with this role instead"),
              policy: str = POLICY, as_email: str = AS, reason: str = REASON, as_json: bool = JSON) -> None:
    """A time-bounded exemption from one rule, for you (or a role); findings are then logged, never hidden."""
    pack = get_pack(policy)
    end = parse_until(until, pack)
    _ask(policy, as_email, lambda p, a, t: asks.exemption(p, a, t, rule, end, role), reason=reason,
         valid_until=end, as_json=as_json)


@request_app.command()
def purchase(url: str = typer.Argument(..., metavar="URL"), policy: str = POLICY, as_email: str = AS,
             reason: str = REASON, as_json: bool = JSON) -> None:
    """An Internet purchase (Ste. Genevieve D.2.f: the City Administrator approves)."""
    _ask(policy, as_email, asks.purchase, url, reason=reason, as_json=as_json)


@request_app.command()
def social(account: str = typer.Argument(..., metavar="ACCOUNT"), policy: str = POLICY, as_email: str = AS,
           reason: str = REASON, as_json: bool = JSON) -> None:
    """Authorisation to take part in social media on behalf of the city."""
    _ask(policy, as_email, asks.social, account, reason=reason, as_json=as_json)


# ---------------------------------------------------------------- approvals

def _line(r: approvals.Request) -> str:
    need = "; ".join(r.missing()) if r.status == approvals.OPEN else ""
    return f"{r.id:<6} {r.policy:20} {r.status:9} {r.kind:9} {r.subject[:40]:40} {r.requester:32} {need}"


@approvals_app.command("list")
def list_(as_email: Optional[str] = typer.Option(None, "--as", help="only what this person may see; with "
                                                 "--inbox, what awaits them"),
          policy: Optional[str] = typer.Option(None, "--policy"),
          status: Optional[str] = typer.Option(None, "--status", help="pending, approved, denied, expired, withdrawn"),
          inbox: bool = typer.Option(False, "--inbox", help="only what awaits --as (requests and held mail)"),
          as_json: bool = JSON) -> None:
    """Requests (and, with --as, the held mail that person may release)."""
    engine = open_store()
    held: list[Any] = []
    if as_email:
        pack = get_pack(policy_for(engine, as_email, policy))
        who = person(engine, pack.id, as_email)
        if inbox:
            rows = approvals.awaiting(engine, pack, who)
        else:
            rows = approvals.visible(engine, pack, who, status=status)
        held = approvals.held_mail_for(engine, pack, who)
    else:
        if policy:
            get_pack(policy)
        rows = approvals.requests(engine, policy, status=status)
    if as_json:
        emit_json({"requests": [r.to_json() for r in rows],
                   "held_mail": [{k: v for k, v in h.to_json().items() if k != "decision"} | {"id": f"mail-{h.id}"}
                                 for h in held]})
        return
    for r in rows:
        print(_line(r))
    for h in held:
        print(f"mail-{h.id:<1} {h.policy:20} {h.status:9} {'mail':9} {h.subject[:40]:40} {h.sender:32} "
              f"{h.rule} (clause {h.clause})")


def _request_id(ref: str) -> int:
    try:
        return int(ref)
    except ValueError:
        raise NotFoundError(f"{ref!r} is not a request id (a number, or mail-N for held mail)") from None


@approvals_app.command()
def show(ref: str = typer.Argument(..., metavar="ID"), as_email: str = AS, as_json: bool = JSON) -> None:
    """One request with its findings, votes and history (mail-N: a held message and why it was held)."""
    engine = open_store()
    qid = _mail(ref)
    if qid is not None:
        from civicaup.channels.mail import quarantine
        from civicaup.governance import held_mail
        policy = quarantine.get(engine, qid).policy
        view = held_mail.view(engine, get_pack(policy), qid, person(engine, policy, as_email))
        if as_json:
            emit_json(view)
            return
        print(f"mail-{qid} [{policy}] {view['status']}: {view['subject']!r} from {view['sender']}")
        for f in view["findings"]:
            print(f"  {f['action']} {f['rule']} (clause {f['clause']}): {f['evidence']}\n      \"{f['quote']}\"")
        if view["waiting_for"]:
            print("  waiting for: " + "; ".join(view["waiting_for"]))
        return
    req = approvals.get(engine, _request_id(ref))
    who = person(engine, req.policy, as_email)
    if not approvals.may_see(req, who):
        from civicaup.governance.errors import ForbiddenError
        raise ForbiddenError(f"{who.email} may not see request {req.id}")
    hist = approvals.history(engine, req)
    if as_json:
        emit_json({**req.to_json(), "history": hist})
        return
    print(_line(req))
    for s in req.approvers:
        print(f"  {s['rule']} (clause {s['clause']}): " + (" and " if s["needed"] == "all" else " or ").join(s["roles"]))
        print(f"      \"{s['quote']}\"")
    for e in hist:
        print(f"  {e['at']}  {e['action']:18} {e['actor']}  {e['detail'].get('role', '')}")


def _mail(ref: str) -> int | None:
    return int(ref[5:]) if ref.startswith("mail-") and ref[5:].isdigit() else None


@approvals_app.command()
def approve(ref: str = typer.Argument(..., metavar="ID"), as_email: str = AS,
            note: str = typer.Option("", "--note")) -> None:
    """Approve in every role you may give; granted when every finding is satisfied (mail-N: release)."""
    engine = open_store()
    qid = _mail(ref)
    if qid is not None:
        from civicaup.channels.mail import quarantine
        print(quarantine.release(engine, qid, as_email).message)
        return
    req = approvals.get(engine, _request_id(ref))
    print(approvals.approve(engine, get_pack(req.policy), req.id, as_email, note).message)


@approvals_app.command()
def deny(ref: str = typer.Argument(..., metavar="ID"), as_email: str = AS,
         note: str = typer.Option("", "--note")) -> None:
    """Deny the request (mail-N: reject the held message; the sender is told the clause)."""
    engine = open_store()
    qid = _mail(ref)
    if qid is not None:
        from civicaup.channels.mail import quarantine
        print(quarantine.reject(engine, qid, as_email).message)
        return
    req = approvals.get(engine, _request_id(ref))
    print(approvals.deny(engine, get_pack(req.policy), req.id, as_email, note).message)


@approvals_app.command()
def withdraw(ref: str = typer.Argument(..., metavar="ID"), as_email: str = AS) -> None:
    """Withdraw your own pending request."""
    engine = open_store()
    req = approvals.get(engine, _request_id(ref))
    print(approvals.withdraw(engine, get_pack(req.policy), req.id, as_email).message)


@approvals_app.command()
def remind(policy: Optional[str] = typer.Option(None, "--policy", help="default: every city with requests"),
           as_json: bool = JSON) -> None:
    """Overdue requests and held mail, with who can act on each now (the reminder is audited)."""
    from civicaup.policy.registry import pack_ids

    engine = open_store()
    found = []
    for pid in [policy] if policy else pack_ids():
        found += approvals.overdue(engine, get_pack(pid))
    if as_json:
        emit_json([o.to_json() for o in found])
        return
    for o in found:
        print(f"{o.ref:<8} {o.policy:20} {o.waiting_days:>3} days  {o.what[:50]:50} from {o.requester}")
        print(f"         waiting for: {'; '.join(o.missing)}  -> remind {', '.join(o.approvers) or 'nobody can act'}")
