"""`civicaup backup` and `civicaup restore`: the whole state of an install in one directory, and back again.

A backup is one directory, created with mode 0700 (it holds everyone's mail) as a hidden `.DEST.*.partial`
beside DEST and renamed to DEST only once complete, so an interrupted run never looks like a backup:

    manifest.json          format, civicaup version, schema revision, created, backend, sha256 + size of every file
    database/civicaup.sqlite     (SQLite, online backup API)   or   database/civicaup.pgdump  (pg_dump -Fc)
    data/...               the data directory's state files: archive originals, quarantine, journal Maildir,
                           packs/, records/, workflows/, catalogue/ overrides, the audit checkpoint, the
                           category index... (selected generically, see backup_files)
    config/<name>          the configuration file in use, if any
    category-index/<name>  the URL category index, when it is configured outside the data directory

Why a directory and not one archive file: archive originals are content-addressed and never rewritten, so
rsync, restic or borg send only what changed since the last night's copy; each file is checked on its own;
nothing is packed twice (large originals are already gzip-compressed) and no second full-size copy is needed on
the server's disk. When one file is wanted, `tar -czf` the directory: `restore` reads a .tar/.tar.gz of it too.

Order matters while the milter keeps writing: the audit checkpoint is copied first (so it never names an entry
the database copy lacks), then the database, then the files (originals are written before their rows, so every
row in the copy finds its original).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import civicaup
from civicaup import settings
from civicaup.durable import fsync_dir
from civicaup.errors import CivicaupError, InputError
from civicaup.operations import backup_db as db
from civicaup.operations.backup_files import Selection, copy_file, hash_file
from civicaup.operations.backup_files import select as select_state
from civicaup.stores.db import database_url

FORMAT = "civicaup-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TOP = ("data", "database", "config", "category-index")
# the audit log's checkpoints (the single chain's, and one per city's chain): copied before the database, so
# that none names an entry the database copy lacks (which `audit verify` would report as a cut-off log)
CHECKPOINTS = ("audit.head", "audit.heads")


class BackupError(CivicaupError):
    """A backup could not be written, or a restore could not finish."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _os_error(exc: OSError, doing: str) -> BackupError:
    where = f" {exc.filename}" if exc.filename else ""
    return BackupError(f"{doing}:{where}: {exc.strerror or exc}")


# ---------------------------------------------------------------- backup

def backup(dest: Path) -> dict[str, Any]:
    """Write a backup of the configured store and data directory to the new directory `dest`."""
    cfg = settings.load()
    url = database_url()
    backend = db.backend_of(url)
    home = cfg.home.absolute()
    dest = dest.expanduser().absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"{dest} already exists: give a new (or empty) directory for the backup")
    if not dest.parent.is_dir():
        raise InputError(f"{dest.parent} is not a directory")
    db_file = db.sqlite_path(url) if backend == "sqlite" else None
    if db_file is not None and not db_file.is_file():
        raise InputError(f"no SQLite store at {db_file}: nothing to back up")
    revision = db.revision(url)
    if revision is None:
        raise InputError(f"the store {db.shown(url)} has no civicaup schema: nothing to back up")
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    except OSError as exc:
        raise _os_error(exc, "cannot create the backup") from None
    try:
        manifest = _write(work, dest, cfg, url, backend, revision, home, db_file)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.sync()  # every file on disk before the directory gets its final name
        os.replace(work, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise _os_error(exc, "cannot write the backup") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary = {"backup": str(dest), "backend": backend, "schema_revision": revision,
               "civicaup_version": manifest["civicaup_version"], "created": manifest["created"],
               "files": len(manifest["files"]), "bytes": sum(f["size"] for f in manifest["files"].values())}
    # the audit log records the backup (it copies everyone's mail), written by this version's audit code, which
    # needs this version's schema: a store left at an older revision is backed up as it is, and not migrated
    summary["audited"] = revision == db.known_revisions()[-1]
    if summary["audited"]:
        _audit(url, "backup", str(dest), {k: v for k, v in summary.items() if k not in ("backup", "audited")})
    return summary


def _write(work: Path, dest: Path, cfg: settings.Settings, url: str, backend: str, revision: str, home: Path,
           db_file: Path | None) -> dict[str, Any]:
    os.chmod(work, 0o700)
    files: dict[str, dict[str, Any]] = {}
    conf = settings.config_file()
    exclude = {work, dest} | {p for p in (conf, db_file) if p is not None}
    checkpoints = select_state(home, exclude, only=CHECKPOINTS)
    for rel in checkpoints.files:  # 1. the audit checkpoints, before the database copy
        with contextlib.suppress(FileNotFoundError):
            files[f"data/{rel}"] = _entry(copy_file(home / rel, work / "data" / rel))
    exclude |= {home / name for name in CHECKPOINTS}
    with _archive_steady():
        database = _copy_database(work, url, backend, db_file, files)  # 2.
        sel = _copy_data(work, home, exclude, files)  # 3.
    idx = cfg.category_index.absolute()
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "civicaup_version": civicaup.__version__,
            "created": _now(), "backend": backend, "schema_revision": revision, "database": database,
            "data_dir": str(home), "dirs": checkpoints.dirs + sel.dirs,
            "sqlite_files": [f"data/{r}" for r in sel.sqlite],
            "config": _copy_beside(conf, "config", work, files),
            "category_index": None if idx.is_relative_to(home) else _copy_beside(idx, "category-index", work, files),
            "files": files}


def _entry(sha_size: tuple[str, int]) -> dict[str, Any]:
    return {"sha256": sha_size[0], "size": sha_size[1]}


def _copy_database(work: Path, url: str, backend: str, db_file: Path | None, files: dict[str, Any]) -> str:
    (work / "database").mkdir()
    if db_file is not None:
        rel = "database/civicaup.sqlite"
        db.sqlite_snapshot(db_file, work / rel)
    else:
        rel = "database/civicaup.pgdump"
        db.pg_dump(url, work / rel)
    files[rel] = _entry(hash_file(work / rel))
    return rel


def _copy_data(work: Path, home: Path, exclude: set[Path], files: dict[str, Any]) -> Selection:
    sel = select_state(home, exclude)
    for rel in sel.files:
        try:
            files[f"data/{rel}"] = _entry(copy_file(home / rel, work / "data" / rel))
        except FileNotFoundError:
            continue  # removed while we worked (a finished delivery, a spent journal): no longer state
    for rel in sel.sqlite:
        (work / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        db.sqlite_snapshot(home / rel, work / "data" / rel)
        files[f"data/{rel}"] = _entry(hash_file(work / "data" / rel))
    return sel


def _copy_beside(path: Path | None, folder: str, work: Path, files: dict[str, Any]) -> dict[str, str] | None:
    """A file kept outside the data directory (the configuration, a category index): copied into `folder`."""
    if path is None or not path.is_file():
        return None
    rel = f"{folder}/{path.name}"
    files[rel] = _entry(copy_file(path, work / rel))
    return {"path": rel, "source": str(path.absolute())}


@contextlib.contextmanager
def _archive_steady() -> Iterator[None]:
    """Hold the archive's maintenance lock shared, as ingest does: disposition and compaction take it exclusive,
    so they wait until the database and the files are copied, and no original a copied row points at is
    destroyed or moved in between. (Archives kept one file per original have no such lock.)"""
    try:
        from civicaup.records.blobs import Maintenance
    except ImportError:
        yield
        return
    with Maintenance(shared=True):
        yield


def _audit(url: str, action: str, subject: str, detail: dict[str, Any]) -> None:
    """One audit entry on the store at `url`, without migrating it (a backup changes nothing else)."""
    from civicaup.stores import audit

    engine = db.plain_engine(url)
    try:
        audit.append(engine, actor="cli", action=action, subject=subject[:500], detail=detail)
    except SQLAlchemyError as exc:
        raise BackupError(f"the {action} is done, but its audit entry could not be written: "
                          f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


# ---------------------------------------------------------------- reading a backup

@contextlib.contextmanager
def _unpacked(src: Path) -> Iterator[Path]:
    """The backup directory: `src` itself, or a .tar/.tar.gz of one unpacked into a temporary directory."""
    if src.is_dir():
        yield src
        return
    if not src.exists():
        raise InputError(f"{src} does not exist")
    try:
        is_tar = src.is_file() and tarfile.is_tarfile(src)
    except OSError as exc:
        raise _os_error(exc, "cannot read the backup") from None
    if not is_tar:
        raise InputError(f"{src} is neither a backup directory nor a .tar(.gz) archive of one")
    tmp = Path(tempfile.mkdtemp(prefix="civicaup-restore-"))
    try:
        try:
            with tarfile.open(src) as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise InputError(f"{src} is damaged: cannot unpack it ({exc})") from None
        tops = [p for p in tmp.iterdir()]
        root = tmp if (tmp / MANIFEST).is_file() else (tops[0] if len(tops) == 1 and tops[0].is_dir() else tmp)
        yield root
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and p.parts[0] in TOP


def read_manifest(root: Path, src: Path) -> dict[str, Any]:
    try:
        m = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{src} is not a civicaup backup (no {MANIFEST})") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{src} is damaged: {MANIFEST} is not valid JSON") from None
    except OSError as exc:
        raise _os_error(exc, "cannot read the backup") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise InputError(f"{src} is not a civicaup backup ({MANIFEST} names no {FORMAT} format)")
    if m.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{src} is a backup format {m.get('format_version')!r}; this civicaup reads format "
                         f"{FORMAT_VERSION}")
    files = m.get("files")
    ok = isinstance(files, dict) and all(
        _safe(rel) and isinstance(f, dict) and isinstance(f.get("sha256"), str) and isinstance(f.get("size"), int)
        for rel, f in files.items())
    ok = ok and m.get("database") in files and isinstance(m.get("dirs"), list) and all(
        _safe("data/" + d) for d in m["dirs"]) and all(s in files for s in m.get("sqlite_files", []))
    ok = ok and all(x is None or (isinstance(x, dict) and x.get("path") in files)
                    for x in (m.get("config"), m.get("category_index")))
    if not ok:
        raise InputError(f"{src} is damaged: {MANIFEST} does not list its files as a backup does")
    return m


def verify(root: Path, manifest: dict[str, Any], src: Path) -> int:
    """Check every file against its size and SHA-256; InputError naming the first bad one. Returns bytes."""
    bad: list[str] = []
    total = 0
    for rel, want in sorted(manifest["files"].items()):
        path = root / rel
        try:
            sha, size = hash_file(path)
        except FileNotFoundError:
            bad.append(f"{rel} is missing")
            continue
        except OSError as exc:
            bad.append(f"{rel} is unreadable ({exc.strerror})")
            continue
        total += size
        if size != want["size"] or sha != want["sha256"]:
            bad.append(f"{rel} does not match its SHA-256")
    if bad:
        more = f" (and {len(bad) - 1} more of {len(manifest['files'])} files)" if len(bad) > 1 else ""
        raise InputError(f"{src} is damaged: {bad[0]}{more}; nothing was restored")
    return total


# ---------------------------------------------------------------- restore

def restore(src: Path, *, force: bool = False) -> dict[str, Any]:
    """Verify the backup at `src`, put it into the configured store and data directory, migrate to head,
    and check the audit chain and every stored original."""
    src = src.expanduser().absolute()
    with _unpacked(src) as root:
        manifest = read_manifest(root, src)
        total = verify(root, manifest, src)
        cfg = settings.load()
        url = database_url()
        backend = db.backend_of(url)
        home = cfg.home.absolute()
        if manifest["backend"] != backend:
            raise InputError(f"{src} holds a {manifest['backend']} store and the configured store is {backend}: "
                             "restore it into a store of the same kind")
        known = db.known_revisions()
        if manifest["schema_revision"] not in known:
            raise InputError(f"{src} is at schema revision {manifest['schema_revision']!r}, which this civicaup "
                             f"({civicaup.__version__}) does not know: restore it with the version that made it "
                             f"({manifest['civicaup_version']}) or a newer one")
        conf = settings.config_file()
        db_file = db.sqlite_path(url) if backend == "sqlite" else None
        exclude = {p for p in (conf, db_file) if p is not None} | {src, root}
        if not force:
            _refuse_non_empty(url, db_file, home, exclude)
        try:
            files = _put(root, manifest, url, db_file, home, exclude, cfg, force, src)
            config = _put_config(root, manifest, conf, home)
        except OSError as exc:
            raise _os_error(exc, "restore stopped") from None
    revision = db.upgrade(url)
    report = {"restored": str(src), "backend": backend, "created": manifest["created"],
              "civicaup_version": manifest["civicaup_version"],
              "schema_revision": {"backup": manifest["schema_revision"], "now": revision},
              "data_dir": str(home), "files": files, "bytes": total, "config": config, **checks(url)}
    report["ok"] = report["audit"]["problem"] is None and not report["archive"]["bad"] \
        and not report["quarantine"]["bad"]
    _audit(url, "restore", str(src), {"created": manifest["created"], "ok": report["ok"],
                                      "schema_revision": report["schema_revision"]})
    return report


def _refuse_non_empty(url: str, db_file: Path | None, home: Path, exclude: set[Path]) -> None:
    rows = db.row_counts(url) if db_file is None or db_file.is_file() else {}
    files = len(select_state(home, exclude))
    if rows or files:
        parts = ([f"{sum(rows.values())} rows in {len(rows)} tables"] if rows else []) + \
                ([f"{files} files in {home}"] if files else [])
        raise InputError(f"the store is not empty ({' and '.join(parts)}): restore with --force to replace it")


def _put(root: Path, manifest: dict[str, Any], url: str, db_file: Path | None, home: Path, exclude: set[Path],
         cfg: settings.Settings, force: bool, src: Path) -> int:
    """The database, then the data directory (emptied of its old state first with --force); returns files."""
    dump = root / manifest["database"]
    if db_file is not None:
        db.sqlite_put(dump, db_file)
    else:
        db.pg_restore(dump, url)
    if force:
        old = select_state(home, exclude)
        for rel in old.files + old.sqlite:
            for suffix in ("", *db.SQLITE_SIDE_FILES) if rel in old.sqlite else ("",):
                (home / (rel + suffix)).unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    for d in manifest["dirs"]:
        (home / d).mkdir(parents=True, exist_ok=True)
    sqlite_files = set(manifest.get("sqlite_files", []))
    n = 1
    for rel, want in sorted(manifest["files"].items()):
        if not rel.startswith("data/"):
            continue
        target = home / rel[len("data/"):]
        if rel in sqlite_files:
            db.sqlite_put(root / rel, target)
        elif copy_file(root / rel, target)[0] != want["sha256"]:
            raise InputError(f"{src} changed while it was restored: {rel}; run restore again with --force")
        n += 1
    index = manifest.get("category_index")
    if index:
        copy_file(root / index["path"], cfg.category_index.absolute())
        n += 1
    return n


def _put_config(root: Path, manifest: dict[str, Any], in_use: Path | None, home: Path) -> dict[str, Any] | None:
    """The backed-up configuration file: left alone when one is in use here (it says where to restore to), else
    installed in the data directory if that is where it came from; otherwise it stays in the backup."""
    saved = manifest.get("config")
    if not saved:
        return None
    data = (root / saved["path"]).read_bytes()
    out = {"backup": saved["path"], "source": saved["source"]}
    if in_use is not None and in_use.is_file():
        same = in_use.read_bytes() == data
        return {**out, "status": "same" if same else "kept the file in use (the backup's differs)",
                "path": str(in_use)}
    source = Path(saved["source"])
    if source.parent == Path(manifest["data_dir"]):
        target = home / source.name
        copy_file(root / saved["path"], target)
        return {**out, "status": "installed", "path": str(target)}
    return {**out, "status": f"not installed: copy it from the backup to {source} if this machine should use it",
            "path": None}


def checks(url: str) -> dict[str, Any]:
    """After a restore: the audit chain, every archived original and every quarantined message, re-hashed."""
    from civicaup.channels.mail import quarantine
    from civicaup.records.archive import verify as verify_archive
    from civicaup.stores import audit
    from civicaup.stores.db import open_store
    from civicaup.stores.records_tables import archive_messages
    from civicaup.stores.tables import mail_quarantine

    engine = open_store(url)
    entries, problem = audit.verify(engine)
    try:
        with engine.connect() as conn:
            policies = list(conn.scalars(select(archive_messages.c.policy).distinct()))
            held = conn.execute(select(mail_quarantine.c.id, mail_quarantine.c.sha256)
                                .order_by(mail_quarantine.c.id)).all()
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot read the restored store: {str(exc).splitlines()[0]}") from None
    checked, bad = 0, []
    for policy in sorted(policies):
        n, problems = verify_archive(engine, policy)
        checked += n
        bad.extend({"policy": policy, "ref": ref, "problem": why} for ref, why in problems)
    q_bad = []
    for qid, sha in held:
        path = quarantine.blob_path(sha)
        try:
            ok = hash_file(path)[0] == sha
        except OSError as exc:
            q_bad.append({"id": qid, "problem": f"stored message missing ({exc.strerror})"})
            continue
        if not ok:
            q_bad.append({"id": qid, "problem": f"stored message does not match its hash {sha[:12]}"})
    return {"audit": {"entries": entries, "problem": problem},
            "archive": {"checked": checked, "bad": bad},
            "quarantine": {"checked": len(held), "bad": q_bad}}
