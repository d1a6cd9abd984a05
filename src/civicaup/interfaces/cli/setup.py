"""`civicaup setup ...`: wiring civicaup into the city's servers. `setup squid` for the web proxy."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer

from civicaup import config
from civicaup.channels.web import blockpage
from civicaup.errors import InputError
from civicaup.policy.registry import get_pack

app = typer.Typer(no_args_is_help=True, help="Wire civicaup into the city's servers.")

SQUID_TEMPLATES = Path("/usr/share/squid/errors/templates")


def _executable() -> str:
    argv0 = Path(sys.argv[0])
    if argv0.name == "civicaup" and argv0.exists():
        return str(argv0.resolve())
    return shutil.which("civicaup") or str(Path(sys.executable).with_name("civicaup"))


@app.command()
def squid(policy: str = typer.Option(..., "--policy", help="pack id"),
          errors_dir: Optional[Path] = typer.Option(None, "--errors-dir",
                                                    help="folder for squid.conf's error_directory "
                                                         "(default $CIVICAUP_HOME/squid-errors)")) -> None:
    """Write the block page template (ERR_CIVICAUP) and print the squid.conf lines for the helper."""
    pack = get_pack(policy)
    folder = (errors_dir or config.home() / "squid-errors").expanduser().absolute()
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
    # the helper runs as Squid's user, whose home is not ours: name the data directory explicitly
    env = {"CIVICAUP_HOME": str(config.home().expanduser().absolute())}
    sys.stdout.write(blockpage.squid_conf_lines(pack, [_executable(), "squid-helper", "--policy", pack.id],
                                                str(folder), env=env))
    print(f"wrote {target}; Squid's user must be able to read {env['CIVICAUP_HOME']}/categories.idx and write "
          "the store there", file=sys.stderr)
