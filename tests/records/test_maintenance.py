"""`civicaup archive migrate-originals` and `civicaup archive compact`: dry runs that change nothing, real
runs that are audited, and runs stopped in the middle (a write that fails inside the copy step, a process
that dies between the commit and the old copy's removal) after which a re-run finishes the job and every
original still reads back with its hash verified. On SQLite and on a real PostgreSQL."""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from civicaup.records import archive, blobs, ingest, maintenance, retention, segments
from civicaup.records.extract import extract
from civicaup.stores.tables import audit as audit_table

from .conftest import POLICY
from .mails import mail, utc

CLERK = "jo.smith@kirkwoodmo.org"


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _home() -> Path:
    return Path(os.environ["CIVICAUP_HOME"])


def _root() -> Path:
    return _home() / "archive" / "segments"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("civicaup")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=dict(os.environ), timeout=300)


def _note(n: int, marker: str, when: datetime) -> bytes:
    return mail(sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org", subject=f"Upkeep {n}",
                body=f"Upkeep note {n}. {marker}", date=when, msgid=f"<upkeep.{n}.{marker}@test>")


def _with_freed_space(store: Engine) -> tuple[list[bytes], list[bytes], int]:
    """An archive of one segment where a disposition freed a fifth of the space: under the automatic
    compaction's quarter, so the segment is still there with its disposed records. Returns (kept, disposed,
    that segment's id)."""
    recent = datetime.now(timezone.utc) - timedelta(days=10)
    doomed = [_note(i, f"Gonemarker{i}", utc(2019, 7, 3, 17)) for i in range(4)]
    kept = [_note(10 + i, f"Keptmarker{i}", recent) for i in range(16)]
    for raw in doomed + kept:
        archive.add_message(store, raw, policy=POLICY, decision=None, source="test")
    [sid] = segments.segment_ids(_root())
    _, entries = retention.run(store, POLICY, dry_run=False, actor=CLERK)
    assert entries and segments.segment_ids(_root()) == [sid]  # below the threshold: not compacted yet
    return kept, doomed, sid


def _all_read_back(store: Engine, raws: list[bytes]) -> None:
    for raw in raws:
        assert blobs.get(_sha(raw), store) == raw  # hash verified on read
    assert archive.verify(store, POLICY) == (len(raws), [])


def _audit_actions(store: Engine) -> list[str]:
    with store.connect() as conn:
        return list(conn.scalars(select(audit_table.c.action).order_by(audit_table.c.id)))


# ---------------------------------------------------------------- compaction

def test_compact_dry_run_changes_nothing_and_a_real_run_is_audited(store: Engine) -> None:
    kept, doomed, sid = _with_freed_space(store)
    before = _snapshot(_home() / "archive")
    plan = maintenance.compact_segments(store, dry_run=True, threshold=0.0)
    assert (plan["rewritten"], plan["moved"], plan["deleted"], plan["audit"]) == ([sid], 16, [], None)
    assert plan["reclaimed"] > 0
    assert _snapshot(_home() / "archive") == before
    assert "archive-compact" not in _audit_actions(store)
    # at the default threshold (a quarter) this segment is not worth rewriting
    assert maintenance.compact_segments(store, dry_run=True)["rewritten"] == []
    done = maintenance.compact_segments(store, dry_run=False, threshold=0.0, actor=CLERK)
    assert (done["rewritten"], done["moved"], done["damaged"]) == ([sid], 16, [])
    assert done["reclaimed"] == plan["reclaimed"] and done["audit"]
    assert sid not in segments.segment_ids(_root())
    data = b"".join(_snapshot(_home() / "archive").values())
    assert not any(f"Gonemarker{i}".encode() in data for i in range(4))
    _all_read_back(store, kept)
    assert _audit_actions(store)[-1] == "archive-compact"
    again = maintenance.compact_segments(store, dry_run=False, threshold=0.0)
    assert (again["rewritten"], again["deleted"], again["moved"]) == ([], [], 0)


@pytest.mark.parametrize("stop", ["copy", "after-commit"])
def test_an_interrupted_compaction_loses_nothing_and_a_rerun_finishes_it(
        store: Engine, monkeypatch: pytest.MonkeyPatch, stop: str) -> None:
    kept, doomed, sid = _with_freed_space(store)
    real_pwrite, real_unlink = os.pwrite, Path.unlink

    def torn_pwrite(fd: int, data: bytes, offset: int) -> int:  # half the copy reaches the disk, then EIO
        real_pwrite(fd, bytes(data[:len(data) // 2]), offset)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    def dying_unlink(self: Path, missing_ok: bool = False) -> None:  # the process stops before the delete
        if self.suffix == segments.SUFFIX:
            raise KeyboardInterrupt
        real_unlink(self, missing_ok=missing_ok)

    with monkeypatch.context() as m:
        if stop == "copy":
            m.setattr(segments.os, "pwrite", torn_pwrite)
            with pytest.raises(blobs.BlobError, match="no original was lost"):
                maintenance.compact_segments(store, dry_run=False, threshold=0.0)
        else:
            m.setattr(Path, "unlink", dying_unlink)
            with pytest.raises(KeyboardInterrupt):
                maintenance.compact_segments(store, dry_run=False, threshold=0.0)
    # whatever the point it stopped at, every kept original reads back, hash verified
    _all_read_back(store, kept)
    ids = segments.segment_ids(_root())
    assert sid in ids and len(ids) == 2  # the old segment, and the new one (torn, or with the copies)
    new = max(ids)
    with store.connect() as conn:
        pointing = {loc.segment for loc in blobs.locate(conn, [_sha(r) for r in kept]).values()}
    assert pointing == ({sid} if stop == "copy" else {new})
    if stop == "copy":  # the copy's segment ends in a torn record: no writer appends to it again
        fd = os.open(segments.segment_path(_root(), new), os.O_RDONLY)
        try:
            assert not segments.tail_ok(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    done = maintenance.compact_segments(store, dry_run=False, threshold=0.0)
    assert done["damaged"] == [] and sid not in segments.segment_ids(_root())
    if stop == "copy":
        assert done["rewritten"] == [sid] and new in done["deleted"]
    else:
        assert done["deleted"] == [sid]
    _all_read_back(store, kept)
    live = [e for s in segments.segment_ids(_root()) for e in segments.scan(segments.segment_path(_root(), s))
            if not e.flags & segments.DISPOSED]
    assert sorted(e.sha256 for e in live) == sorted(_sha(r) for r in kept)  # each original once
    data = b"".join(_snapshot(_home() / "archive").values())
    assert not any(f"Gonemarker{i}".encode() in data for i in range(4))


def test_a_copy_that_does_not_read_back_keeps_the_old_segment(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    kept, _, sid = _with_freed_space(store)
    real = segments.read_record
    calls = {"n": 0}

    def flaky(root: Path, loc: segments.Location, sha256: str, *, payload_only: bool = False) -> bytes:
        if loc.segment != sid and not payload_only:  # the read-back of a fresh copy finds different bytes
            calls["n"] += 1
            raise blobs.BlobError(f"the original of record {sha256[:12]} fails its hash check (altered or damaged)")
        return real(root, loc, sha256, payload_only=payload_only)

    with monkeypatch.context() as m:
        m.setattr(segments, "read_record", flaky)
        done = maintenance.compact_segments(store, dry_run=False, threshold=0.0)
    assert calls["n"] == 1 and done["rewritten"] == [] and [d["segment"] for d in done["damaged"]] == [sid]
    assert maintenance.problems(done)
    _all_read_back(store, kept)  # the rows still point at the old segment, which is still there


def test_compact_threshold_out_of_range_is_bad_input(store: Engine) -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(maintenance.InputError):
            maintenance.compact_segments(store, dry_run=True, threshold=bad)


# ---------------------------------------------------------------- the earlier one-file layout

def _legacy(store: Engine, raws: list[bytes]) -> list[Path]:
    """Originals and rows as versions before segments wrote them: a read-only file each, gzip above 8 KiB."""
    paths = []
    for raw in raws:
        path = blobs.file_path(_sha(raw))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(raw) if len(raw) > 8192 else raw)
        path.chmod(0o444)
        paths.append(path)
    assigner = ingest.assigner_for(store, POLICY)
    with store.begin() as conn:
        ingest.insert_batch(conn, POLICY, [ingest.prepare(extract(r), "old", assigner, store.dialect.name == "sqlite")
                                           for r in raws])
    return paths


def _legacy_mails() -> list[bytes]:
    small = [_note(40 + i, f"Oldfile{i}", utc(2025, 1, 2 + i, 15)) for i in range(5)]
    large = mail(sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org", subject="Old large",
                 body="old layout line\n" * 1500, date=utc(2025, 1, 9, 15))
    return [*small, large]


def test_an_interrupted_migration_loses_nothing_and_a_rerun_finishes_it(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    raws = _legacy_mails()
    paths = _legacy(store, raws)
    plan = maintenance.migrate_originals(store, dry_run=True)
    assert (plan["moved"], plan["already"], plan["bad"], plan["audit"]) == (6, 0, [], None)
    assert plan["bytes"] == sum(len(r) for r in raws) and all(p.exists() for p in paths)
    assert segments.segment_ids(_root()) == []
    real_pwrite = os.pwrite

    def torn_pwrite(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, bytes(data[:len(data) // 3]), offset)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(segments.os, "pwrite", torn_pwrite)
        with pytest.raises(blobs.BlobError, match="No space left.*no original was lost"):
            maintenance.migrate_originals(store, dry_run=False)
    assert all(p.exists() for p in paths)  # nothing recorded, nothing removed
    _all_read_back(store, raws)
    done = maintenance.migrate_originals(store, dry_run=False, actor=CLERK)
    assert (done["moved"], done["bad"]) == (6, []) and done["audit"]
    assert not any(p.exists() for p in paths) and blobs.legacy_files() == []
    _all_read_back(store, raws)
    with store.connect() as conn:
        assert set(blobs.locate(conn, [_sha(r) for r in raws])) == {_sha(r) for r in raws}
    assert _audit_actions(store)[-1] == "archive-migrate-originals"
    assert maintenance.migrate_originals(store, dry_run=False)["moved"] == 0


def test_a_damaged_file_is_left_in_place_and_reported(store: Engine) -> None:
    raws = _legacy_mails()[:3]
    paths = _legacy(store, raws)
    paths[1].chmod(0o644)
    paths[1].write_bytes(raws[1].replace(b"Upkeep note", b"Upkeep NOTE"))
    done = maintenance.migrate_originals(store, dry_run=False)
    assert done["moved"] == 2 and [b["ref"] for b in done["bad"]] == [_sha(raws[1])[:12]]
    assert "hash check" in maintenance.problems(done)[0]
    assert paths[1].exists() and not paths[0].exists() and not paths[2].exists()


# ---------------------------------------------------------------- the command line (both databases)

def test_the_maintenance_commands_from_the_command_line(store: Engine) -> None:
    raws = _legacy_mails()[:3]
    paths = _legacy(store, raws)
    r = _cli("archive", "migrate-originals", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["moved"], doc["dry_run"], doc["audit"]) == (3, True, None) and all(p.exists() for p in paths)
    r = _cli("archive", "migrate-originals", "--as", CLERK)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("moved 3 originals") and "audit entry" in r.stdout
    assert not any(p.exists() for p in paths)
    r = _cli("archive", "compact", "--dry-run")
    assert r.returncode == 0 and r.stdout.startswith("would rewrite 0 segments"), (r.stdout, r.stderr)
    r = _cli("archive", "compact", "--threshold", "0", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["damaged"] == [] and doc["audit"] and doc["threshold"] == 0.0
    assert _audit_actions(store)[-2:] == ["archive-migrate-originals", "archive-compact"]
    r = _cli("audit", "verify")
    assert r.returncode == 0, r.stdout
    _all_read_back(store, raws)


@pytest.mark.parametrize("args", [
    ["archive", "compact", "--threshold", "1.5"],
    ["archive", "compact", "--threshold", "-1"],
    ["archive", "compact", "--threshold", "lots"],
    ["archive", "migrate-originals", "--dry-run", "extra"],
])
def test_bad_maintenance_input_is_one_line_and_exit_2(store: Engine, args: list[str]) -> None:
    r = _cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
