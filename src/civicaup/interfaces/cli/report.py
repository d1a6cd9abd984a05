"""`civicaup report web [ingest]`: web usage from Squid's access.log, per person and department."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from civicaup.errors import InputError
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack

app = typer.Typer(no_args_is_help=True, help="Reports from what civicaup has recorded.")
web_app = typer.Typer(help="Web usage: 'report web ingest ACCESS.LOG' stores Squid's log; 'report web' reports.")
app.add_typer(web_app, name="web")


@web_app.callback(invoke_without_command=True)
def web(ctx: typer.Context,
        policy: Optional[str] = typer.Option(None, "--policy", help="pack id"),
        department: Optional[str] = typer.Option(None, "--department", help="only this department"),
        from_: Optional[str] = typer.Option(None, "--from", help="first day, YYYY-MM-DD (city time)"),
        to: Optional[str] = typer.Option(None, "--to", help="last day, YYYY-MM-DD (inclusive)"),
        person: Optional[str] = typer.Option(None, "--person", help="one person's history (needs --as)"),
        as_: Optional[str] = typer.Option(None, "--as", help="who reads it: their roles must satisfy the pack"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        svg: Optional[Path] = typer.Option(None, "--svg", help="also write a bar chart (SVG) to this file")) -> None:
    """Requests and estimated time by category, work hours vs personal time, per person and department."""
    if ctx.invoked_subcommand is not None:
        return
    if not policy:
        raise InputError("--policy is required (see 'civicaup report web --help')")
    from civicaup.channels.web import usage
    from civicaup.stores import audit
    from civicaup.stores.db import open_store

    pack = get_pack(policy)
    start, end = usage.parse_day(from_, "--from"), usage.parse_day(to, "--to")
    if start and end and start > end:
        raise InputError("--from is after --to")
    if person and not as_:
        raise InputError("--person needs --as APPROVER_EMAIL: reading one person's history is an access request")
    engine = open_store()
    if person:
        usage.check_history_access(engine, pack, person, as_ or "")
    report = usage.usage_report(engine, pack, department=department, person=person, start=start, end=end)
    if not person:
        audit.append(engine, actor=(as_ or "cli").lower(), action="report-web", subject=department or "all",
                     policy=pack.id, detail={"from": report["from"], "to": report["to"],
                                             "people": len(report["people"])})
    if svg is not None:
        try:
            svg.write_text(usage.svg_chart(report), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {svg}: {exc.strerror or exc}") from None
    if as_json:
        emit_json(report)
    else:
        sys.stdout.write(usage.format_text(report))


@web_app.command("ingest")
def ingest(file: str = typer.Argument(..., metavar="ACCESS.LOG",
                                      help="Squid's native access.log ('-' = stdin, .gz ok)"),
           policy: str = typer.Option(..., "--policy", help="pack id"),
           index: Optional[Path] = typer.Option(None, "--index", help="category index (default: the city's)")) -> None:
    """Store the requests of a Squid access.log, categorised; re-ingesting the same lines adds nothing."""
    from civicaup.channels.web import usage
    from civicaup.channels.web.categories import CategoryIndex, open_index
    from civicaup.stores import audit
    from civicaup.stores.db import open_store

    pack = get_pack(policy)
    if file != "-" and not Path(file).is_file():
        raise InputError(f"no such file: {file}")
    idx = CategoryIndex.load(index) if index is not None else open_index()
    engine = open_store()
    r = usage.ingest(engine, pack, file, idx)
    audit.append(engine, actor="cli", action="web-usage-ingest", subject=file, policy=pack.id,
                 detail={"lines": r.lines, "added": r.added, "duplicates": r.duplicates, "skipped": r.skipped})
    print(f"{r.added} requests added, {r.duplicates} already stored, {r.skipped} lines skipped (of {r.lines})")
