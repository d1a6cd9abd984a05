"""Editing a server's own configuration file (Postfix main.cf / master.cf, squid.conf) the careful way.

civicaup's lines live in one block between ``# civicaup begin`` and ``# civicaup end``; running setup again
replaces the block, so applying twice gives the same file. A setting of the server that the block defines again
(``message_size_limit``, a master.cf service, Squid's ``error_directory``) is not left as a duplicate: every
physical line of that entry is commented out with the ``#civicaup-replaced:`` prefix, which keeps the city's
original value readable (and restorable: :func:`originals` gives the file as it was before civicaup).

:func:`write_with_backup` writes a new version atomically (temporary file in the same folder, fsync, rename) after
keeping a timestamped copy of the current file beside it; it writes nothing when nothing changes.

The parsing is the servers' own: a Postfix logical line continues on lines that start with white space (comment
and blank lines in between do not end it); a squid.conf directive continues after a trailing backslash.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from civicaup.errors import InputError

BEGIN = "# civicaup begin"
END = "# civicaup end"
REPLACED = "#civicaup-replaced: "

Key = tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One setting: lines[start:end] of the file, and what it sets (None for anything civicaup never replaces)."""
    start: int
    end: int
    key: Key | None
    text: str  # the logical line, continuation lines joined with one space


def _is_comment_or_blank(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def postfix_entries(lines: Sequence[str], key_of: Callable[[str], Key | None]) -> list[Entry]:
    """Logical lines of main.cf / master.cf: a line starting with non-space text, plus the lines after it that start
    with white space (comment and blank lines between them do not end it, as in Postfix's own reader)."""
    out: list[Entry] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if _is_comment_or_blank(line) or line[:1].isspace():
            i += 1
            continue
        end, j, parts = i + 1, i + 1, [line.strip()]
        while j < n:
            if _is_comment_or_blank(lines[j]):
                j += 1
                continue
            if lines[j][:1].isspace():
                parts.append(lines[j].strip())
                end = j = j + 1
                continue
            break
        text = " ".join(parts)
        out.append(Entry(i, end, key_of(text), text))
        i = end
    return out


def squid_entries(lines: Sequence[str], key_of: Callable[[str], Key | None]) -> list[Entry]:
    """squid.conf directives: one a line, continued by a trailing backslash."""
    out: list[Entry] = []
    i, n = 0, len(lines)
    while i < n:
        if _is_comment_or_blank(lines[i]):
            i += 1
            continue
        parts, j = [], i
        while j < n:
            s = lines[j].strip()
            j += 1
            if s.endswith("\\"):
                parts.append(s[:-1].strip())
                continue
            parts.append(s)
            break
        text = " ".join(p for p in parts if p)
        out.append(Entry(i, j, key_of(text), text))
        i = j
    return out


def _find_block(lines: Sequence[str], where: str) -> tuple[int, int] | None:
    begins = [i for i, ln in enumerate(lines) if ln.strip().startswith(BEGIN)]
    ends = [i for i, ln in enumerate(lines) if ln.strip().startswith(END)]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise InputError(f"{where}: the '{BEGIN}' / '{END}' markers are not one well-formed block "
                         f"({len(begins)} begin, {len(ends)} end); fix the file by hand")
    return begins[0], ends[0] + 1


def _restore(line: str) -> str:
    if line.startswith(REPLACED):
        return line[len(REPLACED):]
    if line.rstrip() == REPLACED.rstrip():
        return ""
    return line


def split_lines(text: str) -> list[str]:
    return text.splitlines()


def originals(text: str, where: str = "the file") -> tuple[list[str], int | None]:
    """The file as it was before civicaup (its block removed, replaced lines restored), and where the block was."""
    lines = split_lines(text)
    block = _find_block(lines, where)
    at = None
    if block is not None:
        at = block[0]
        lines = lines[:block[0]] + lines[block[1]:]
    return [_restore(ln) for ln in lines], at


def apply_block(text: str, block: Sequence[str], *, where: str,
                entries: Callable[[Sequence[str], Callable[[str], Key | None]], list[Entry]],
                key_of: Callable[[str], Key | None],
                place: Callable[[list[str], list[Entry]], int]) -> str:
    """The new text: civicaup's *block* (marker lines included) in place of the old one (else where *place* says),
    and every entry outside it that sets one of the block's keys commented out as replaced."""
    lines, at = originals(text, where)
    managed = {e.key for e in entries(block, key_of) if e.key is not None}
    found = entries(lines, key_of)
    out = list(lines)
    for e in found:
        if e.key is not None and e.key in managed:
            for i in range(e.start, e.end):
                out[i] = REPLACED + out[i]
    pos = at if at is not None else place(out, found)
    new = out[:pos] + list(block) + out[pos:]
    return "\n".join(new) + "\n"


def current_entries(text: str, where: str,
                    entries: Callable[[Sequence[str], Callable[[str], Key | None]], list[Entry]],
                    key_of: Callable[[str], Key | None]) -> list[Entry]:
    """The entries of the original file (before civicaup), for values civicaup builds on."""
    lines, _ = originals(text, where)
    return entries(lines, key_of)


# -- reading and writing ----------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 survive a round trip (surrogateescape)."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _atomic_write(path: Path, data: bytes, like: os.stat_result | None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.civicaup-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if like is not None:
            os.chmod(tmp, like.st_mode & 0o7777)
            try:
                os.chown(tmp, like.st_uid, like.st_gid)
            except PermissionError:
                pass  # not root: the file keeps our owner, as any editor would leave it
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def backup_path(path: Path, now: datetime | None = None) -> Path:
    """``<file>.civicaup-YYYYmmddTHHMMSSZ`` beside the file (``-1``, ``-2``... if that name is taken)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.civicaup-{stamp}")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.civicaup-{stamp}-{n}")
    return candidate


def write_with_backup(path: Path, text: str) -> Path | None:
    """Write *text* to *path* atomically, first copying the current file beside it. Returns the backup, or None when
    the file already holds exactly *text* (nothing is written then)."""
    target = path.resolve()  # a symlinked config file: write the file it points to
    new = text.encode("utf-8", "surrogateescape")
    try:
        old = target.read_bytes()
        st = target.stat()
    except OSError as exc:
        raise InputError(f"cannot read {target}: {exc.strerror or exc}") from None
    if old == new:
        return None
    backup = backup_path(target)
    try:
        _atomic_write(backup, old, st)
        _atomic_write(target, new, st)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return backup
