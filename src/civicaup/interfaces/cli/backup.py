"""`civicaup backup DEST` and `civicaup restore SRC`: the whole state of an install, out and back in.
The work is done in civicaup.operations.backup; this module parses options and prints."""
from __future__ import annotations

from pathlib import Path

import typer

from civicaup.interfaces.cli.output import emit_json

JSON = typer.Option(False, "--json", help="print one JSON value")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def backup(dest: Path = typer.Argument(..., metavar="DEST", help="a new directory for the backup"),
           as_json: bool = JSON) -> None:
    """Back up the store, the data directory's state and the configuration into the new directory DEST."""
    from civicaup.operations.backup import backup as run

    s = run(dest)
    if as_json:
        emit_json(s)
        return
    print(f"backup written to {s['backup']}: {s['backend']} store at schema {s['schema_revision']}, "
          f"{s['files']} files, {_mb(s['bytes'])}")
    if not s["audited"]:
        print("the store is at an older schema than this civicaup's: it was backed up as it is, not migrated, "
              "and the backup is not in its audit log")


def restore(src: Path = typer.Argument(..., metavar="SRC", help="a backup directory, or a .tar(.gz) of one"),
            force: bool = typer.Option(False, "--force", help="replace a store that is not empty"),
            as_json: bool = JSON) -> None:
    """Verify a backup, restore it into the configured store and data directory, migrate it to this version's
    schema, then check the audit chain and every stored message (exit 1 when a check fails)."""
    from civicaup.operations.backup import restore as run

    r = run(src, force=force)
    if as_json:
        emit_json(r)
    else:
        rev = r["schema_revision"]
        print(f"restored {r['restored']} ({r['backend']}, made {r['created']} by civicaup {r['civicaup_version']}; "
              f"schema {rev['backup']}" + (f" -> {rev['now']}" if rev["now"] != rev["backup"] else "")
              + f"): {r['files']} files, {_mb(r['bytes'])} into {r['data_dir']}")
        if r["config"]:
            print(f"configuration: {r['config']['status']}")
        audit = r["audit"]
        print(f"audit log BROKEN: {audit['problem']}" if audit["problem"]
              else f"audit log intact: {audit['entries']} entries")
        for kind, what in (("archive", "archived originals"), ("quarantine", "quarantined messages")):
            c = r[kind]
            for b in c["bad"][:50]:
                print(f"BAD {kind} {b.get('ref', b.get('id'))}: {b['problem']}")
            print(f"{kind}: {c['checked'] - len(c['bad'])} of {c['checked']} {what} verified")
    if not r["ok"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
