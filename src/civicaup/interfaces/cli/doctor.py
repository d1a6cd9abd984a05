"""`civicaup doctor [--json]`: one line per check of this installation (see civicaup.operations.doctor)."""
from __future__ import annotations

import typer

from civicaup.interfaces.cli.output import emit_json


def doctor(as_json: bool = typer.Option(False, "--json", help="one JSON object: ok, counts, checks")) -> None:
    """Check the configuration, store, packs, category index, clock, Postfix and Squid: 'ok|warn|fail  name
    what, and what to fix' a line; exit 1 when a check fails (warnings do not)."""
    from civicaup.operations import doctor as checks

    found = checks.run()
    if as_json:
        emit_json({"ok": not checks.failed(found), "counts": checks.summary(found),
                   "checks": [c.to_json() for c in found]})
    else:
        for line in checks.lines(found):
            print(line)
    if checks.failed(found):
        raise typer.Exit(1)
