"""JSON Lines batches (`check posts`, `social ingest`): one object a line in, one answer a line out.

A bad line is answered {"id": <its id or null>, "error": "<one line>"} and the run goes on; at the end the
command exits 2 (with one line on stderr) if any line was bad. Blank lines are skipped.
"""
from __future__ import annotations

import json
import os
import select
import stat
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, TextIO

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


#: Lines read and handled together: their texts are scanned in one batch (civicaup.detect.prepared).
CHUNK = 512


def run_lines(path: str, handle: Callable[[int, Any], dict[str, Any]], *, id_of: Callable[[Any], Any],
              prepare: Callable[[list[Any]], ContextManager[Any]] | None = None) -> int:
    """Call `handle(line_number, parsed_json)` for each line and print its answer; print an error object for a
    line that is not JSON or that `handle` refuses (InputError, ValueError). Returns the number of bad lines.

    Lines are taken in chunks of up to CHUNK (fewer when a pipe has nothing more to give yet, so that a caller
    writing one line and waiting for its answer gets it); `prepare(items)` - by default the `prepare_lines`
    method of the object `handle` is a method of, if it has one - is entered around the handling of each
    chunk with the chunk's parsed items, which lets their texts be scanned together. Answers still come one
    a line, in input order, each flushed as it is printed."""
    stream = open_lines(path)
    if prepare is None:
        prepare = getattr(getattr(handle, "__self__", None), "prepare_lines", None)
    bad = 0
    try:
        for chunk in _chunks(stream):
            parsed: list[tuple[int, Any, ValueError | None]] = []
            for n, line in chunk:
                try:
                    parsed.append((n, json.loads(line), None))
                except ValueError as exc:
                    parsed.append((n, _NO_ITEM, exc))
            with (prepare([item for _, item, err in parsed if err is None]) if prepare else nullcontext()):
                for n, item, error in parsed:
                    try:
                        if error is not None:
                            raise error
                        emit_json(handle(n, item))
                    except (ValueError, CivicaupError) as exc:
                        bad += 1
                        msg = str(exc) if isinstance(exc, CivicaupError) else f"line {n}: not JSON ({exc})"
                        emit_json({"id": None if item is _NO_ITEM else id_of(item), "error": msg.splitlines()[0]})
                    sys.stdout.flush()  # a caller reading answers as they come (a pipe, a webhook bridge) sees each
    finally:
        if stream is not sys.stdin:
            stream.close()
    return bad


def _chunks(stream: TextIO, size: int | None = None) -> Iterator[list[tuple[int, str]]]:
    """(line number, line) of the non-blank lines, in lists of up to ``size`` (default CHUNK); a list ends
    early when the stream is a pipe or terminal with no more input waiting."""
    size = size or CHUNK
    more = _more_waiting(stream)
    chunk: list[tuple[int, str]] = []
    for n, line in enumerate(stream, 1):
        if line.strip():
            chunk.append((n, line))
        if chunk and (len(chunk) >= size or not more()):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _more_waiting(stream: TextIO) -> Callable[[], bool]:
    """A check that more input can be read without waiting (always true for a file or an in-memory stream)."""
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return lambda: True
    except (OSError, ValueError):
        return lambda: True

    def waiting() -> bool:
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    return waiting


def finish(bad: int, verb: str = "checked") -> None:
    """Exit 2 with one line on stderr when some lines were bad."""
    if bad:
        print(f"civicaup: {bad} line(s) could not be {verb}", file=sys.stderr)
        raise typer.Exit(2)
