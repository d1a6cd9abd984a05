"""The multiprocess metric files in ``<data_dir>/metrics``: folding a finished process's files into the archive
files, and reading them all for a scrape.

Each process writes ``counter_<pid>.db`` and ``histogram_<pid>.db`` (prometheus_client's multiprocess mode).
Their values only ever add up, so when a process exits cleanly its files are added into
``counter_archive.db`` / ``histogram_archive.db`` and removed: the folder holds the archive files plus one pair a
running process, however often the Squid helpers are restarted, and no counter goes backwards. Files of a
killed process stay and are still counted (a later process with the same pid continues and folds them).

Folding takes an exclusive ``flock`` on ``.lock``; a scrape takes it shared, so it never sees a process's
counts twice (in the archive and in its own file) or not at all.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FOLDED = ("counter", "histogram")
"""File types whose values add up across processes, so a finished process's file can be folded in."""


@contextlib.contextmanager
def files_lock(path: Path, how: int) -> Iterator[None]:
    """The folding lock: exclusive while a finished process folds its files, shared while a scrape reads."""
    try:  # read-only is enough for flock, so processes of other users (Squid's helpers) share one lock file
        fd = os.open(path / ".lock", os.O_RDONLY | os.O_CREAT, 0o664)
    except OSError:
        yield  # cannot even create it: a read-only directory, where nobody folds either
        return
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)


def fold(path: Path, pid: int) -> None:
    """Add process *pid*'s counter and histogram files into the archive files, then remove them."""
    from prometheus_client.mmap_dict import MmapedDict

    with files_lock(path, fcntl.LOCK_EX):
        for typ in FOLDED:
            own = path / f"{typ}_{pid}.db"
            if not own.exists():
                continue
            archive = path / f"{typ}_archive.db"
            totals: dict[str, float] = {}
            for f in (archive, own):
                if f.exists():
                    for entry in MmapedDict.read_all_values_from_file(str(f)):
                        totals[entry[0]] = totals.get(entry[0], 0.0) + entry[1]
            tmp = path / f".{typ}_archive.tmp"
            tmp.unlink(missing_ok=True)
            out = MmapedDict(str(tmp))
            try:
                for key, value in totals.items():
                    out.write_value(key, value, 0.0)
            finally:
                out.close()
            os.replace(tmp, archive)
            own.unlink()


class Files:
    """A collector: every process's files, added up; read under the shared folding lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self) -> Iterable[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector
        with files_lock(self.path, fcntl.LOCK_SH):
            files = glob.glob(os.path.join(self.path, "*.db"))
            return list(MultiProcessCollector.merge(files, accumulate=True))
