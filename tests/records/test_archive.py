"""The archive on SQLite and on a real PostgreSQL: import formats, stored once, verified reads, search."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.policy.registry import get_pack
from civicaup.records import archive, blobs, segments
from civicaup.records.authz import NotPermittedError
from civicaup.records.retention import classify
from civicaup.records.search import Filters, parse_query, search

from .conftest import POLICY
from .mails import mail, utc

TZ = get_pack(POLICY).tz


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def mailboxes(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An .eml folder, a three-message mbox (one message also an .eml), a Maildir and a stray file."""
    m = {
        "budget": mail(sender="Dana Reed <dana.reed@kirkwoodmo.org>", to="jo.smith@kirkwoodmo.org",
                       subject="Budget for the lobbyist meeting", body="The lobbyists asked about the budget.",
                       date=utc(2025, 3, 3, 15, 0), attachments={"Budget-2026.xlsx": b"PK\x03\x04 fake"}),
        "park": mail(sender="pat.jones@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org",
                     cc="Jo Smith <jo.smith@kirkwoodmo.org>", subject="Park benches",
                     body="Benches at Walker Park are broken.", date=utc(2025, 4, 1, 13, 0)),
        "vendor": mail(sender="sales@vendor.example.com", to="lee.chan@kirkwoodmo.org",
                       subject="Quote", body="Our lobbying arm sends greetings.", date=utc(2025, 5, 2, 9, 0)),
        "late": mail(sender="jo.smith@kirkwoodmo.org", to="council@lists.kirkwoodmo.org",
                     subject="Agenda", body="Agenda attached for the lobbyist hearing.",
                     date=utc(2025, 6, 1, 4, 30)),  # 23:30 on 31 May in Kirkwood (CDT)
        "maildir": mail(sender="kim.nguyen@kirkwoodmo.org", to="alex.brown@kirkwoodmo.org",
                        subject="Shift swap", body="Can we swap shifts on Friday?", date=utc(2025, 2, 1, 12, 0)),
    }
    root = tmp_path / "in"
    _write(root / "eml" / "budget.eml", m["budget"])
    _write(root / "eml" / "park.eml", m["park"])
    mbox = b"".join(b"From someone@example.com Sat Jan  1 00:00:00 2025\n" + m[k] + b"\n"
                    for k in ("budget", "vendor", "late"))
    _write(root / "archive.mbox", mbox)
    _write(root / "Maildir" / "cur" / "1700000000.1.host:2,S", m["maildir"])
    _write(root / "Maildir" / "tmp" / "1700000001.2.host", m["park"] + b"being delivered")
    (root / "Maildir" / "new").mkdir()
    _write(root / "notes.txt", b"this is not an e-mail message\n")
    return root, m


def test_import_counts_formats_and_duplicates(store: Engine, mailboxes: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = mailboxes
    report = archive.import_paths(store, [root], policy=POLICY, jobs=2)
    assert (report.imported, report.duplicate, report.failed) == (5, 1, 1), report.failures
    assert "notes.txt" in report.failures[0][0]
    again = archive.import_paths(store, [root / "eml"], policy=POLICY, jobs=1)
    assert (again.imported, again.duplicate, again.failed) == (0, 2, 0)
    assert archive.count(store, POLICY) == 5


def _entries(home: Path) -> list[segments.Entry]:
    return [e for sid in segments.segment_ids(home / "archive" / "segments")
            for e in segments.scan(segments.segment_path(home / "archive" / "segments", sid))]


def test_originals_are_stored_once_by_hash_and_verified_on_read(store: Engine,
                                                                 mailboxes: tuple[Path, dict[str, bytes]]) -> None:
    root, m = mailboxes
    archive.import_paths(store, [root], policy=POLICY, jobs=1)
    archive.import_paths(store, [root], policy=POLICY, jobs=2)
    home = Path(os.environ["CIVICAUP_HOME"])
    entries = _entries(home)
    assert sorted(e.sha256 for e in entries) == sorted(hashlib.sha256(v).hexdigest() for v in m.values())
    assert not any(p.is_file() for p in (home / "archive").rglob("*") if p.parent.name != "segments")
    sha = hashlib.sha256(m["budget"]).hexdigest()
    rec = archive.find_record(store, POLICY, sha[:12])
    assert archive.original(rec, store) == m["budget"]
    with store.connect() as conn:
        loc = blobs.locate(conn, [sha])[sha]
    path = segments.segment_path(home / "archive" / "segments", loc.segment)
    with open(path, "r+b") as fh:  # one byte of the stored payload changed
        fh.seek(loc.offset + segments.HEADER.size + loc.length // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x20]))
    with pytest.raises(blobs.BlobError, match="hash check|damaged"):
        archive.original(rec, store)
    n, bad = archive.verify(store, POLICY)
    assert n == 5 and [b[0] for b in bad] == [sha[:12]]


def test_large_originals_are_compressed_and_read_back_exactly(store: Engine) -> None:
    raw = mail(sender="lee.chan@kirkwoodmo.org", to="pat.jones@kirkwoodmo.org", subject="Logs",
               body="line of log text\n" * 2000, date=utc(2025, 1, 1))
    added = archive.add_message(store, raw, policy=POLICY, decision=None, source="t")
    [entry] = _entries(Path(os.environ["CIVICAUP_HOME"]))
    assert entry.sha256 == added.sha256 and entry.flags & segments.ZSTD and entry.size == len(raw)
    assert entry.length < len(raw) / 10
    assert blobs.get(added.sha256, store) == raw


def _subjects(store: Engine, **kw: object) -> list[str]:
    return [r.subject for r in search(store, POLICY, Filters(**kw), tz=TZ).records]  # type: ignore[arg-type]


def test_search_finds_word_forms_by_stemming(store: Engine, mailboxes: tuple[Path, dict[str, bytes]]) -> None:
    archive.import_paths(store, [mailboxes[0]], policy=POLICY, jobs=1)
    expected = ["Agenda", "Budget for the lobbyist meeting"]  # "lobbyist" and "lobbyists", newest first
    assert _subjects(store, text="lobbyist") == expected
    assert _subjects(store, text="lobbyists") == expected
    assert _subjects(store, text='"walker park"') == ["Park benches"]
    assert _subjects(store, text="benches OR swap") == ["Park benches", "Shift swap"]
    assert _subjects(store, text="lobbyist -agenda") == ["Budget for the lobbyist meeting"]
    assert _subjects(store, text="bench*") == ["Park benches"]


def test_search_by_sender_recipient_dates_and_attachment(store: Engine,
                                                          mailboxes: tuple[Path, dict[str, bytes]]) -> None:
    archive.import_paths(store, [mailboxes[0]], policy=POLICY, jobs=1)
    assert _subjects(store, from_="dana.reed@kirkwoodmo.org") == ["Budget for the lobbyist meeting"]
    assert _subjects(store, from_="vendor.example.com") == ["Quote"]
    assert _subjects(store, from_="example.com") == ["Quote"]  # a domain finds its subdomains
    assert _subjects(store, to="jo.smith@kirkwoodmo.org") == ["Park benches", "Budget for the lobbyist meeting"]
    assert _subjects(store, to="kirkwoodmo.org", text="agenda") == ["Agenda"]
    # dates are the city's days: 2025-06-01 04:30 UTC is still 31 May in Kirkwood
    assert _subjects(store, since=utc(2025, 5, 31).date(), until=utc(2025, 5, 31).date()) == ["Agenda"]
    assert _subjects(store, since=utc(2025, 6, 1).date()) == []
    assert _subjects(store, attachment="budget-2026") == ["Budget for the lobbyist meeting"]
    res = search(store, POLICY, Filters(), tz=TZ, limit=2, count=True)
    assert [r.subject for r in res.records] == ["Agenda", "Quote"] and res.more and res.count == 5


def test_query_syntax_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        parse_query("-only -exclusions")
    assert parse_query("  ") is None


def test_journal_hook_records_the_decision_and_is_idempotent(store: Engine) -> None:
    raw = mail(sender="pat.jones@kirkwoodmo.org", to="all-users@kirkwoodmo.org", subject="Picnic",
               body="Company picnic Friday.", date=utc(2025, 7, 1, 16, 0))
    first = archive.add_message(store, raw, policy=POLICY, decision=None, source="journal")
    again = archive.add_message(store, raw, policy=POLICY, decision={"action": "hold", "findings": []},
                                source="journal")
    assert not first.duplicate and again.duplicate and again.id == first.id
    rec = archive.find_record(store, POLICY, str(first.id))
    assert rec.decision_action == "hold" and rec.source == "journal"
    assert blobs.get(first.sha256, store) == raw


def test_series_by_rule_and_by_the_clerk(store: Engine) -> None:
    msgs = {
        "cao": mail(sender="sam.ortiz@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org", subject="New policy",
                    body="Effective today.", date=utc(2025, 1, 2)),
        "contract": mail(sender="dana.reed@kirkwoodmo.org", to="sales@vendor.example.com",
                         subject="Contract renewal", body="Please sign.", date=utc(2025, 1, 3)),
        "ooo": mail(sender="lee.chan@kirkwoodmo.org", to="pat.jones@kirkwoodmo.org",
                    subject="Automatic reply: Out of Office", body="Back Monday.", date=utc(2025, 1, 4)),
        "plain": mail(sender="pat.jones@kirkwoodmo.org", to="lee.chan@kirkwoodmo.org", subject="Printer",
                      body="Jammed again.", date=utc(2025, 1, 5)),
    }
    recs = {k: archive.find_record(store, POLICY, archive.add_message(store, v, policy=POLICY, decision=None,
                                                                       source="t").sha256[:12])
            for k, v in msgs.items()}
    assert {k: (r.series, r.series_by) for k, r in recs.items()} == {
        "cao": ("policy-decision", "rule:leadership"), "contract": ("contracts", "rule:contract-keywords"),
        "ooo": ("transitory", "rule:auto-replies"), "plain": ("general-correspondence", "default")}
    with pytest.raises(NotPermittedError):
        classify(store, POLICY, recs["plain"].ref, "transitory", actor="pat.jones@kirkwoodmo.org")
    assert classify(store, POLICY, recs["plain"].ref, "transitory", actor="jo.smith@kirkwoodmo.org") == (
        "general-correspondence", "transitory")
    assert archive.find_record(store, POLICY, recs["plain"].ref).series_by == "clerk:jo.smith@kirkwoodmo.org"


def test_the_mail_paths_journal_maildir_imports_with_its_decisions(store: Engine, tmp_path: Path) -> None:
    import base64
    import json

    raw = mail(sender="pat.jones@kirkwoodmo.org", to="lee.chan@kirkwoodmo.org", subject="Flagged",
               body="Please review.", date=utc(2025, 8, 1, 15)).replace(b"\n", b"\r\n")
    record = {"policy": POLICY, "queue_id": "4F2A1", "decision": {"action": "flag", "findings": []}}
    data = base64.b64encode(json.dumps(record).encode())
    header = b"X-Civicaup-Journal: " + b"\r\n ".join(data[i:i + 76] for i in range(0, len(data), 76)) + b"\r\n"
    _write(tmp_path / "journal" / "new" / "1.P1Q1_abc.host", header + raw)
    (tmp_path / "journal" / "cur").mkdir()
    (tmp_path / "journal" / "tmp").mkdir()
    assert archive.import_paths(store, [tmp_path / "journal"], policy=POLICY, jobs=1).imported == 1
    rec = archive.find_record(store, POLICY, hashlib.sha256(raw).hexdigest()[:12])  # the original, header-less
    assert rec.decision_action == "flag" and rec.source == "journal 4F2A1" and archive.original(rec) == raw
