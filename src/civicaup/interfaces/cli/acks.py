"""`civicaup ack record|missing` and `civicaup training assign|complete|missing`."""
from __future__ import annotations

from typing import Any, Optional

import typer

from civicaup.governance import acknowledgements as acks
from civicaup.governance.dates import until as parse_until
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store

ack_app = typer.Typer(no_args_is_help=True, help="Acknowledgements of the current policy version.")
training_app = typer.Typer(no_args_is_help=True, help="Training assignments and completions.")
POLICY = typer.Option(..., "--policy", help="pack id")
JSON = typer.Option(False, "--json")


def _print_departments(departments: dict[str, list[dict[str, Any]]], extra: str = "") -> None:
    for dept, people in departments.items():
        print(f"  {dept} ({len(people)})")
        for p in people:
            tail = ""
            if extra == "ack" and p.get("last_version"):
                tail = f"  (acknowledged version {p['last_version']})"
            if extra == "training":
                tail = ("  overdue" if p.get("overdue") else "") + ("" if p.get("assigned") else "  (not assigned)")
            print(f"    {p['email']:40} {p['name']:24} {p['title']}{tail}")


@ack_app.command()
def record(policy: str = POLICY, as_email: str = typer.Option(..., "--as", help="the person acknowledging"),
           version: Optional[str] = typer.Option(None, "--version", help="default: the pack's current version"),
           by: Optional[str] = typer.Option(None, "--by", help="who recorded it (e.g. the HR clerk)")) -> None:
    """Record that a person acknowledged the current version of the policy."""
    print(acks.record(open_store(), get_pack(policy), as_email, version=version, by=by))


@ack_app.command()
def missing(policy: str = POLICY, department: Optional[str] = typer.Option(None, "--department"),
            as_json: bool = JSON) -> None:
    """Active people who have not acknowledged the current version, by department."""
    out = acks.missing(open_store(), get_pack(policy), department=department)
    if as_json:
        emit_json(out)
        return
    print(f"{out['missing']} people have not acknowledged {out['policy']} version {out['version']}")
    _print_departments(out["departments"], "ack")


@training_app.command()
def assign(course: str = typer.Argument(..., metavar="COURSE"), policy: str = POLICY,
           to: Optional[list[str]] = typer.Option(None, "--to", help="e-mail (repeatable; default: everyone)"),
           due: Optional[str] = typer.Option(None, "--due", help="ISO date"),
           by: str = typer.Option("cli", "--by", help="who assigns it")) -> None:
    """Assign a course the city's settings name (Kirkwood: groupwise-intro)."""
    pack = get_pack(policy)
    n = acks.assign(open_store(), pack, course, list(to or []), by=by, due=parse_until(due, pack, "--due") if due else None)
    print(f"assigned {course} to {n} people")


@training_app.command()
def complete(course: str = typer.Argument(..., metavar="COURSE"), policy: str = POLICY,
             as_email: str = typer.Option(..., "--as", help="the person who completed it"),
             by: Optional[str] = typer.Option(None, "--by", help="who recorded it")) -> None:
    """Record a completion."""
    print(acks.complete(open_store(), get_pack(policy), course, as_email, by=by))


@training_app.command("missing")
def training_missing(policy: str = POLICY, course: Optional[str] = typer.Option(None, "--course"),
                     department: Optional[str] = typer.Option(None, "--department"), as_json: bool = JSON) -> None:
    """Per course, who has not completed it, by department."""
    out = acks.training_missing(open_store(), get_pack(policy), course_id=course, department=department)
    if as_json:
        emit_json(out)
        return
    if not out["courses"]:
        print(f"{policy} names no required training")
    for c in out["courses"]:
        print(f"{c['course']} ({c['title']}, clause {c['clause'] or '-'}): {c['missing']} missing")
        _print_departments(c["departments"], "training")
