"""`civicaup categories build`: the URL category index that `check url` and the Squid helper read."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from civicaup.channels.web.categories import CategoryIndex, default_index_path
from civicaup.errors import InputError

app = typer.Typer(no_args_is_help=True, help="The URL category index.")


@app.command()
def build(dirs: list[Path] = typer.Argument(..., metavar="DIR...", help="UT1-format folders or hosts files"),
          fmt: str = typer.Option("ut1", "--format", help="ut1 or hosts"),
          out: Optional[Path] = typer.Option(None, "-o", "--output", help="index file (default $CIVICAUP_HOME/categories.idx)")) -> None:
    """Build the index from lists; replaces the old one atomically."""
    if fmt not in ("ut1", "hosts"):
        raise InputError(f"--format must be ut1 or hosts, not {fmt!r}")
    for d in dirs:
        if not d.exists():
            raise InputError(f"no such file or folder: {d}")
    target = out or default_index_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    report = CategoryIndex.build(dirs, out=target, fmt=fmt)  # type: ignore[arg-type]
    cats = ", ".join(f"{k} {v}" for k, v in sorted(report.categories.items()))
    print(f"built {report.path}: {report.domains} domains, {report.url_entries} URL entries, "
          f"{report.skipped} skipped, {report.seconds:.1f}s")
    print(f"  categories: {cats}")
