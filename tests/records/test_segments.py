"""The originals' segment store: torn tails, hash checks, destruction that leaves no byte behind, the earlier
one-file layout, and writers in separate processes (the store tests run on SQLite and a real PostgreSQL)."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from civicaup.records import archive, blobs, ingest, retention, segments
from civicaup.stores.records_tables import archive_messages, archive_originals

from .conftest import PACKS, POLICY
from .mails import mail, utc

CLERK = "jo.smith@kirkwoodmo.org"


def _home() -> Path:
    return Path(os.environ["CIVICAUP_HOME"])


def _root() -> Path:
    return _home() / "archive" / "segments"


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _all_entries(root: Path) -> list[segments.Entry]:
    return [e for sid in segments.segment_ids(root) for e in segments.scan(segments.segment_path(root, sid))]


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# ---------------------------------------------------------------- the file format alone

def test_writer_rolls_segments_and_reads_back_every_record(tmp_path: Path) -> None:
    raws = [f"Subject: n{i}\n\n".encode() + random.Random(i).randbytes(i * 37 % 3000) for i in range(300)]
    with segments.Writer(tmp_path, segment_bytes=64 * 1024) as w:
        locs = [w.put(_sha(r), r) for r in raws]
    assert len(segments.segment_ids(tmp_path)) > 3  # 300 records did not fit in one 64 KiB segment
    for raw, loc in zip(raws, locs):
        assert segments.read_record(tmp_path, loc, _sha(raw)) == raw
    assert [e.sha256 for e in _all_entries(tmp_path)] == [_sha(r) for r in raws]
    for sid in segments.segment_ids(tmp_path):  # each file is exactly its intact records
        path = segments.segment_path(tmp_path, sid)
        covered = sum(e.length + segments.OVERHEAD for e in segments.scan(path)) + len(segments.FILE_MAGIC)
        assert covered == path.stat().st_size


def test_a_torn_tail_is_detected_and_ignored(tmp_path: Path) -> None:
    first = [f"Subject: before {i}\n\nbody {i}\n".encode() for i in range(5)]
    with segments.Writer(tmp_path) as w:
        locs = [w.put(_sha(r), r) for r in first]
    [sid] = segments.segment_ids(tmp_path)
    path = segments.segment_path(tmp_path, sid)
    # what a crash in the middle of an append leaves: a header and part of a payload, no trailer
    lost = b"Subject: lost\n\n" + b"y" * 500
    torn = segments._header(_sha(lost), 0, len(lost), len(lost)) + lost[:200]
    with open(path, "ab") as fh:
        fh.write(torn)
    assert not segments.tail_ok(os.open(path, os.O_RDONLY), path.stat().st_size)
    assert [e.sha256 for e in segments.scan(path)] == [_sha(r) for r in first]  # the scan stops at the tear
    after = [f"Subject: after {i}\n\nbody {i}\n".encode() for i in range(3)]
    with segments.Writer(tmp_path) as w:
        new_locs = [w.put(_sha(r), r) for r in after]
    assert {loc.segment for loc in new_locs} == {sid + 1}  # the torn segment is not appended to
    assert path.read_bytes().endswith(torn)  # and not "repaired" either: nothing durable is ever cut off
    for raw, loc in zip(first + after, locs + new_locs):
        assert segments.read_record(tmp_path, loc, _sha(raw)) == raw


def test_a_bare_file_header_from_a_crash_right_after_creation_is_skipped(tmp_path: Path) -> None:
    tmp_path.joinpath("00000001.seg").write_bytes(segments.FILE_MAGIC[:7])
    with segments.Writer(tmp_path) as w:
        loc = w.put(_sha(b"Subject: x\n\ny\n"), b"Subject: x\n\ny\n")
    assert loc.segment == 2


def test_hash_and_header_checks_catch_damage(tmp_path: Path) -> None:
    raw = b"Subject: check me\n\n" + b"payload line\n" * 10
    other = b"Subject: other\n\nsomething else\n"
    with segments.Writer(tmp_path) as w:
        loc, loc2 = w.put(_sha(raw), raw), w.put(_sha(other), other)
    path = segments.segment_path(tmp_path, loc.segment)
    pristine = path.read_bytes()

    def flip(pos: int) -> None:
        data = bytearray(pristine)
        data[pos] ^= 0x01
        path.write_bytes(bytes(data))

    flip(loc.offset + segments.HEADER.size + 3)  # a payload byte
    with pytest.raises(segments.BlobError, match="hash check"):
        segments.read_record(tmp_path, loc, _sha(raw))
    flip(loc.offset + 12)  # a header byte: the CRC no longer matches
    with pytest.raises(segments.BlobError, match="damaged"):
        segments.read_record(tmp_path, loc, _sha(raw))
    path.write_bytes(pristine)
    with pytest.raises(segments.BlobError, match="damaged"):  # a location that holds another record
        segments.read_record(tmp_path, segments.Location(loc.segment, loc2.offset, loc.length), _sha(raw))
    assert segments.read_record(tmp_path, loc2, _sha(other)) == other


WRITER_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    from civicaup.records import segments
    root, tag, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    out = []
    for batch in range(0, n, 50):
        with segments.Writer(root, segment_bytes=48 * 1024) as w:
            for i in range(batch, min(n, batch + 50)):
                raw = f"Subject: {tag} {i}\\n\\n".encode() + bytes([65 + i % 26]) * (i * 53 % 2500)
                loc = w.put(hashlib.sha256(raw).hexdigest(), raw)
                out.append(f"{loc.segment} {loc.offset} {loc.length} {hashlib.sha256(raw).hexdigest()}")
    print("\\n".join(out))
""")


def test_writers_in_two_processes_never_share_a_segment_tail(tmp_path: Path) -> None:
    root = tmp_path / "segments"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(root), tag, "600"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("alpha", "beta")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    written = [line.split() for out, _ in outs for line in out.splitlines()]
    assert len(written) == 1200
    for sid, off, length, sha in written:
        loc = segments.Location(int(sid), int(off), int(length))
        assert _sha(segments.read_record(root, loc, sha)) == sha
    entries = _all_entries(root)
    assert sorted(e.sha256 for e in entries) == sorted(sha for *_, sha in written)  # no record lost or torn
    for sid in segments.segment_ids(root):
        path = segments.segment_path(root, sid)
        assert sum(e.length + segments.OVERHEAD for e in segments.scan(path)) + 16 == path.stat().st_size


# ---------------------------------------------------------------- the archive's originals (both databases)

def _message(n: int, marker: str, when: datetime) -> bytes:
    return mail(sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org", subject=f"Note {n}",
                body=f"Short note {n}. {marker}", date=when,
                msgid=f"<seg.{n}.{_sha(marker.encode())[:8]}@test>")  # the certificate lists message ids


def test_a_disposed_record_is_gone_from_every_file_after_compaction(store: Engine) -> None:
    old, recent = utc(2019, 7, 3, 17), datetime.now(timezone.utc) - timedelta(days=10)
    doomed = [_message(i, f"Zanzibarquux{i}", old) for i in range(8)]
    kept = [_message(10 + i, "Keepsakeword", recent) for i in range(12)]
    for raw in [m for pair in zip(doomed, kept) for m in pair] + kept[8:]:  # one segment, more than a quarter
        # of it disposed of: compaction rewrites it
        archive.add_message(store, raw, policy=POLICY, decision=None, source="test")
    assert all(len(r) <= segments.COMPRESS_ABOVE for r in doomed)  # stored as they are: visible bytes
    home = _home()
    assert b"Zanzibarquux1" in _bytes_under(home / "archive")
    before = segments.segment_ids(_root())
    plan, entries = retention.run(store, POLICY, dry_run=False, actor=CLERK)
    assert {d.sha256 for d in plan.due} == {_sha(r) for r in doomed} and entries
    archive_bytes = _bytes_under(home / "archive")
    for i in range(8):
        assert f"Zanzibarquux{i}".encode() not in archive_bytes
        assert not blobs.exists(_sha(doomed[i]), store)
    assert segments.segment_ids(_root()) != before  # the old segment was rewritten and deleted
    assert not any(e.sha256 in {_sha(r) for r in doomed} for e in _all_entries(_root()))
    for raw in kept:
        assert blobs.get(_sha(raw), store) == raw
    assert archive.verify(store, POLICY) == (12, [])
    assert not (_root() / blobs.PENDING).exists()
    if store.dialect.name == "sqlite":  # nor does the database (the certificate names records, not their text)
        db = b"".join(p.read_bytes() for p in home.glob("civicaup.db*")).lower()
        assert b"zanzibarquux" not in db and b"keepsakeword" in db


def test_zeroing_alone_removes_the_bytes_when_the_segment_is_busy(store: Engine) -> None:
    old = utc(2019, 7, 3, 17)
    doomed = _message(1, "Quokkamarker", old)
    archive.add_message(store, doomed, policy=POLICY, decision=None, source="test")
    rec = archive.find_record(store, POLICY, _sha(doomed)[:12])
    with store.connect() as conn:
        loc = blobs.locate(conn, [rec.sha256])[rec.sha256]
    held = segments.SegmentLock(_root(), loc.segment)  # as if a writer were appending to it right now
    assert held.acquire()
    try:
        archive.delete_records(store, [rec.id])
        assert segments.segment_path(_root(), loc.segment).exists()  # not compacted: busy
        assert b"Quokkamarker" not in _bytes_under(_home() / "archive")
        assert segments.record_flags(_root(), loc) & segments.DISPOSED
    finally:
        held.release()
    report = blobs.compact(store)
    assert report.deleted == [loc.segment] and not segments.segment_path(_root(), loc.segment).exists()


def test_a_disposition_interrupted_after_its_commit_is_finished_by_the_next_one(store: Engine) -> None:
    raws = [_message(i, f"Wombatmarker{i}", utc(2019, 7, 3, 17)) for i in range(2)]
    for raw in raws:
        archive.add_message(store, raw, policy=POLICY, decision=None, source="test")
    shas = [_sha(r) for r in raws]
    with store.connect() as conn:
        locs = blobs.locate(conn, shas)
    # the journal lists both; the first disposition committed and then the process died, the second's
    # transaction never committed (its rows are all still there)
    (_root() / blobs.PENDING).write_text("".join(json.dumps(
        {"sha256": s, "segment": locs[s].segment, "offset": locs[s].offset, "length": locs[s].length}) + "\n"
        for s in shas))
    with store.begin() as conn:
        conn.execute(archive_originals.delete().where(archive_originals.c.sha256 == shas[0]))
        conn.execute(archive_messages.delete().where(archive_messages.c.sha256 == shas[0]))
    report = blobs.compact(store, threshold=1.0)  # finishes the journal first
    assert not (_root() / blobs.PENDING).exists() and report.damaged == []
    data = _bytes_under(_home() / "archive")
    assert b"Wombatmarker0" not in data and b"Wombatmarker1" in data
    assert blobs.get(shas[1], store) == raws[1]


def _legacy_put(raw: bytes) -> Path:
    """An original as versions before segments stored it: its own read-only file, gzip above 8 KiB."""
    path = blobs.file_path(_sha(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if len(raw) > 8192 else raw)
    path.chmod(0o444)
    return path


def test_originals_of_the_earlier_one_file_layout_stay_readable_and_migrate(store: Engine) -> None:
    small = _message(1, "Oldlayoutsmall", utc(2025, 1, 2, 15))
    large = mail(sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org", subject="Old large",
                 body="old layout line\n" * 1500, date=utc(2025, 1, 3, 15))
    paths = [_legacy_put(r) for r in (small, large)]
    assigner = ingest.assigner_for(store, POLICY)
    from civicaup.records.extract import extract

    with store.begin() as conn:  # rows written by the earlier version: no location rows
        ingest.insert_batch(conn, POLICY, [ingest.prepare(extract(r), "old", assigner,
                                                          store.dialect.name == "sqlite") for r in (small, large)])
    for raw in (small, large):
        assert archive.original(archive.find_record(store, POLICY, _sha(raw)[:12]), store) == raw
    assert archive.verify(store, POLICY) == (2, [])
    again = archive.add_message(store, small, policy=POLICY, decision=None, source="again")
    assert again.duplicate and _all_entries(_root()) == []  # held as a file already: not stored twice
    report = blobs.migrate_files(store)
    assert (report.moved, report.bad) == (2, []) and not any(p.exists() for p in paths)
    assert sorted(e.sha256 for e in _all_entries(_root())) == sorted(_sha(r) for r in (small, large))
    for raw in (small, large):
        assert blobs.get(_sha(raw), store) == raw
    assert blobs.migrate_files(store).moved == 0


def test_a_disposed_original_of_the_earlier_layout_is_shredded(store: Engine) -> None:
    raw = _message(2, "Oldlayoutdoomed", utc(2019, 7, 3, 17))
    path = _legacy_put(raw)
    from civicaup.records.extract import extract

    with store.begin() as conn:
        ingest.insert_batch(conn, POLICY, [ingest.prepare(extract(raw), "old", ingest.assigner_for(store, POLICY),
                                                          store.dialect.name == "sqlite")])
    rec = archive.find_record(store, POLICY, _sha(raw)[:12])
    archive.delete_records(store, [rec.id])
    assert not path.exists() and not blobs.exists(rec.sha256, store)


IMPORT_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from civicaup.records.archive import import_paths
    from civicaup.stores.db import open_store
    r = import_paths(open_store(), [Path(sys.argv[1])], policy=sys.argv[2], jobs=2)
    print(r.imported, r.duplicate, r.failed)
""")


def test_two_importing_processes_store_each_original_once(store: Engine, tmp_path: Path) -> None:
    raws = [mail(sender=f"p{i}@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org", subject=f"Both {i}",
                 body=f"Message {i} " + "text " * (i % 400), date=utc(2024, 1 + i % 12, 1 + i % 28, 12))
            for i in range(400)]
    for name, part in (("a", raws[:300]), ("b", raws[100:])):  # 200 messages in both folders
        folder = tmp_path / name
        folder.mkdir()
        for i, raw in enumerate(part):
            (folder / f"{i}.eml").write_bytes(raw)
    env = {**os.environ}
    procs = [subprocess.Popen([sys.executable, "-c", IMPORT_SCRIPT, str(tmp_path / n), POLICY], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    counts = [tuple(map(int, out.split())) for out, _ in outs]
    assert sum(c[0] for c in counts) == 400 and all(c[2] == 0 for c in counts), counts
    assert archive.count(store, POLICY) == 400 and archive.verify(store, POLICY) == (400, [])
    with store.connect() as conn:
        assert len(conn.execute(select(archive_originals.c.sha256)).all()) == 400
    live = [e for e in _all_entries(_root()) if not e.flags & segments.DISPOSED]
    assert sorted(e.sha256 for e in live) == sorted(_sha(r) for r in raws)  # a copy that lost a race is zeroed
    assert blobs.compact(store, threshold=0.0).damaged == []
    assert archive.verify(store, POLICY) == (400, [])


def test_the_import_cli_still_reports_duplicates_through_the_segment_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "CIVICAUP_DB_URL"}
    env["CIVICAUP_HOME"] = str(home)
    exe = str(Path(sys.executable).with_name("civicaup"))
    subprocess.run([exe, "directory", "import", str(PACKS / POLICY / "directory.csv"), "--policy", POLICY],
                   env=env, check=True, capture_output=True, timeout=120)
    box = tmp_path / "box"
    box.mkdir()
    (box / "a.eml").write_bytes(_message(1, "Cli", utc(2025, 1, 1, 12)))
    runs = [subprocess.run([exe, "archive", "import", str(box), "--policy", POLICY], env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    assert runs[0].stdout.startswith("imported 1, duplicate 0") and runs[1].stdout.startswith("imported 0, duplicate 1")
    assert len(_all_entries(home / "archive" / "segments")) == 1


def test_a_full_disk_stops_the_import_with_one_line_and_commits_nothing(store: Engine, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    box = tmp_path / "box"
    box.mkdir()
    raws = [_message(i, "Diskfull", utc(2025, 2, 1 + i, 12)) for i in range(5)]
    for i, raw in enumerate(raws):
        (box / f"{i}.eml").write_bytes(raw)

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:  # the kernel's answer on a full file system, injected
        m.setattr(segments.os, "pwrite", full)
        with pytest.raises(blobs.BlobError, match="No space left on device"):
            archive.import_paths(store, [box], policy=POLICY, jobs=1)
    assert archive.count(store, POLICY) == 0
    report = archive.import_paths(store, [box], policy=POLICY, jobs=1)
    assert report.imported == 5 and archive.verify(store, POLICY) == (5, [])
