"""Which files of the data directory are state, and copying files with their SHA-256 (backup and restore).

State is everything under the data directory except what is transient or taken another way: SQLite databases'
-wal/-shm/-journal files (the database itself is copied with SQLite's backup API), `metrics/` (Prometheus
multiprocess files, rebuilt by the running processes), `spool/` (messages still in flight: the MTA has not been
answered for them, so it still holds them), `*.tmp` files, files in a Maildir's `tmp/` (deliveries not finished),
sockets and other special files, and backups kept inside the data directory. The selection is generic on
purpose: a new kind of state file (say, archive segment files) is backed up without this module knowing it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from civicaup.durable import fsync_dir
from civicaup.operations.backup_db import SQLITE_SIDE_FILES, is_sqlite_file

TRANSIENT_TOP = frozenset({"metrics", "spool"})
CHUNK = 1 << 20


@dataclass
class Selection:
    """Relative (POSIX) paths under the data directory."""
    files: list[str] = field(default_factory=list)       # regular state files, copied byte for byte
    sqlite: list[str] = field(default_factory=list)      # SQLite databases, copied with the backup API
    dirs: list[str] = field(default_factory=list)        # every directory kept (empty Maildir folders too)
    skipped: list[str] = field(default_factory=list)     # symbolic links to directories (not followed)

    def __len__(self) -> int:
        return len(self.files) + len(self.sqlite)


def _maildir_tmp(folder: Path) -> bool:
    return folder.name == "tmp" and (folder.parent / "new").is_dir() and (folder.parent / "cur").is_dir()


def _a_backup(folder: Path) -> bool:
    """A backup kept inside the data directory (or one being written): never part of the next backup."""
    if folder.name.startswith(".") and folder.name.endswith(".partial"):
        return True
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        with open(manifest, encoding="utf-8") as fh:
            return json.load(fh).get("format") == "civicaup-backup"
    except (OSError, ValueError, AttributeError):
        return False


def _side_file(path: Path) -> bool:
    for suffix in SQLITE_SIDE_FILES:
        if path.name.endswith(suffix) and is_sqlite_file(path.with_name(path.name[: -len(suffix)])):
            return True
    return False


def select(root: Path, exclude: set[Path] | None = None, *, only: tuple[str, ...] | None = None) -> Selection:
    """The state under `root`, leaving out transient files and the absolute paths in `exclude` (files or whole
    directories: the store's own database, the configuration file, a backup being written inside); `only`
    limits it to these names at the top of `root`."""
    exclude = {p.absolute() for p in (exclude or set())}
    sel = Selection()
    if not root.is_dir():
        return sel
    root = root.absolute()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_here = here.relative_to(root)
        if here == root and only is not None:
            dirnames[:] = [d for d in dirnames if d in only]
            filenames = [f for f in filenames if f in only]
        keep_dirs = []
        for d in sorted(dirnames):
            path = here / d
            if (here == root and d in TRANSIENT_TOP) or path in exclude or _a_backup(path):
                continue
            if path.is_symlink():
                sel.skipped.append((rel_here / d).as_posix())
                continue
            keep_dirs.append(d)
            sel.dirs.append((rel_here / d).as_posix())
        dirnames[:] = keep_dirs
        if _maildir_tmp(here):
            continue
        for name in sorted(filenames):
            path = here / name
            if path in exclude or name.endswith(".tmp") or _side_file(path):
                continue
            try:
                mode = os.stat(path).st_mode  # follows a symbolic link to a file: its content is the state
            except OSError:
                continue  # vanished while we looked (a rename into place), or a dangling link
            if not stat.S_ISREG(mode):
                continue  # sockets, FIFOs, devices
            rel = (rel_here / name).as_posix()
            (sel.sqlite if is_sqlite_file(path) else sel.files).append(rel)
    return sel


def hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy `src` to `dst` (through a temporary name, then renamed into place), keeping its permission bits;
    returns the SHA-256 and size of the bytes written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            for chunk in iter(lambda: fin.read(CHUNK), b""):
                h.update(chunk)
                size += len(chunk)
                fout.write(chunk)
        os.chmod(tmp, stat.S_IMODE(os.stat(src).st_mode) | stat.S_IRUSR)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest(), size
