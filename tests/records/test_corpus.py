"""The real SpamAssassin corpus (6,046 messages) imported on SQLite and on PostgreSQL; searches checked
against answers computed independently here by a plain scan of the files with the stdlib parser."""
from __future__ import annotations

import email
import hashlib
import html
import re
from email import policy as email_policy
from email.header import decode_header, make_header
from email.utils import getaddresses
from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.records import archive
from civicaup.records.search import Filters, search

from .conftest import POLICY

pytestmark = pytest.mark.slow

WORDS = {"lobbyist": r"lobbyists?", "lawsuit": r"lawsuits?", "subpoena": r"subpoena(?:s|ed)?", "razor": r"razors?",
         "cheese": r"cheeses?"}
SENDER, RECIPIENT = "rssfeeds@spamassassin.taint.org", "zzzzteana@yahoogroups.com"


def _messages(corpus: Path) -> dict[str, bytes]:
    out = {}
    for f in sorted(corpus.rglob("*")):
        if f.is_file():
            b = f.read_bytes()
            raw = b[b.find(b"\n") + 1:] if b.startswith(b"From ") else b  # the mbox From_ line is not the message
            out[hashlib.sha256(raw).hexdigest()] = raw
    return out


def _text(raw: bytes) -> str:
    m = email.message_from_bytes(raw, policy=email_policy.compat32)
    out = [str(make_header(decode_header(m["subject"]))) if m["subject"] else ""]
    for part in m.walk():
        if part.get_content_maintype() == "text" and not part.get_filename():
            t = (part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "latin-1", "replace")
            out.append(html.unescape(re.sub(r"<[^>]*>", " ", t)) if part.get_content_subtype() == "html" else t)
    return "\n".join(out)


def _addresses(raw: bytes, *headers: str) -> set[str]:
    m = email.message_from_bytes(raw, policy=email_policy.compat32)
    return {a.lower() for _, a in getaddresses([str(v) for h in headers for v in m.get_all(h, [])])}


@pytest.fixture(scope="module")
def expected(corpus: Path) -> dict[str, set[str]]:
    msgs = _messages(corpus)
    texts = {}
    for sha, raw in msgs.items():
        try:
            texts[sha] = _text(raw)
        except Exception:  # noqa: BLE001 - a message the plain scan cannot read is left out of its answers
            texts[sha] = ""
    out = {w: {s for s, t in texts.items() if re.search(rf"(?<![^\W_]){rx}(?![^\W_])", t, re.I)}
           for w, rx in WORDS.items()}
    out["all"] = set(msgs)
    out["from"] = {s for s, r in msgs.items() if SENDER in _addresses(r, "from")}
    out["to"] = {s for s, r in msgs.items() if RECIPIENT in _addresses(r, "to", "cc")}
    out["singular"] = {s for s, t in texts.items() if re.search(r"\blobbyist\b", t, re.I)}
    out["plural"] = {s for s, t in texts.items() if re.search(r"\blobbyists\b", t, re.I)}
    return out


def _shas(store: Engine, **kw: object) -> set[str]:
    return {r.sha256 for r in search(store, POLICY, Filters(**kw), limit=None).records}  # type: ignore[arg-type]


def test_corpus_imports_and_searches_give_the_known_answers(store: Engine, corpus: Path,
                                                            expected: dict[str, set[str]]) -> None:
    report = archive.import_paths(store, [corpus], policy=POLICY)
    assert (report.imported, report.failed) == (len(expected["all"]), 0), report.failures[:5]
    assert archive.count(store, POLICY) == len(expected["all"]) == 6046
    for word in WORDS:
        assert _shas(store, text=word) == expected[word], word
    # word forms: each form finds the messages that only use the other one
    assert expected["singular"] - expected["plural"] and expected["plural"] - expected["singular"]
    assert _shas(store, text="lobbyists") == _shas(store, text="lobbyist") == expected["singular"] | expected["plural"]
    assert _shas(store, from_=SENDER) == expected["from"] and len(expected["from"]) > 100
    assert _shas(store, to=RECIPIENT) == expected["to"] and len(expected["to"]) > 100
    both = search(store, POLICY, Filters(text="razor", to="razor-users@example.sourceforge.net"), limit=10,
                  count=True)
    dates = [r.date for r in both.records]
    assert dates == sorted(dates, reverse=True) and both.count and both.count <= len(expected["razor"])
    again = archive.import_paths(store, [corpus], policy=POLICY)
    assert (again.imported, again.duplicate) == (0, 6046)
