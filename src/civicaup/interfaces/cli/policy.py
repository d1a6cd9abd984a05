"""`civicaup policy list|show|coverage|schema`."""
from __future__ import annotations

import json

import typer

from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.coverage import coverage as pack_coverage
from civicaup.policy.registry import get_pack, pack_ids
from civicaup.policy.schema import Pack

app = typer.Typer(no_args_is_help=True, help="The policy packs: list, show, coverage of the source text, schema.")


@app.command("list")
def list_() -> None:
    """One pack id a line."""
    for pid in pack_ids():
        print(pid)


@app.command()
def show(policy: str = typer.Argument(..., help="pack id"), as_json: bool = typer.Option(False, "--json")) -> None:
    """The pack's rules with the clause each one enforces."""
    cp = get_pack(policy)
    p = cp.pack
    if as_json:
        emit_json(p.model_dump(mode="json", exclude={"clauses"}))
        return
    print(f"{p.id}: {p.title}")
    print(f"  source: {p.source.document}; {p.jurisdiction.state}, {p.jurisdiction.public_records_law}")
    print(f"  mail domain {p.city.mail_domain}, all-staff {', '.join(p.city.broadcast)}, {p.city.time_zone}")
    for r in p.rules:
        approvers = ""
        if r.approvers:
            approvers = " approvers: " + (" and " if r.approvers.mode == "all" else " or ").join(r.approvers.roles)
        cats = ",".join(r.when.categories) or "any"
        print(f"  {r.id:32} clause {r.clause:8} {'/'.join(r.channels):10} {cats:30} -> {r.action}{approvers}")


@app.command()
def coverage(policy: str = typer.Argument(..., help="pack id"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Every sentence of the source text: which rules enforce it, or why software only informs or cannot act."""
    cov = pack_coverage(get_pack(policy))
    if as_json:
        emit_json(cov.to_json())
    else:
        last = None
        for s in cov.sentences:
            if s.clause != last:
                print(f"[{s.clause}]")
                last = s.clause
            detail = ", ".join(s.rules) if s.rules else (f"{s.handled_by}: " if s.handled_by else "") + s.why
            print(f"  {s.status:10} {s.text[:70]}{'...' if len(s.text) > 70 else ''}\n             -> {detail}")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(cov.counts().items()))
        print(f"{cov.policy}: {len(cov.sentences)} sentences ({counts}); {len(cov.gaps)} gaps")
        for g in cov.gaps:
            print(f"  GAP {g}")
    if cov.gaps:
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """The JSON Schema of a pack, for editors that validate a city's own pack."""
    print(json.dumps(Pack.model_json_schema(), indent=2))
