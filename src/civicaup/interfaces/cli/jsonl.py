"""JSON Lines batches (`check posts`, `social ingest`): one object a line in, one answer a line out.

A bad line is answered {"id": <its id or null>, "error": "<one line>"} and the run goes on; at the end the
command exits 2 (with one line on stderr) if any line was bad. Blank lines are skipped.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, TextIO

import typer

from civicaup.errors import CivicaupError, InputError
from civicaup.interfaces.cli.output import emit_json

_NO_ITEM = object()


def open_lines(path: str) -> TextIO:
    """The file, or standard input for '-', as UTF-8 text; bytes that are not UTF-8 become U+FFFD."""
    if path == "-":
        if hasattr(sys.stdin, "reconfigure"):
            try:
                sys.stdin.reconfigure(errors="replace")
            except (ValueError, OSError):  # already read from, or not a real stream
                pass
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def run_lines(path: str, handle: Callable[[int, Any], dict[str, Any]], *, id_of: Callable[[Any], Any]) -> int:
    """Call `handle(line_number, parsed_json)` for each line and print its answer; print an error object for a
    line that is not JSON or that `handle` refuses (InputError, ValueError). Returns the number of bad lines."""
    stream = open_lines(path)
    bad = 0
    try:
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            item: Any = _NO_ITEM
            try:
                item = json.loads(line)
                emit_json(handle(n, item))
            except (ValueError, CivicaupError) as exc:
                bad += 1
                msg = str(exc) if isinstance(exc, CivicaupError) else f"line {n}: not JSON ({exc})"
                emit_json({"id": None if item is _NO_ITEM else id_of(item), "error": msg.splitlines()[0]})
            sys.stdout.flush()  # a caller reading answers as they come (a pipe, a webhook bridge) sees each one
    finally:
        if stream is not sys.stdin:
            stream.close()
    return bad


def finish(bad: int, verb: str = "checked") -> None:
    """Exit 2 with one line on stderr when some lines were bad."""
    if bad:
        print(f"civicaup: {bad} line(s) could not be {verb}", file=sys.stderr)
        raise typer.Exit(2)
