"""`civicaup archive|hold|retention|records`: the records archive, legal holds, disposition and
public-records requests (issue 6). Domain code lives in civicaup.records; this module only parses
options, calls it, and prints."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import List, Optional

import typer

from civicaup.errors import InputError
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores import audit
from civicaup.stores.db import open_store

archive_app = typer.Typer(no_args_is_help=True, help="The mail archive: import mailboxes, search, show, verify.")
hold_app = typer.Typer(no_args_is_help=True, help="Legal holds: records they cover are never disposed of.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention schedules and disposition runs.")
records_app = typer.Typer(no_args_is_help=True, help="Public-records requests, deadlines and classification.")
request_app = typer.Typer(no_args_is_help=True, help="Public-records requests: log, tag, redact, export.")
records_app.add_typer(request_app, name="request")

POLICY = typer.Option(..., "--policy", help="pack id")
AS = typer.Option(..., "--as", help="the person acting (e-mail in the directory)")
JSON = typer.Option(False, "--json", help="print one JSON value")


def _day(value: Optional[str], option: str) -> Optional[date]:
    from civicaup.records.search import parse_day

    return parse_day(value, option)


def _filters(text: Optional[str], from_: Optional[str], to: Optional[str], since: Optional[str],
             until: Optional[str], attachment: Optional[str]):  # type: ignore[no-untyped-def]
    from civicaup.records.search import Filters

    return Filters(text=text or None, from_=from_, to=to, since=_day(since, "--since"), until=_day(until, "--until"),
                   attachment=attachment)


# ---------------------------------------------------------------- archive

@archive_app.command("import")
def archive_import(paths: List[Path] = typer.Argument(..., metavar="PATH...", help="mbox, Maildir, .eml, folders"),
                   policy: str = POLICY,
                   jobs: Optional[int] = typer.Option(None, "--jobs", help="parser processes (default: one a CPU)"),
                   as_json: bool = JSON) -> None:
    """Archive mailboxes: each message stored once (by SHA-256), indexed and classified."""
    from civicaup.records.archive import import_paths

    get_pack(policy)
    engine = open_store()
    report = import_paths(engine, paths, policy=policy, jobs=jobs)
    audit.append(engine, actor="cli", action="archive-import", subject=", ".join(str(p) for p in paths)[:500],
                 policy=policy, detail={k: v for k, v in report.to_json().items() if k != "failures"})
    if as_json:
        emit_json(report.to_json())
        return
    rate = report.imported / report.seconds if report.seconds else 0.0
    print(f"imported {report.imported}, duplicate {report.duplicate}, failed {report.failed} "
          f"({report.seconds:.1f} s, {rate:.0f} messages/s)")
    for source, reason in report.failures[:20]:
        print(f"  failed: {source}: {reason}", file=sys.stderr)


@archive_app.command("search")
def archive_search(text: Optional[str] = typer.Argument(None, metavar="[TEXT]",
                                                       help='words (stemmed), "a phrase", OR, -word, prefix*'),
                   policy: str = POLICY,
                   from_: Optional[str] = typer.Option(None, "--from", help="sender address or domain"),
                   to: Optional[str] = typer.Option(None, "--to", help="recipient (to/cc/bcc) address or domain"),
                   since: Optional[str] = typer.Option(None, "--since", help="first day, YYYY-MM-DD (city time)"),
                   until: Optional[str] = typer.Option(None, "--until", help="last day, YYYY-MM-DD (city time)"),
                   attachment: Optional[str] = typer.Option(None, "--attachment", help="part of a file name"),
                   limit: int = typer.Option(50, "--limit", min=1, help="newest N"),
                   count: bool = typer.Option(False, "--count", help="also count every match"),
                   as_json: bool = JSON) -> None:
    """Search the archive, newest first."""
    from civicaup.records.search import search

    pack = get_pack(policy)
    result = search(open_store(), policy, _filters(text, from_, to, since, until, attachment), tz=pack.tz,
                    limit=limit, count=count)
    if as_json:
        emit_json(result.to_json())
        return
    for r in result.records:
        local = r.date.astimezone(pack.tz).strftime("%Y-%m-%d %H:%M")
        att = f"  [{len(r.attachments)} att]" if r.attachments else ""
        print(f"{r.ref}  {local}  {r.from_addr[:32]:32}  {r.subject[:70]}{att}")
    more = " (more: raise --limit)" if result.more else ""
    total = f" of {result.count}" if result.count is not None else ""
    print(f"{len(result.records)}{total} shown{more} in {result.ms:.0f} ms", file=sys.stderr)


@archive_app.command("show")
def archive_show(ref: str = typer.Argument(..., metavar="REF"), policy: str = POLICY,
                 actor: str = typer.Option("cli", "--as", help="who is reading (audited)"),
                 raw: bool = typer.Option(False, "--raw", help="the original bytes, hash-verified"),
                 as_json: bool = JSON) -> None:
    """One record: metadata and text, or the original bytes (the hash is checked on every read)."""
    from civicaup.records.archive import find_record, original
    from civicaup.records.redact import document

    engine = open_store()
    rec = find_record(engine, policy, ref)
    data = original(rec)
    audit.append(engine, actor=actor, action="archive-read", subject=f"record {rec.ref}", policy=policy,
                 detail={"sha256": rec.sha256, "raw": raw})
    if raw:
        sys.stdout.buffer.write(data)
        return
    if as_json:
        emit_json({**rec.to_json(), "text": document(rec, data)})
        return
    print(f"Record {rec.ref}  series {rec.series} ({rec.series_by})  sha256 {rec.sha256} (verified)")
    print(document(rec, data))


@archive_app.command("verify")
def archive_verify(policy: str = POLICY) -> None:
    """Check every stored original of a policy against its SHA-256 (exit 1 naming the bad ones)."""
    from civicaup.records.archive import verify

    n, bad = verify(open_store(), policy)
    for ref, problem in bad[:50]:
        print(f"BAD {ref}: {problem}")
    if bad:
        print(f"{len(bad)} of {n} records fail their hash check")
        raise typer.Exit(1)
    print(f"all {n} records verified")


def _maintenance_problems(doc: dict, as_json: bool) -> None:  # type: ignore[type-arg]
    """Exit 1 naming what a maintenance run had to leave as it was (after its summary)."""
    from civicaup.records.maintenance import problems

    found = problems(doc)
    if not as_json:
        for line in found[:50]:
            print(f"BAD {line}")
    if found:
        raise typer.Exit(1)


@archive_app.command("migrate-originals")
def archive_migrate_originals(dry_run: bool = typer.Option(False, "--dry-run", help="count and check only"),
                              actor: Optional[str] = typer.Option(None, "--as", help="who runs it (audited)"),
                              as_json: bool = JSON) -> None:
    """Move originals kept as one file each (earlier versions) into the segment store (safe to re-run)."""
    from civicaup.records.maintenance import migrate_originals

    doc = migrate_originals(open_store(), dry_run=dry_run, actor=actor)
    if as_json:
        emit_json(doc)
    else:
        verb = "would move" if dry_run else "moved"
        print(f"{verb} {doc['moved']} originals ({doc['bytes']} bytes) into segments; {doc['already']} already "
              f"there; {len(doc['bad'])} left in place" + (f"; audit entry {doc['audit']}" if doc["audit"] else ""))
    _maintenance_problems(doc, as_json)


@archive_app.command("compact")
def archive_compact(dry_run: bool = typer.Option(False, "--dry-run", help="say what would be done only"),
                    threshold: float = typer.Option(0.25, "--threshold",
                                                    help="rewrite a segment once this share of it is dead (0-1; "
                                                         "0: any dead byte)"),
                    actor: Optional[str] = typer.Option(None, "--as", help="who runs it (audited)"),
                    as_json: bool = JSON) -> None:
    """Reclaim the space disposed originals left in segment files (safe to interrupt and re-run)."""
    from civicaup.records.maintenance import compact_segments

    doc = compact_segments(open_store(), dry_run=dry_run, threshold=threshold, actor=actor)
    if as_json:
        emit_json(doc)
    else:
        verb = "would rewrite" if dry_run else "rewrote"
        print(f"{verb} {len(doc['rewritten'])} segments ({doc['moved']} records moved) and "
              f"{'would delete' if dry_run else 'deleted'} {len(doc['deleted'])}, {doc['reclaimed']} bytes "
              f"reclaimed; {len(doc['busy'])} busy, {len(doc['damaged'])} damaged"
              + (f"; audit entry {doc['audit']}" if doc["audit"] else ""))
    _maintenance_problems(doc, as_json)


# ---------------------------------------------------------------- hold

@hold_app.command("add")
def hold_add(policy: str = POLICY, custodian: Optional[str] = typer.Option(None, "--custodian",
                                                                          help="mail from, to or cc this address"),
             since: Optional[str] = typer.Option(None, "--since"), until: Optional[str] = typer.Option(None, "--until"),
             query: Optional[str] = typer.Option(None, "--query", help="full-text query, as for archive search"),
             reason: str = typer.Option(..., "--reason", help="the matter (case name, claim, request)"),
             actor: str = AS, as_json: bool = JSON) -> None:
    """Place a legal hold."""
    from civicaup.records.holds import add_hold

    get_pack(policy)
    hold = add_hold(open_store(), policy, custodian=custodian, since=_day(since, "--since"),
                    until=_day(until, "--until"), query=query, reason=reason, actor=actor)
    if as_json:
        emit_json(hold.to_json())
    else:
        print(f"hold {hold.id} placed")


@hold_app.command("list")
def hold_list(policy: str = POLICY, status: str = typer.Option("active", "--status", help="active, released, all"),
              as_json: bool = JSON) -> None:
    """Holds with the number of archived records each covers now."""
    from civicaup.records.holds import list_holds
    from civicaup.records.search import matching_ids

    pack = get_pack(policy)
    engine = open_store()
    holds = list_holds(engine, policy, status=None if status == "all" else status)
    out = []
    with engine.connect() as conn:
        for h in holds:
            out.append({**h.to_json(), "records": len(matching_ids(conn, policy, h.filters(), pack.tz))})
    if as_json:
        emit_json(out)
        return
    for h in out:
        what = ", ".join(f"{k} {h[k]}" for k in ("custodian", "since", "until", "query") if h[k])
        print(f"{h['id']:4}  {h['status']:8}  {h['records']:6} records  {what}  - {h['reason']}")


@hold_app.command("release")
def hold_release(hold_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY, actor: str = AS,
                 reason: str = typer.Option("", "--reason"), as_json: bool = JSON) -> None:
    """Release a hold (the clerk or the city administrator only; audited)."""
    from civicaup.records.holds import release_hold

    hold = release_hold(open_store(), policy, hold_id, actor=actor, reason=reason)
    if as_json:
        emit_json(hold.to_json())
    else:
        print(f"hold {hold.id} released by {hold.released_by}")


# ---------------------------------------------------------------- retention

@retention_app.command("run")
def retention_run(policy: str = POLICY, dry_run: bool = typer.Option(False, "--dry-run", help="list only"),
                  actor: Optional[str] = typer.Option(None, "--as", help="the clerk disposing (recorded)"),
                  as_json: bool = JSON) -> None:
    """List the records due for disposition; without --dry-run, dispose of them with a certificate."""
    from civicaup.records.retention import run

    p, entries = run(open_store(), policy, dry_run=dry_run, actor=actor)
    doc = p.to_json(dry_run=dry_run)
    doc["certificates"] = entries
    if as_json:
        emit_json(doc)
        return
    verb = "due" if dry_run else "disposed of"
    for s in doc["series"]:
        flag = "  (period to be confirmed by the clerk)" if s["confirm"] else ""
        print(f"{s['due']:7} {verb:12} {s['id']:24} {s['retention']:40} {s['reference']}{flag}")
    print(f"{doc['due']} records {verb}; {doc['kept_by_hold_or_request']} expired records kept by holds or requests"
          + (f"; certificates: audit entries {', '.join(map(str, entries))}" if entries else ""))


@retention_app.command("schedule")
def retention_schedule(policy: str = POLICY, as_json: bool = JSON) -> None:
    """The retention schedule in force: series, periods, references, assignment rules."""
    from civicaup.records.schedules import schedule_for

    sched = schedule_for(get_pack(policy).pack.jurisdiction.state, policy)
    if as_json:
        emit_json(sched.model_dump())
        return
    print(f"{sched.title}\nAuthority: {sched.authority}\n")
    for s in sched.series:
        flag = "  [to be confirmed by the clerk]" if s.confirm else ""
        print(f"{s.id:24} {s.retention.describe():42} {s.reference}{flag}")
    print("\nAssignment rules (first match wins; otherwise " + sched.default_series + "):")
    for r in sched.rules:
        print(f"  {r.id:20} -> {r.series:24} {r.when.model_dump(exclude_defaults=True)}")


# ---------------------------------------------------------------- records

@records_app.command("deadline")
def records_deadline(state: str = typer.Option(..., "--state", help="MO, KY, IA or MN"),
                     received: str = typer.Option(..., "--received", help="ISO date[THH:MM], city time"),
                     kind: str = typer.Option("public", "--kind", help="public or data-subject"),
                     closed: List[str] = typer.Option([], "--closed", help="extra day the office is closed"),
                     as_json: bool = JSON) -> None:
    """The statutory response deadline for a request received then."""
    from civicaup.records.deadlines import deadline, parse_received

    when = parse_received(received)
    shut = frozenset(d for d in (_day(c, "--closed") for c in closed) if d)
    dl = deadline(state, when if "T" in received else when.date(), kind, shut)
    if as_json:
        emit_json(dl.to_json())
        return
    print(f"due {dl.due.isoformat() if dl.due else 'no fixed day'}  ({dl.statute})")
    print(dl.note)


@records_app.command("classify")
def records_classify(ref: str = typer.Argument(..., metavar="REF"), policy: str = POLICY,
                     series: str = typer.Option(..., "--series", help="series id (retention schedule)"),
                     actor: str = AS) -> None:
    """File a record under a retention series (the clerk's choice outranks the rules)."""
    from civicaup.records.retention import classify

    old, new = classify(open_store(), policy, ref, series, actor=actor)
    print(f"{ref}: {old} -> {new}")


@request_app.command("add")
def request_add(policy: str = POLICY, requester: str = typer.Option(..., "--requester"),
                contact: str = typer.Option("", "--contact"),
                description: str = typer.Option(..., "--description"),
                received: str = typer.Option(..., "--received", help="ISO date[THH:MM], city time"),
                kind: str = typer.Option("public", "--kind", help="public or data-subject"),
                actor: str = AS, as_json: bool = JSON) -> None:
    """Log a request; its statutory due date is computed."""
    from civicaup.records.requests import add_request

    req = add_request(open_store(), policy, requester=requester, contact=contact, description=description,
                      received=received, kind=kind, actor=actor)
    if as_json:
        emit_json(req.to_json())
    else:
        print(f"request {req.id}: due {req.due.isoformat() if req.due else 'no fixed day'} ({req.statute})")


@request_app.command("list")
def request_list(policy: str = POLICY, status: str = typer.Option("open", "--status", help="open, closed, all"),
                 as_json: bool = JSON) -> None:
    """Requests, soonest due first."""
    from civicaup.records.requests import list_requests

    reqs = list_requests(open_store(), policy, status=status)
    if as_json:
        emit_json([r.to_json() for r in reqs])
        return
    for r in reqs:
        due = r.due.isoformat() if r.due else "no fixed day"
        print(f"{r.id:4}  {r.status:6}  due {due:12}  received {r.received:16}  {r.requester}: {r.description[:60]}")


@request_app.command("show")
def request_show(request_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY,
                 as_json: bool = JSON) -> None:
    """A request with its tagged records."""
    from civicaup.records.requests import get_request, items

    engine = open_store()
    req = get_request(engine, policy, request_id)
    found = items(engine, policy, request_id)
    if as_json:
        emit_json({**req.to_json(), "records": [{"sha256": i.sha256, "ref": i.sha256[:12], "status": i.status,
                                                  "note": i.note,
                                                  "record": i.record.to_json() if i.record else None}
                                                 for i in found]})
        return
    due = req.due.isoformat() if req.due else "no fixed day"
    print(f"request {req.id} ({req.status}) from {req.requester}: {req.description}\n"
          f"received {req.received}, due {due} ({req.statute})\n{req.note}\n")
    for i in found:
        subj = i.record.subject[:60] if i.record else "(no longer in the archive)"
        print(f"  {i.sha256[:12]}  {i.status:10}  {subj}")


@request_app.command("tag")
def request_tag(request_id: int = typer.Argument(..., metavar="ID"),
                refs: List[str] = typer.Argument(None, metavar="[REF...]"), policy: str = POLICY,
                query: Optional[str] = typer.Option(None, "--query", help="tag every match of this search"),
                from_: Optional[str] = typer.Option(None, "--from"), to: Optional[str] = typer.Option(None, "--to"),
                since: Optional[str] = typer.Option(None, "--since"),
                until: Optional[str] = typer.Option(None, "--until"),
                attachment: Optional[str] = typer.Option(None, "--attachment"),
                withhold: bool = typer.Option(False, "--withhold", help="responsive but withheld (give --note)"),
                note: str = typer.Option("", "--note", help="e.g. the exemption a withheld record falls under"),
                actor: str = AS) -> None:
    """Tag records responsive to a request: by REF, or every match of a search."""
    from civicaup.records.requests import tag

    has_search = any((query, from_, to, since, until, attachment))
    if not refs and not has_search:
        raise InputError("give record references or a search (--query/--from/--to/--since/--until/--attachment)")
    f = _filters(query, from_, to, since, until, attachment) if has_search else None
    n = tag(open_store(), policy, request_id, refs=list(refs or []), filters=f,
            status="withheld" if withhold else "responsive", note=note, actor=actor)
    print(f"{n} records tagged {'withheld' if withhold else 'responsive'} for request {request_id}")


@request_app.command("untag")
def request_untag(request_id: int = typer.Argument(..., metavar="ID"),
                  refs: List[str] = typer.Argument(..., metavar="REF..."), policy: str = POLICY,
                  actor: str = AS) -> None:
    """Remove records from a request."""
    from civicaup.records.requests import untag

    print(f"{untag(open_store(), policy, request_id, refs=refs, actor=actor)} records untagged")


@request_app.command("redact")
def request_redact(request_id: int = typer.Argument(..., metavar="ID"), ref: str = typer.Argument(..., metavar="REF"),
                   policy: str = POLICY, text: str = typer.Option(..., "--text", help="text to redact, every time"),
                   reason: str = typer.Option(..., "--reason", help="the exemption"), actor: str = AS) -> None:
    """Redact a text from a record's produced copy (the original is never changed)."""
    from civicaup.records.requests import add_redaction

    add_redaction(open_store(), policy, request_id, ref=ref, text=text, reason=reason, actor=actor)
    print(f"redaction recorded for {ref} in request {request_id}")


@request_app.command("export")
def request_export(request_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY,
                   out: Path = typer.Option(..., "--out", help="the zip to write"), actor: str = AS,
                   as_json: bool = JSON) -> None:
    """Write the production: originals released in full, redacted copies, index.csv, production log."""
    from civicaup.records.export import export_request

    rep = export_request(open_store(), policy, request_id, out, actor=actor)
    if as_json:
        emit_json(rep.to_json())
    else:
        print(f"{rep.path}: {rep.released_in_full} in full, {rep.redacted} redacted, {rep.withheld} withheld "
              f"(sha256 {rep.sha256})")


@request_app.command("close")
def request_close(request_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY, actor: str = AS,
                  note: str = typer.Option("", "--note")) -> None:
    """Close a request: its records are no longer kept on its account."""
    from civicaup.records.requests import close_request

    close_request(open_store(), policy, request_id, actor=actor, note=note)
    print(f"request {request_id} closed")
