"""`civicaup setup ...`: wiring civicaup into the city's servers, from the configuration.

`setup postfix` prints (and with ``--apply`` writes) the main.cf / master.cf lines for the milter or the content-filter
relay; `setup squid` writes the block page template and prints (and with ``--apply`` writes) the squid.conf lines for
the helper. ``--apply`` keeps a timestamped copy of each file it changes beside it, writes atomically, and applying
twice gives the same file: civicaup's lines are one block between ``# civicaup begin`` and ``# civicaup end``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer

from civicaup import settings
from civicaup.channels.web import blockpage
from civicaup.errors import InputError
from civicaup.policy.registry import get_pack

app = typer.Typer(no_args_is_help=True, help="Wire civicaup into the city's servers.")

SQUID_TEMPLATES = Path("/usr/share/squid/errors/templates")
APPLY_HELP = "write the lines into the file (a timestamped backup of the original is kept beside it)"
CHECK_HELP = "read the new file back with the server's own tool (postconf / squid -k parse) before replacing the old"


def _executable() -> str:
    argv0 = Path(sys.argv[0])
    if argv0.name == "civicaup" and argv0.exists():
        return str(argv0.resolve())
    return shutil.which("civicaup") or str(Path(sys.executable).with_name("civicaup"))


def _report(done: list[tuple[Path, Optional[Path]]]) -> None:
    for path, backup in done:
        print(f"{path}: " + (f"written (the previous version is {backup})" if backup else "unchanged"),
              file=sys.stderr)


@app.command()
def postfix(policy: str = typer.Option(..., "--policy", help="pack id"),
            mode: str = typer.Option("milter", "--mode", help="milter (before the queue) or content-filter "
                                                              "(after the queue, through civicaup relay)"),
            config_dir: Optional[Path] = typer.Option(None, "--config-dir",
                                                      help="Postfix's configuration folder "
                                                           "(default mail.postfix_config_dir)"),
            apply_: bool = typer.Option(False, "--apply", help=APPLY_HELP),
            check: bool = typer.Option(True, "--check/--no-check", help=CHECK_HELP)) -> None:
    """Print the main.cf and master.cf lines for civicaup (with --apply: write them into the files)."""
    from civicaup.channels.mail import postfix_conf

    pack = get_pack(policy)
    if mode not in postfix_conf.MODES:
        raise InputError(f"--mode {mode!r}: choose milter or content-filter")
    cfg = settings.load()
    folder = (config_dir or cfg.mail.postfix_config_dir).expanduser().absolute()
    if apply_:
        main_text, master_text = postfix_conf.read_config(folder, required=True)
    else:
        try:
            main_text, master_text = postfix_conf.read_config(folder, required=False)
        except InputError as exc:
            print(f"civicaup: {exc}; the lines below build on Postfix's defaults", file=sys.stderr)
            main_text = master_text = ""
    wiring = postfix_conf.wiring(cfg, pack.id, mode, folder, main_text, master_text)
    done = postfix_conf.apply(wiring, check=check) if apply_ else []
    sys.stdout.write(postfix_conf.render(wiring))
    for note in wiring.notes:
        print(f"civicaup: {note}", file=sys.stderr)
    if apply_:
        _report(done)
        print(f"then: postfix -c {folder} reload, and run beside Postfix: {wiring.run}", file=sys.stderr)


def _write_error_page(folder: Path, pack) -> Path:  # type: ignore[no-untyped-def]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # error_directory replaces Squid's own templates: keep its other pages working
        if SQUID_TEMPLATES.is_dir():
            for src in SQUID_TEMPLATES.iterdir():
                if src.is_file() and not (folder / src.name).exists():
                    shutil.copyfile(src, folder / src.name)
        target = folder / blockpage.TEMPLATE_NAME
        tmp = target.with_suffix(".tmp")
        tmp.write_text(blockpage.error_page(pack), encoding="utf-8")
        os.chmod(tmp, 0o644)
        tmp.replace(target)
    except OSError as exc:
        raise InputError(f"cannot write the error page into {folder}: {exc.strerror or exc}") from None
    return target


@app.command()
def squid(policy: str = typer.Option(..., "--policy", help="pack id"),
          errors_dir: Optional[Path] = typer.Option(None, "--errors-dir",
                                                    help="folder for squid.conf's error_directory "
                                                         "(default web.errors_dir, else DATA_DIR/squid-errors)"),
          config: Optional[Path] = typer.Option(None, "--config", help="the squid.conf --apply writes "
                                                                       "(default web.squid_config)"),
          helper: Optional[Path] = typer.Option(None, "--helper", help="the civicaup program Squid runs "
                                                                       "(default: this one)"),
          apply_: bool = typer.Option(False, "--apply", help=APPLY_HELP),
          check: bool = typer.Option(True, "--check/--no-check", help=CHECK_HELP)) -> None:
    """Write the block page template (ERR_CIVICAUP) and print the squid.conf lines for the helper
    (with --apply: write them into squid.conf)."""
    from civicaup.channels import conffile
    from civicaup.channels.web import squid_conf

    pack = get_pack(policy)
    cfg = settings.load()
    folder = (errors_dir or cfg.errors_dir).expanduser().absolute()
    program = _executable()
    if helper is not None:
        program = str(helper.expanduser().absolute())
        if not os.access(program, os.X_OK):
            raise InputError(f"--helper {program}: not an executable file")
    # the helper runs as Squid's user, whose home is not ours: name the data directory and configuration explicitly
    env = {"CIVICAUP_HOME": str(cfg.home.absolute())}
    config_file = settings.config_file()
    if config_file is not None:
        env["CIVICAUP_CONFIG"] = str(config_file.absolute())
    lines = blockpage.squid_conf_lines(pack, [program, "squid-helper", "--policy", pack.id], str(folder), env=env,
                                       concurrency=cfg.web.helper_concurrency, children=cfg.web.helper_children)
    block = squid_conf.block(lines, pack.id)
    path = (config or cfg.web.squid_config).expanduser().absolute()
    if apply_:  # a file that cannot be read or edited stops us before anything is written
        squid_conf.new_text(conffile.read_text(path), block, str(path))
    target = _write_error_page(folder, pack)
    if apply_:
        backup, user_seen = squid_conf.apply(path, block, check=check)
    sys.stdout.write("\n".join(block) + "\n")
    print(f"wrote {target}; Squid's user must be able to read {env['CIVICAUP_HOME']}/categories.idx and write "
          "the store there", file=sys.stderr)
    if apply_:
        _report([(path, backup)])
        if not user_seen:
            print(f"civicaup: no 'http_access deny !<login ACL>' comes before the civicaup lines in {path}: the "
                  "helper sees '-' for the user (everyone is an employee)", file=sys.stderr)
        print("then: squid -k reconfigure", file=sys.stderr)
