"""`civicaup inventory import|violations|allow|licences`: osquery results against approvals and the licence list."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from civicaup.governance import inventory
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store

app = typer.Typer(no_args_is_help=True, help="Installed software and connected devices (osquery) against approvals.")
POLICY = typer.Option(..., "--policy", help="pack id")


@app.command("import")
def import_(file: Path = typer.Argument(..., metavar="FILE.json",
                                        help="osquery JSON: programs, deb_packages, apps, usb_devices"),
            policy: str = POLICY, machine: str = typer.Option(..., "--machine", help="host name"),
            owner: Optional[str] = typer.Option(None, "--owner", help="the machine's user (directory e-mail)"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Replace the machine's inventory; unapproved and prohibited items become violations citing the clause."""
    report = inventory.import_file(open_store(), get_pack(policy), file, machine, owner=owner or "")
    if as_json:
        emit_json(report.to_json())
        return
    print(f"{report.machine}: {report.items} items, {report.violations} violations, {report.review} for review")


@app.command()
def violations(policy: str = POLICY, department: Optional[str] = typer.Option(None, "--department"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Unapproved (held, not approved) and prohibited (blocked) items per machine, with rule and clause."""
    get_pack(policy)
    rows = inventory.violations(open_store(), policy, department=department)
    if as_json:
        emit_json(rows)
        return
    for v in rows:
        print(f"{v['machine']:20} {v['owner'][:30]:30} {v['problem']:10} {v['kind']:8} {v['name'][:44]:44} "
              f"{v['rule']} (clause {v['clause']})")


@app.command()
def allow(name: str = typer.Argument(..., metavar="NAME"), policy: str = POLICY,
          as_email: str = typer.Option(..., "--as", help="IT or the city administrator"),
          kind: str = typer.Option("software", "--kind", help="software or hardware"),
          home_use: Optional[bool] = typer.Option(None, "--home-use/--no-home-use",
                                                  help="whether the licence permits home use"),
          seats: Optional[int] = typer.Option(None, "--seats", min=0),
          note: str = typer.Option("", "--note")) -> None:
    """Add a program or device to the city's approved list, with its licence terms."""
    lic = inventory.allow(open_store(), get_pack(policy), name, as_email, kind=kind, home_use=home_use, seats=seats,
                          note=note)
    home = {True: "home use permitted", False: "no home use", None: "home use not recorded"}[lic.home_use]
    print(f"approved {lic.kind} {lic.name!r} for {policy} ({home})")


@app.command()
def licences(policy: str = POLICY, as_json: bool = typer.Option(False, "--json")) -> None:
    """The approved list with licence terms (home use: Kentucky (E), West Des Moines Software Usage ¶4)."""
    get_pack(policy)
    rows = inventory.licence_list(open_store(), policy)
    if as_json:
        emit_json([x.to_json() for x in rows])
        return
    for x in rows:
        home = {True: "home use", False: "no home use", None: "-"}[x.home_use]
        print(f"{x.kind:8} {x.name[:50]:50} {home:12} {x.seats if x.seats is not None else '-':>5}  {x.note}")
