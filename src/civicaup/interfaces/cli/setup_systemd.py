"""`civicaup setup systemd`: the systemd units of the long-running parts, filled in for this machine.

The units ship in ``civicaup/deploy/systemd`` with ``@NAME@`` placeholders; this command fills in the absolute path
of the civicaup program, the service user, the configuration file, the data directory, the policies and the milter's
socket, and prints them, or with ``--apply [DIR]`` writes them into DIR, /etc/systemd/system by default (keeping a
timestamped copy of any file it replaces; a file that would not change is left alone). It never runs systemctl: it
prints what to run next.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from civicaup import settings
from civicaup.errors import InputError
from civicaup.interfaces.cli.setup import app
from civicaup.policy.registry import get_pack

UNIT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = ("civicaup-milter.socket", "civicaup-milter.service", "civicaup-relay.service", "civicaup-serve.service")
SYSTEM_DIR = Path("/etc/systemd/system")
DEFAULT_SOCKET = "/var/spool/postfix/civicaup/milter.sock"  # inside Debian's chroot of Postfix's smtpd
ETC_CONFIG = settings.ETC_FILE
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")  # no quoting, no specifiers, no variables


def executable() -> Path:
    """The civicaup program being run, as an absolute path (not resolved: a stable symlink stays a symlink)."""
    argv0 = Path(sys.argv[0])
    candidates = [argv0] if argv0.name == "civicaup" else []
    found = shutil.which("civicaup")
    candidates += [Path(found)] if found else []
    candidates.append(Path(sys.executable).with_name("civicaup"))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.absolute()
    raise InputError("cannot find the civicaup program (run this command as an installed 'civicaup')")


def word(value: str, what: str) -> str:
    """A path or id as one word of a unit file. Anything but plain characters would need quoting rules that differ
    between ExecStart=, Environment= and ReadWritePaths= (and % is a specifier everywhere): refuse it instead."""
    if not _PLAIN.match(value):
        raise InputError(f"{what} {value!r} has spaces or characters a unit file would read otherwise; "
                         "use a path of letters, digits and _@+=:,./-")
    return value


def values(*, user: str, policies: list[str]) -> dict[str, str]:
    """What fills the placeholders, from the configuration in effect; raises InputError on what cannot work."""
    if not _USER.match(user):
        raise InputError(f"--user {user!r} is not a system user name (lower-case letters, digits, '_' and '-')")
    if user in ("root", "nobody"):
        raise InputError(f"--user {user}: run the services as a user of their own (civicaup), which owns only "
                         "the data directory")
    cfg = settings.load()
    policies = list(dict.fromkeys(policies or cfg.packs))
    if not policies:
        raise InputError("name the policy: --policy ID (repeat for serve), or packs = [\"ID\"] in civicaup.toml")
    for p in policies:
        get_pack(p)
    config_file = settings.config_file() or ETC_CONFIG
    milter = cfg.listen.milter
    return {
        "CIVICAUP": word(str(executable()), "the civicaup program"),
        "USER": user,
        "CONFIG": word(str(Path(config_file).absolute()), "the configuration file"),
        "DATA_DIR": word(str(cfg.home.absolute()), "data_dir"),
        "POLICY_ONE": f"--policy {word(policies[0], 'policy')}",
        "POLICY_ALL": " ".join(f"--policy {word(p, 'policy')}" for p in policies),
        "MILTER_SOCKET": word(milter[5:] if milter.startswith("unix:") else DEFAULT_SOCKET, "the milter socket"),
    }


def render(name: str, fill: dict[str, str]) -> str:
    """One unit with its placeholders filled in."""
    text = (UNIT_DIR / name).read_text(encoding="utf-8")
    for key, value in fill.items():
        text = text.replace(f"@{key}@", value)
    left = _PLACEHOLDER.search(text)
    if left:
        raise InputError(f"{name}: nothing fills {left.group(0)} (a unit file of this civicaup is damaged)")
    return text


def write_unit(folder: Path, name: str, text: str) -> tuple[Path, Optional[Path], bool]:
    """Write one unit atomically; (path, backup of the file it replaced or None, whether anything changed)."""
    path = folder / name
    backup: Optional[Path] = None
    if path.exists():
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return path, None, False
        backup = folder / f"{name}.{datetime.now().strftime('%Y%m%dT%H%M%S')}.bak"  # systemd ignores *.bak
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, backup, True


def warnings(user: str) -> list[str]:
    """What would stop the units from starting on this machine, as lines for the operator."""
    import grp
    import pwd

    out = []
    try:
        pwd.getpwnam(user)
    except KeyError:
        out.append(f"user {user} does not exist: useradd --system --home-dir /var/lib/civicaup "
                   f"--shell /usr/sbin/nologin {user}")
    try:
        grp.getgrnam("postfix")
    except KeyError:
        out.append("group postfix does not exist: the milter socket is for Postfix's smtpd (SocketGroup=postfix)")
    config_file = settings.config_file()
    if config_file is None:
        out.append(f"no configuration file: the units read {ETC_CONFIG} (set data_dir and packs there)")
    home = settings.load().home.absolute()
    if str(home).startswith(("/home/", "/root/", "/run/user/")):
        out.append(f"data_dir {home} is under a home folder, which the units hide (ProtectHome=yes): "
                   "set data_dir = \"/var/lib/civicaup\" in the configuration")
    return out


@app.command("systemd")
def systemd(apply_: bool = typer.Option(False, "--apply", help="write the units into DIR, keeping a timestamped "
                                                                "copy of each file replaced"),
            unit_dir: Optional[Path] = typer.Argument(None, metavar="DIR",
                                                      help=f"where --apply writes (default {SYSTEM_DIR})"),
            user: str = typer.Option("civicaup", "--user", help="the system user the services run as"),
            policy: list[str] = typer.Option([], "--policy",
                                             help="pack id (repeat for serve; default: packs in the configuration; "
                                                  "the milter and relay take the first)")) -> None:
    """Print the systemd units for milter (with its socket), relay and serve, filled in for this machine;
    `--apply [DIR]` writes them."""
    if unit_dir is not None and not apply_:
        raise InputError(f"{unit_dir}: a folder is only for --apply (civicaup setup systemd --apply {unit_dir})")
    apply_dir = (unit_dir or SYSTEM_DIR) if apply_ else None
    fill = values(user=user, policies=policy)
    units = {name: render(name, fill) for name in UNITS}
    notes = warnings(user)
    if len(policy or settings.load().packs) > 1:
        notes.append(f"the milter and the relay decide for {fill['POLICY_ONE'].split()[-1]}; "
                     "run one of each per city (a copy of the unit with another --policy)")
    if apply_dir is None:
        for i, (name, text) in enumerate(units.items()):
            sys.stdout.write(("\n" if i else "") + f"# ---- {name}\n" + text)
    else:
        folder = apply_dir.expanduser().absolute()
        if not folder.is_dir():
            raise InputError(f"--apply {folder}: no such folder")
        try:
            for name, text in units.items():
                path, backup, changed = write_unit(folder, name, text)
                print(f"{path}: " + ("unchanged" if not changed else
                                     f"written (the previous version is {backup})" if backup else "written"))
        except OSError as exc:
            raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
        print("next: systemctl daemon-reload && systemctl enable --now civicaup-milter.socket "
              "civicaup-milter.service civicaup-serve.service   (or civicaup-relay.service instead of the milter)")
    for note in notes:
        print(f"civicaup: {note}", file=sys.stderr)
