"""`civicaup audit verify|export`: the hash-chained audit log."""
from __future__ import annotations

import json
from typing import Optional

import typer

from civicaup.errors import InputError
from civicaup.stores import audit
from civicaup.stores.db import open_store

app = typer.Typer(no_args_is_help=True, help="The append-only, hash-chained audit log.")


@app.command()
def verify(policy: Optional[str] = typer.Option(None, "--policy",
                                                help="only this city's chain (default: every chain)")) -> None:
    """Exit 0 when the chains are intact, 1 naming the first bad entry."""
    if policy is not None:
        from civicaup.policy.registry import get_pack

        get_pack(policy)  # an unknown city is an error, not an empty chain
    n, problem = audit.verify(open_store(), None if policy is None else audit.chain_of(policy))
    if problem:
        print(f"audit log BROKEN: {problem}")
        raise typer.Exit(1)
    print(f"audit log intact: {n} entries")


@app.command()
def export(fmt: str = typer.Option("jsonl", "--format", help="jsonl or syslog")) -> None:
    """Every entry, for the city's SIEM: JSON lines, or RFC 5424 syslog lines with the JSON as message."""
    if fmt not in ("jsonl", "syslog"):
        raise InputError(f"--format must be jsonl or syslog, not {fmt!r}")
    for e in audit.entries(open_store()):
        body = json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True)
        if fmt == "jsonl":
            print(body)
        else:
            at = e.to_json()["at"]
            print(f"<110>1 {at} - civicaup - {e.action} [civicaup@32473 id=\"{e.id}\" hash=\"{e.hash}\"] {body}")
