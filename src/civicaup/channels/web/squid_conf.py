"""The squid.conf side of the web channel: civicaup's lines as one marked block, and the careful edit that writes them
into the city's squid.conf (`civicaup setup squid --apply`).

The lines themselves (helper, ACL, deny, block page, error directory) come from
:func:`civicaup.channels.web.blockpage.squid_conf_lines`. Squid reads ``http_access`` rules in order, so the block
goes where the helper sees the authenticated user and still comes before anything is allowed: after the last
``http_access deny`` that requires a login (an ACL of type ``proxy_auth``), before the first ``http_access allow``
after it (else before ``http_access deny all``, else at the end). Once written, the block keeps its place.
A directive of the block that the file already has (``error_directory``, the ``civicaup`` helper or ACL) is
commented out as replaced (:mod:`civicaup.channels.conffile`). When Squid is installed, ``squid -k parse`` reads
the new file before it replaces the old one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from civicaup.channels import conffile
from civicaup.channels.conffile import Entry, Key
from civicaup.errors import InputError

AUTH_ACL_TYPES = {"proxy_auth", "proxy_auth_regex", "ext_user", "ext_user_regex"}
SINGLE = {"error_directory"}  # directives Squid takes once: any other value is replaced
NAMED = {"external_acl_type", "acl"}  # the first argument names the thing defined


def key_of(text: str) -> Key | None:
    words = text.split()
    if not words:
        return None
    if words[0] in SINGLE:
        return (words[0],)
    if words[0] in NAMED and len(words) > 1:
        return (words[0], words[1])
    if words[0] == "deny_info" and len(words) > 2:
        return ("deny_info", *words[2:])
    return tuple(words)


def block(lines_text: str, policy: str) -> list[str]:
    """The block: squid_conf_lines' text between the begin and end markers."""
    body = [ln for ln in lines_text.splitlines()]
    while body and not body[-1].strip():
        body.pop()
    return [f"{conffile.BEGIN} (civicaup setup squid --policy {policy}): rewritten by each run; directives it "
            f"replaces stay as '{conffile.REPLACED.strip()}' lines",
            *body, conffile.END]


def _auth_acls(entries: Sequence[Entry]) -> set[str]:
    out = set()
    for e in entries:
        w = e.text.split()
        if len(w) >= 3 and w[0] == "acl" and w[2] in AUTH_ACL_TYPES:
            out.add(w[1])
    return out


def place(lines: list[str], entries: list[Entry]) -> int:
    """Where a new block goes (see the module docstring)."""
    auth = _auth_acls(entries)
    access = [(e, e.text.split()) for e in entries if e.text.split()[:1] == ["http_access"]]
    start = 0
    for e, w in access:
        if len(w) > 1 and w[1] == "deny" and any(a.lstrip("!") in auth for a in w[2:]):
            start = e.end
    after = [(e, w) for e, w in access if e.start >= start]
    for e, w in after:
        if len(w) > 1 and w[1] == "allow":
            return e.start
    for e, w in after:
        if w[1:] == ["deny", "all"]:
            return e.start
    return len(lines)


def new_text(text: str, block_lines: Sequence[str], where: str) -> str:
    return conffile.apply_block(text, block_lines, where=where, entries=conffile.squid_entries, key_of=key_of,
                                place=place)


def user_seen(text: str, where: str) -> bool:
    """Whether an ``http_access deny`` requiring a login comes before the block (else the helper sees ``-``)."""
    lines = conffile.split_lines(text)
    entries = conffile.squid_entries(lines, key_of)
    begin = next((i for i, ln in enumerate(lines) if ln.strip().startswith(conffile.BEGIN)), len(lines))
    auth = _auth_acls(entries)
    return any(e.start < begin and e.text.split()[1:2] == ["deny"]
               and any(a.lstrip("!") in auth for a in e.text.split()[2:])
               for e in entries if e.text.split()[:1] == ["http_access"])


def squid_binary() -> str | None:
    return shutil.which("squid") or ("/usr/sbin/squid" if os.path.exists("/usr/sbin/squid") else None)


def check_with_squid(path: Path, text: str) -> None:
    """``squid -k parse`` on the new text, in a temporary file beside the real one (relative includes still work)."""
    squid = squid_binary()
    if not squid:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.civicaup-check-", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogateescape"))
        r = subprocess.run([squid, "-k", "parse", "-f", tmp], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"cannot run {squid} -k parse: {exc}") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    if r.returncode != 0:
        bad = [ln for ln in (r.stderr + r.stdout).splitlines() if "FATAL" in ln or "ERROR" in ln]
        reason = (bad or (r.stderr + r.stdout).strip().splitlines()[-1:] or ["exit " + str(r.returncode)])[0]
        raise InputError(f"squid -k parse refuses the new {path.name} ({reason.strip()}); nothing written")


def apply(path: Path, block_lines: Sequence[str], *, check: bool = True) -> tuple[Path | None, bool]:
    """Write the block into *path* (backup beside it, atomic). Returns (backup or None if unchanged, user seen)."""
    text = conffile.read_text(path)
    new = new_text(text, block_lines, str(path))
    if check and new != text:
        check_with_squid(path, new)
    return conffile.write_with_backup(path, new), user_seen(new, str(path))
