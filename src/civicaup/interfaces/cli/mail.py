"""`civicaup milter`, `civicaup relay` and `civicaup quarantine list|show|release|reject`."""
from __future__ import annotations

import asyncio
import sys
from typing import Optional

import typer

from civicaup import settings
from civicaup.interfaces.cli.output import emit_json

quarantine_app = typer.Typer(no_args_is_help=True,
                             help="Held mail: list, show, release (re-inject the original) or reject (notify).")

POLICY = typer.Option(..., "--policy", help="pack id (see 'civicaup policy list')")
NEXT_HOP_HELP = "HOST:PORT where released mail is re-injected (a listener of the MTA without the filter)"
LOG_LEVEL_HELP = "debug, info, warning or error (default: [log] level in the configuration)"


def _logging(level: Optional[str]) -> None:
    """The shared log format and level ([log] in the configuration; --log-level overrides the level)."""
    from civicaup.errors import InputError
    from civicaup.operations import logs

    try:
        logs.configure(level=level)
    except ValueError as exc:
        raise InputError(f"--log-level: {exc}") from None


def _gateway(policy: str, *, budget: float, next_hop: str, channel: str, workers: int, journal: bool,
             journal_dir: Optional[str], journal_fsync: bool):  # type: ignore[no-untyped-def]
    from civicaup.channels.mail.delivery import parse_hop
    from civicaup.channels.mail.gateway import MailGateway, warm_up
    from civicaup.channels.mail.journal import MaildirJournal, NullJournal
    from civicaup.errors import InputError
    from civicaup.policy.registry import get_pack
    from civicaup.stores.db import open_store

    get_pack(policy)
    if budget <= 0:
        raise InputError("--budget must be more than 0 seconds")
    parse_hop(next_hop)
    store = open_store()
    sink = MaildirJournal(journal_dir, fsync=journal_fsync) if journal else NullJournal()
    gw = MailGateway(policy, store=store, journal=sink, budget=budget, next_hop=next_hop, channel=channel,
                     workers=workers)
    if workers == 0:  # decisions in this process: load what they need before the first message, not during it
        warm_up(policy, gw.pack)
    return gw


def milter(policy: str = POLICY,
           listen: Optional[str] = typer.Option(None, "--listen", help="HOST:PORT or unix:PATH "
                                                                    "(default listen.milter, 127.0.0.1:8890)"),
           next_hop: Optional[str] = typer.Option(None, "--next-hop", help=NEXT_HOP_HELP +
                                                  " (default mail.next_hop, 127.0.0.1:10026)"),
           budget: float = typer.Option(20.0, "--budget", help="seconds per message before answering tempfail"),
           spool_threshold: int = typer.Option(1 << 20, "--spool-threshold",
                                               help="bytes of a message kept in memory; the rest goes to disk"),
           workers: int = typer.Option(0, "--workers", help="decision processes (0: threads in this process)"),
           processes: Optional[int] = typer.Option(None, "--processes", help="milter processes sharing the socket, "
                                                   "each deciding its own connections, to use more cores "
                                                   "(default mail.processes, 1)"),
           journal: bool = typer.Option(True, "--journal/--no-journal", help="keep passed mail for the archive"),
           journal_dir: Optional[str] = typer.Option(None, "--journal-dir", help="default $CIVICAUP_HOME/journal"),
           journal_fsync: bool = typer.Option(False, "--journal-fsync", help="fsync each journaled message"),
           log_level: Optional[str] = typer.Option(None, "--log-level", help=LOG_LEVEL_HELP)) -> None:
    """Postfix/Sendmail milter: smtpd_milters = inet:127.0.0.1:8890 (or unix:PATH). Stops on SIGTERM."""
    from civicaup.channels.mail.milter import parse_listen, serve, serve_processes
    from civicaup.config import home

    cfg = settings.load()
    listen = listen or cfg.listen.milter
    next_hop = next_hop or cfg.mail.next_hop
    _logging(log_level)
    parse_listen(listen)
    processes = _check_processes(cfg.mail.processes if processes is None else processes, workers)
    gw = _gateway(policy, budget=budget, next_hop=next_hop, channel="milter", workers=workers, journal=journal,
                  journal_dir=journal_dir, journal_fsync=journal_fsync)
    kw = {"memory_limit": spool_threshold, "spool_dir": str(home() / "spool")}
    if processes > 1:
        raise typer.Exit(serve_processes(gw, listen, processes, **kw))
    asyncio.run(serve(gw, listen, **kw))


def relay(policy: str = POLICY,
          listen: Optional[str] = typer.Option(None, "--listen", help="HOST:PORT (default listen.relay, "
                                                                      "127.0.0.1:10025)"),
          next_hop: Optional[str] = typer.Option(None, "--next-hop", help="HOST:PORT of the MTA's re-injection "
                                                                          "listener (default mail.next_hop)"),
          budget: float = typer.Option(20.0, "--budget", help="seconds per message before answering 451"),
          max_size: Optional[int] = typer.Option(None, "--max-size", help="largest message accepted, bytes "
                                                                          "(default mail.max_message_mb)"),
          workers: int = typer.Option(0, "--workers", help="decision processes (0: threads in this process)"),
          processes: Optional[int] = typer.Option(None, "--processes", help="relay processes sharing the port, "
                                                  "each deciding its own connections, to use more cores "
                                                  "(default mail.processes, 1)"),
          journal: bool = typer.Option(True, "--journal/--no-journal", help="keep passed mail for the archive"),
          journal_dir: Optional[str] = typer.Option(None, "--journal-dir", help="default $CIVICAUP_HOME/journal"),
          journal_fsync: bool = typer.Option(False, "--journal-fsync", help="fsync each journaled message"),
          log_level: Optional[str] = typer.Option(None, "--log-level", help=LOG_LEVEL_HELP)) -> None:
    """SMTP content filter: receives on --listen, re-injects to --next-hop. Stops on SIGTERM."""
    from civicaup.channels.mail.relay import parse_inet, serve, serve_processes
    from civicaup.config import home

    cfg = settings.load()
    listen = listen or cfg.listen.relay
    max_size = max_size or cfg.mail.max_message_mb * 1024 * 1024
    next_hop = next_hop or cfg.mail.next_hop
    _logging(log_level)
    parse_inet(listen)
    processes = _check_processes(cfg.mail.processes if processes is None else processes, workers)
    gw = _gateway(policy, budget=budget, next_hop=next_hop, channel="relay", workers=workers, journal=journal,
                  journal_dir=journal_dir, journal_fsync=journal_fsync)
    kw = {"max_size": max_size, "spool_dir": str(home() / "spool")}
    if processes > 1:
        raise typer.Exit(serve_processes(gw, listen, next_hop, processes, **kw))
    asyncio.run(serve(gw, listen, next_hop, **kw))


def _check_processes(processes: int, workers: int) -> int:
    """The process count, refused in one line when it is not usable."""
    from civicaup.errors import InputError

    if processes < 1:
        raise InputError("--processes must be at least 1")
    if processes > 1 and workers:
        raise InputError("--processes and --workers: give one (several processes decide in themselves)")
    return processes


# ---------------------------------------------------------------- quarantine

@quarantine_app.command("list")
def list_(policy: Optional[str] = typer.Option(None, "--policy"), as_json: bool = typer.Option(False, "--json"),
          everything: bool = typer.Option(False, "--all", help="also released and rejected messages")) -> None:
    """Held (and flagged, and approved-but-undelivered) messages: id, policy, sender, subject, rule, clause,
    approvers, status."""
    from civicaup.channels.mail import quarantine
    from civicaup.policy.registry import get_pack
    from civicaup.stores.db import open_store

    if policy:
        get_pack(policy)
    rows = quarantine.list_held(open_store(), policy, everything=everything)
    if as_json:
        emit_json([{k: v for k, v in r.to_json().items() if k not in ("decision",)} for r in rows])
        return
    for r in rows:
        print(f"{r.id:<6} {r.policy:20} {r.status:9} {r.sender[:36]:36} {r.subject[:40]!r:42} "
              f"{r.rule} (clause {r.clause})  approvers: {r.approver_text() or '-'}")


AS = typer.Option(..., "--as", help="the approver's e-mail address (from the directory)")


@quarantine_app.command("show")
def show(qid: int = typer.Argument(..., metavar="ID"), as_email: str = AS,
         as_json: bool = typer.Option(False, "--json")) -> None:
    """One held message, its findings and approvals, and its text (for its approvers; the view is audited)."""
    from civicaup.channels.mail import quarantine
    from civicaup.stores import audit
    from civicaup.stores.db import open_store

    engine = open_store()
    held = quarantine.get(engine, qid)
    person = quarantine.find_person(engine, held.policy, as_email)
    roles = set()
    for spec in held.approvers or [{"rule": "", "roles": ["it", "hr", "city-administrator"], "needed": "any"}]:
        spec = spec if spec["roles"] else {**spec, "roles": ["it", "hr", "city-administrator"]}
        roles |= quarantine.permitted_roles(held, person, spec)
    if not roles:
        raise quarantine.NotPermitted(f"{as_email} may not see message {qid}: it is for " +
                                      (held.approver_text() or "it, hr or city-administrator"))
    audit.append(engine, actor=person.email, action="mail-view", subject=f"quarantine {qid}", policy=held.policy,
                 detail={"rule": held.rule, "clause": held.clause, "sha256": held.sha256})
    from civicaup.channels.mail.mime import parse_mail
    mail = parse_mail(quarantine.raw_bytes(held))
    text = "\n\n".join(t.text for t in mail.texts)[:20_000]
    if as_json:
        emit_json({**held.to_json(), "missing": quarantine.missing(held), "text": text,
                   "attachments": [{"filename": a.filename, "type": a.sniffed_type or a.declared_type,
                                    "size": a.size} for a in mail.attachments]})
        return
    print(f"message {held.id} [{held.policy}] {held.status}")
    print(f"  from {held.sender} (envelope {held.mail_from or '<>'}, department {held.sender_department or '-'})")
    print(f"  to {', '.join(held.recipients)}")
    print(f"  subject {held.subject!r}, {held.size} bytes, sha256 {held.sha256}")
    for f in held.decision.get("findings", []):
        print(f"  - {f['action']:5} {f['rule']} (clause {f['clause']}): {f['evidence']}")
    for a in held.approvals:
        print(f"  {a['verdict']}d by {a['approver']} as {a['role']} at {a['at']} ({a['rule']})")
    still = quarantine.missing(held)
    if still and held.status == "held":
        print("  waiting for: " + "; ".join(still))
    for a in mail.attachments:
        print(f"  attachment {a.filename or '(unnamed)'} {a.sniffed_type or a.declared_type} {a.size} bytes")
    print()
    print(text)


@quarantine_app.command("release")
def release(qid: int = typer.Argument(..., metavar="ID"), as_email: str = AS,
            next_hop: Optional[str] = typer.Option(None, "--next-hop", help=NEXT_HOP_HELP)) -> None:
    """Approve as this person; when every approver the pack names has approved, re-inject the original bytes."""
    from civicaup.channels.mail import delivery, quarantine
    from civicaup.stores.db import open_store

    if next_hop:
        delivery.parse_hop(next_hop)
    try:
        out = quarantine.release(open_store(), qid, as_email, next_hop=next_hop)
    except delivery.DeliveryError as exc:
        print(f"civicaup: message {qid} is approved but not delivered ({exc}); run release again", file=sys.stderr)
        raise typer.Exit(1) from None
    print(out.message)


@quarantine_app.command("reject")
def reject(qid: int = typer.Argument(..., metavar="ID"), as_email: str = AS,
           next_hop: Optional[str] = typer.Option(None, "--next-hop", help=NEXT_HOP_HELP)) -> None:
    """Refuse the message; the sender is sent a notice naming the clause."""
    from civicaup.channels.mail import delivery, quarantine
    from civicaup.stores.db import open_store

    if next_hop:
        delivery.parse_hop(next_hop)
    print(quarantine.reject(open_store(), qid, as_email, next_hop=next_hop).message)
