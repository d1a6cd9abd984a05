"""`civicaup social ...`: official accounts, intake of posts and comments, the moderators' queue, reports."""
from __future__ import annotations

import sys
from datetime import datetime
from typing import Optional

import typer

from civicaup.errors import InputError
from civicaup.interfaces.cli.jsonl import finish, run_lines
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.social import accounts as acc
from civicaup.social import commenters, moderation, platforms, report
from civicaup.social.intake import SCOPES, Intake, item_id_of
from civicaup.stores import audit
from civicaup.stores.db import open_store

app = typer.Typer(no_args_is_help=True,
                  help="Official social-media accounts: intake, moderation queue, commenters, weekly report.")
account_app = typer.Typer(no_args_is_help=True, help="Official accounts of the departments.")
task_app = typer.Typer(no_args_is_help=True, help="Tasks raised for accounts (credential rotation).")
app.add_typer(account_app, name="account")
app.add_typer(task_app, name="task")

POLICY = typer.Option(..., "--policy", help="pack id (see 'civicaup policy list')")
JSON = typer.Option(False, "--json", help="print one JSON value")


@app.command()
def ingest(file: str = typer.Argument(..., metavar="FILE.jsonl",
                                      help='one {"id","account","author","kind","text","at"} a line (\'-\' = stdin)'),
           policy: str = POLICY,
           strikes: str = typer.Option("account", "--strikes",
                                       help="count a commenter's violations per account (default) or city-wide")) -> None:
    """Moderate posts and comments: one {"id","decision","moderation":{"action","author"}} a line out."""
    pack = get_pack(policy)
    if strikes not in SCOPES:
        raise InputError(f"--strikes must be account or city, not {strikes!r}")
    engine = open_store()
    intake = Intake(engine, pack, scope=strikes)
    bad = run_lines(file, intake.handle, id_of=item_id_of)
    if intake.counts:
        audit.append(engine, actor="cli", action="social-ingest", subject=file if file != "-" else "stdin",
                     policy=policy, detail={**intake.summary(), "bad": bad})
    finish(bad, "ingested")


@app.command()
def convert(file: str = typer.Argument(..., metavar="FILE", help="the platform's JSON export ('-' = stdin)"),
            from_: str = typer.Option(..., "--from", help="facebook or x"),
            account: Optional[str] = typer.Option(None, "--account", help="the official account, e.g. facebook:wdmparks"),
            self_id: Optional[str] = typer.Option(None, "--self", help="the account's own user or page id on the platform")
            ) -> None:
    """Print a platform export as the generic JSONL that 'social ingest' reads."""
    from civicaup.channels.events import read_text_file

    for item in platforms.convert(from_, read_text_file(file), account=account, self_id=self_id):
        emit_json(item)


# Accounts ---------------------------------------------------------------------------------------------------

def _date(value: Optional[str], what: str) -> Optional[datetime]:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{what} {value!r} is not an ISO-8601 date or time") from None


@account_app.command("add")
def account_add(policy: str = POLICY,
                platform: str = typer.Option(..., "--platform", help="facebook, x, instagram, youtube, ..."),
                handle: str = typer.Option(..., "--handle", help="the account's handle or page name"),
                department: Optional[str] = typer.Option(None, "--department"),
                director: Optional[str] = typer.Option(None, "--director", help="the Department Director's e-mail"),
                city_email: Optional[str] = typer.Option(None, "--email", help="the City address the account is tied to"),
                moderator: Optional[list[str]] = typer.Option(None, "--moderator", help="a moderator's e-mail (repeat)"),
                credentials_changed: Optional[str] = typer.Option(None, "--credentials-changed",
                                                                  help="when the password last changed (ISO date)"),
                as_json: bool = JSON) -> None:
    """Add an account, or update one (only the options given change). New moderators raise a
    credential-rotation task. No password is ever stored."""
    pack = get_pack(policy)
    when = _date(credentials_changed, "--credentials-changed")
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=pack.tz)
    saved = acc.save_account(open_store(), pack, platform=platform, handle=handle, department=department,
                             director=director, city_email=city_email, moderators=moderator or None,
                             credentials_changed=when)
    if as_json:
        emit_json({**saved.account.to_json(), "created": saved.created,
                   "task": saved.task.to_json() if saved.task else None, "notes": list(saved.notes)})
        return
    print(f"{'added' if saved.created else 'updated'} {saved.account.key} ({saved.account.department})")
    if saved.task:
        print(f"task {saved.task.id}: {saved.task.reason}")
    for n in saved.notes:
        print(f"note: {n}")


@account_app.command("list")
def account_list(policy: str = POLICY, as_json: bool = JSON) -> None:
    """Accounts with their department, director, moderators and when the credentials last changed."""
    get_pack(policy)
    found = acc.list_accounts(open_store(), policy)
    if as_json:
        emit_json([a.to_json() for a in found])
        return
    for a in found:
        changed = a.credentials_changed_at.date().isoformat() if a.credentials_changed_at else "never recorded"
        print(f"{a.key:32} {a.department:24} director {a.director}  moderators {', '.join(a.moderators)}  "
              f"e-mail {a.email}  credentials changed {changed}")


# Tasks ------------------------------------------------------------------------------------------------------

@task_app.command("list")
def task_list(policy: str = POLICY, all_: bool = typer.Option(False, "--all", help="closed tasks too"),
              as_json: bool = JSON) -> None:
    """Open tasks (credential rotations after a moderator change)."""
    get_pack(policy)
    found = acc.list_tasks(open_store(), policy, open_only=not all_)
    if as_json:
        emit_json([t.to_json() for t in found])
        return
    for t in found:
        closed = f" closed by {t.closed_by}" if t.closed_by else ""
        print(f"{t.id:5} {t.status:6} {t.kind} {t.account} [{t.clause}]{closed}: {t.reason}")


@task_app.command("close")
def task_close(task_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY,
               as_: str = typer.Option(..., "--as", help="the Director or a moderator of the account"),
               note: str = typer.Option("", "--note")) -> None:
    """Close a task; closing a credential rotation records the password as changed now."""
    t = acc.close_task(open_store(), get_pack(policy), task_id, as_, note)
    print(f"task {t.id} closed by {t.closed_by}")


# Moderation -------------------------------------------------------------------------------------------------

@app.command("queue")
def queue_(policy: str = POLICY, as_json: bool = JSON) -> None:
    """Items waiting for a moderator, with the rule and clause of each suggestion."""
    get_pack(policy)
    items = moderation.queue(open_store(), policy)
    if as_json:
        emit_json(items)
        return
    for i in items:
        print(f"{i['id']}  {i['account']}  {i['kind']} by {i['author']} ({i['author_standing']})  "
              f"now: {i['moderation']['action']}")
        print(f"    {i['text'][:300]!r}")
        for s in i["suggestions"]:
            print(f"    - {s['suggest']}: {s['rule']} (clause {s['clause']}, {s['category']}): {s['evidence']}")
            if s["quote"]:
                print(f"          \"{s['quote']}\"")


@app.command()
def moderate(item_id: str = typer.Argument(..., metavar="ID"),
             action: str = typer.Option(..., "--action", help="keep, remove or warn"),
             as_: str = typer.Option(..., "--as", help="a moderator, the Director, or communications / City Manager"),
             policy: Optional[str] = typer.Option(None, "--policy", help="needed only if the id is in two policies"),
             as_json: bool = JSON) -> None:
    """Record a moderator's outcome for an ingested item (audited)."""
    if policy:
        get_pack(policy)
    engine = open_store()
    pack = get_pack(moderation.item_policy(engine, item_id, policy))
    out = moderation.moderate(engine, pack, item_id, action, as_)
    if as_json:
        emit_json(out.to_json())
        return
    print(f"{out.item_id}: {out.action} by {out.by}; moderation {out.moderation['action']}, "
          f"author {out.moderation['author']}")


@app.command()
def removals(policy: str = POLICY, account: Optional[str] = typer.Option(None, "--account"),
             as_json: bool = JSON) -> None:
    """The public record of removed content: the content, why, the rule and the clause."""
    get_pack(policy)
    rows = moderation.removals(open_store(), policy, account=account)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        restored = f"  (restored {r['restored_at']} by {r['restored_by']})" if r["restored_at"] else ""
        print(f"{r['removed_at']}  {r['account']}  {r['id']} by {r['author']}{restored}")
        print(f"    {r['reason']}")
        print(f"    content: {r['text']!r}")


@app.command("commenters")
def commenters_(policy: str = POLICY, account: Optional[str] = typer.Option(None, "--account",
                                                                          help="one account's scope ('city' = city-wide)"),
                as_json: bool = JSON) -> None:
    """Commenters warned or blocked, with their history."""
    get_pack(policy)
    scope = None if account is None else "" if account == "city" else account
    found = commenters.list_commenters(open_store(), policy, scope=scope)
    if as_json:
        emit_json([c.to_json() for c in found])
        return
    for c in found:
        print(f"{c.author:32} {c.scope or 'city':28} {c.status:8} strikes {c.strikes}")
        for h in c.history:
            print(f"    {h['at']} {h['event']:9} item {h['item']} {h['clause']} by {h['by']}")


@app.command("report")
def report_(policy: str = POLICY, week: Optional[str] = typer.Option(None, "--week",
                                                                    help="a date in the week (default: last full week)"),
            as_json: bool = JSON) -> None:
    """Accounts not updated at least twice in the week, and open credential-rotation tasks."""
    pack = get_pack(policy)
    r = report.weekly(open_store(), pack, week)
    if as_json:
        emit_json(r)
        return
    print(f"{policy}: week {r['week']['start'][:10]} to {r['week']['end'][:10]} "
          f"(at least {r['minimum']} updates; {r['clause'] or 'policy'})")
    for a in r["accounts"]:
        mark = "ok  " if a["ok"] else "LOW "
        print(f"  {mark} {a['account']:32} {a['updates']:3} updates  {a['department']}  director {a['director']}")
    if not r["accounts"]:
        print("  no accounts registered (civicaup social account add ...)")
    for t in r["open_tasks"]:
        print(f"  open task {t['id']}: {t['reason']}")
    sys.stdout.flush()

