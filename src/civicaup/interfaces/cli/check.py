"""`civicaup check mail|url|software|hardware|post|posts`: one event in, one Decision out (exit 0 whatever it is)."""
from __future__ import annotations

import gc
from typing import Any, Optional

import typer

from civicaup.channels import events
from civicaup.detect import prepared, warm_up
from civicaup.engine.evaluate import evaluate
from civicaup.errors import InputError
from civicaup.interfaces.cli.jsonl import finish, run_lines
from civicaup.interfaces.cli.output import show_decision
from civicaup.policy.registry import get_pack

app = typer.Typer(no_args_is_help=True, help="Check one message, URL, program, device or post against a policy.")

POLICY = typer.Option(..., "--policy", help="pack id (see 'civicaup policy list')")
ROLE = typer.Option(None, "--role", help="the acting user's role (repeatable; default employee)")
AT = typer.Option(None, "--at", help="ISO-8601 time; without offset, the city's local time (default now)")
JSON = typer.Option(False, "--json", help="print one JSON object, the Decision")


@app.command()
def mail(file: str = typer.Argument(..., metavar="FILE.eml"), policy: str = POLICY,
         sender: Optional[str] = typer.Option(None, "--sender", help="authenticated user (default Return-Path, else From)"),
         role: Optional[list[str]] = ROLE, at: Optional[str] = AT, as_json: bool = JSON) -> None:
    """An RFC 5322 message (mbox 'From ' line allowed)."""
    pack = get_pack(policy)
    ev = events.mail_event(file, pack, sender=sender, roles=role, at=at)
    show_decision(evaluate(ev, pack), ev.describe(), as_json=as_json)


@app.command()
def url(url: str = typer.Argument(..., metavar="URL"), policy: str = POLICY, role: Optional[list[str]] = ROLE,
        at: Optional[str] = AT, as_json: bool = JSON) -> None:
    """A URL as a browser would request it through the proxy."""
    pack = get_pack(policy)
    ev = events.web_event(url, pack, roles=role, at=at)
    show_decision(evaluate(ev, pack), ev.url.original if ev.url else url, as_json=as_json)


@app.command()
def software(name: str = typer.Argument(..., metavar="NAME"), policy: str = POLICY,
             role: Optional[list[str]] = ROLE, at: Optional[str] = AT, as_json: bool = JSON) -> None:
    """A program someone wants to download or install."""
    pack = get_pack(policy)
    ev = events.software_event(name, pack, roles=role, at=at)
    show_decision(evaluate(ev, pack), ev.describe(), as_json=as_json)


@app.command()
def hardware(name: str = typer.Argument(..., metavar="NAME"), policy: str = POLICY,
             role: Optional[list[str]] = ROLE, at: Optional[str] = AT, as_json: bool = JSON) -> None:
    """A device someone wants to connect to the city's system."""
    pack = get_pack(policy)
    ev = events.hardware_event(name, pack, roles=role, at=at)
    show_decision(evaluate(ev, pack), ev.describe(), as_json=as_json)


@app.command()
def post(file: str = typer.Argument(..., metavar="FILE", help="text of the post or comment ('-' = stdin)"),
         policy: str = POLICY, kind: str = typer.Option("comment", "--kind", help="comment, post, reply, chat, draft"),
         at: Optional[str] = AT, as_json: bool = JSON) -> None:
    """A social-media post or comment on an official city account."""
    pack = get_pack(policy)
    ev = events.post_event(events.read_text_file(file), pack, kind=kind, at=at)
    show_decision(evaluate(ev, pack), ev.describe(), as_json=as_json)


@app.command()
def posts(file: str = typer.Argument(..., metavar="FILE.jsonl", help="one {\"id\",\"text\"} a line ('-' = stdin)"),
          policy: str = POLICY) -> None:
    """Batch: one {"id","decision"} a line out; a bad line gives {"id","error"} and exit 2 at the end."""
    pack = get_pack(policy)
    # The word lists, automata and model are some 400,000 objects that live as long as the command: keep them
    # out of the cyclic collector's way while it runs (a full collection walking them costs about as much as
    # scanning a thousand posts), as the Squid helper does for its caches; undone at the end for a caller
    # that runs the command in its own process.
    warm_up()
    gc.freeze()
    try:
        _posts(file, pack)
    finally:
        gc.unfreeze()


def _posts(file: str, pack: Any) -> None:
    def check_one(n: int, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InputError(f"line {n}: needs an object with a string \"text\"")
        ev = events.post_event(item["text"], pack, kind=str(item.get("kind") or "comment"),
                               at=item.get("at") if isinstance(item.get("at"), str) else None)
        return {"id": item.get("id"), "decision": evaluate(ev, pack).to_json()}

    def prepare(items: list[Any]) -> Any:  # each chunk's texts scanned in one batch: the same decisions, faster
        return prepared(item["text"] for item in items if isinstance(item, dict) and isinstance(item.get("text"), str))

    finish(run_lines(file, check_one, id_of=_post_id, prepare=prepare), "checked")


def _post_id(item: Any) -> Any:
    """The id an error line of `check posts` carries: only a line that is an object with a string text has one."""
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("text"), str) else None
