"""`civicaup case report|list|show|close|sweep`: reports of misuse and flags, for HR and the people routed to."""
from __future__ import annotations

from typing import Optional

import typer

from civicaup.governance import cases
from civicaup.governance.people import person
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store

app = typer.Typer(no_args_is_help=True, help="Reports of suspected misuse and flagged events, as cases.")
POLICY = typer.Option(..., "--policy", help="pack id")
AS = typer.Option(..., "--as", help="your e-mail address in the directory")
JSON = typer.Option(False, "--json")


@app.command()
def report(policy: str = POLICY, as_email: str = AS,
           summary: str = typer.Option(..., "--summary", help="what happened"),
           about: str = typer.Option("", "--about", help="the person concerned (e-mail), if known"),
           evidence: Optional[list[str]] = typer.Option(None, "--evidence", help="a link (repeatable)"),
           as_json: bool = JSON) -> None:
    """Report suspected misuse; it goes where the city's policy says (e.g. your supervisor)."""
    c = cases.report(open_store(), get_pack(policy), as_email, summary, about=about, evidence=list(evidence or []))
    if as_json:
        emit_json(c.receipt() | {"routed_to": [r["email"] for r in c.routed_to]})
        return
    print(f"case {c.id} opened; sent to {', '.join(r['email'] for r in c.routed_to) or 'nobody (no one holds the role)'}")


@app.command("list")
def list_(policy: str = POLICY, as_email: str = AS, status: Optional[str] = typer.Option(None, "--status"),
          as_json: bool = JSON) -> None:
    """The cases this person may see (HR: all of the city's)."""
    engine = open_store()
    pack = get_pack(policy)
    rows = cases.visible(engine, pack, person(engine, pack.id, as_email), status=status)
    if as_json:
        emit_json([c.to_json() for c in rows])
        return
    for c in rows:
        print(f"{c.id:<5} {c.status:7} {c.source:8} {c.about or '-':32} {c.department:20} {c.summary[:60]}")


@app.command()
def show(cid: int = typer.Argument(..., metavar="ID"), policy: str = POLICY, as_email: str = AS,
         as_json: bool = JSON) -> None:
    """One case (the view is audited)."""
    c = cases.show(open_store(), get_pack(policy), cid, as_email)
    if as_json:
        emit_json(c.to_json())
        return
    print(f"case {c.id} [{c.policy}] {c.status}  source {c.source}  clause {c.clause or '-'}")
    print(f"  reported by {c.reporter or '-'} about {c.about or '-'} ({c.department or '-'})")
    print(f"  routed to {', '.join(r['email'] + ' as ' + r['role'] for r in c.routed_to) or '-'}")
    print(f"  {c.summary}")
    for f in c.findings:
        print(f"  - {f['action']} {f['rule']} (clause {f['clause']}): {f['evidence']}")
    for e in c.evidence:
        print(f"  evidence: {e}")
    if c.status == "closed":
        print(f"  closed by {c.closed_by}: {c.outcome}: {c.decision}")


@app.command()
def close(cid: int = typer.Argument(..., metavar="ID"), policy: str = POLICY, as_email: str = AS,
          decision: str = typer.Option(..., "--decision", help="what was found and decided"),
          outcome: str = typer.Option(..., "--outcome", help=", ".join(cases.OUTCOMES))) -> None:
    """Close a case with its decision and discipline outcome."""
    c = cases.close(open_store(), get_pack(policy), cid, as_email, decision=decision, outcome=outcome)
    print(f"case {c.id} closed: {c.outcome}")


@app.command()
def sweep(policy: str = POLICY) -> None:
    """Open a case for each flagged message in the mail quarantine that has none yet."""
    made = cases.sweep(open_store(), get_pack(policy))
    print(f"opened {len(made)} cases from flagged mail")
