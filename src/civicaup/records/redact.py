"""The produced copy of a record: its headers and text, with exempt data redacted. Originals are never
touched; redaction works on a new text.

Redacted automatically: personal numbers (SSN, payment card, bank account, driver's licence) exactly;
medical (PHI) and personnel details as the whole sentence around what the detectors found, since the
detail lies around the trigger phrase. Privileged-communication markers are not redacted but reported, so
the clerk decides whether to withhold the record. Manual redactions remove every occurrence of a text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from civicaup.channels.mail.mime import parse_mail
from civicaup.detect import scan_text
from civicaup.records.archive import Record
from civicaup.records.extract import body_text

SENTENCE_CAP = 400
_END = re.compile(r"[.!?\n]")
_PII_LABELS = {"pii:ssn": "SSN", "pii:card": "payment card", "pii:bank-account": "bank account",
               "pii:drivers-licence": "driver's licence"}


@dataclass(frozen=True)
class Redaction:
    start: int
    end: int
    label: str  # what it was, e.g. "SSN", "medical information", "manual: <reason>"


@dataclass(frozen=True)
class Produced:
    text: str  # the redacted copy
    redactions: tuple[Redaction, ...]
    review: tuple[str, ...]  # things for the clerk to look at (privilege markers)


def document(record: Record, raw: bytes) -> str:
    """The copy a requester would read: main headers, then the text of the message and its attachments."""
    mail = parse_mail(raw)
    lines = [f"Date: {mail.header('date')[0] if mail.header('date') else record.date.isoformat()}",
             f"From: {', '.join(a.email for a in mail.from_) or record.from_addr}",
             f"To: {', '.join(a.email for a in mail.to)}"]
    if mail.cc:
        lines.append(f"Cc: {', '.join(a.email for a in mail.cc)}")
    lines.append(f"Subject: {mail.subject}")
    if record.attachments:
        lines.append(f"Attachments: {', '.join(record.attachments)}")
    return "\n".join(lines) + "\n\n" + body_text(mail) + "\n"


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    left = max(0, start - SENTENCE_CAP)
    ends = [m.end() for m in _END.finditer(text, left, start)]
    s = ends[-1] if ends else left
    m = _END.search(text, end, min(len(text), end + SENTENCE_CAP))
    e = m.end() if m else min(len(text), end + SENTENCE_CAP)
    while s < e and text[s].isspace():
        s += 1
    return s, e


def _spans(text: str, manual: list[tuple[str, str]]) -> tuple[list[Redaction], list[str]]:
    spans: list[Redaction] = []
    review: list[str] = []
    for hit in scan_text(text, where="body"):
        pii = next((label for tag, label in _PII_LABELS.items() if tag in hit.tags), None)
        if hit.category == "pii" and pii:
            spans.append(Redaction(hit.start, hit.end, pii))
        elif hit.category == "phi":
            spans.append(Redaction(*_sentence(text, hit.start, hit.end), "medical information"))
        elif hit.category == "confidential" and "confidential:personnel" in hit.tags:
            spans.append(Redaction(*_sentence(text, hit.start, hit.end), "personnel matter"))
        elif hit.category == "confidential":
            review.append(f"{', '.join(sorted(hit.tags))}: {hit.evidence}")
    for needle, reason in manual:
        for m in re.finditer(re.escape(needle), text, flags=re.IGNORECASE):
            spans.append(Redaction(m.start(), m.end(), f"manual: {reason}"))
    return spans, review


def _merge(spans: list[Redaction]) -> list[Redaction]:
    merged: list[Redaction] = []
    for s in sorted(spans, key=lambda r: (r.start, -r.end)):
        if merged and s.start <= merged[-1].end:
            last = merged[-1]
            labels = last.label if s.label in last.label.split("; ") else f"{last.label}; {s.label}"
            merged[-1] = Redaction(last.start, max(last.end, s.end), labels)
        else:
            merged.append(s)
    return merged


def produce(record: Record, raw: bytes, manual: list[tuple[str, str]] = ()) -> Produced:  # type: ignore[assignment]
    text = document(record, raw)
    spans, review = _spans(text, list(manual))
    merged = _merge(spans)
    out, pos = [], 0
    for r in merged:
        out.append(text[pos:r.start])
        out.append(f"[REDACTED: {r.label}]")
        pos = r.end
    out.append(text[pos:])
    return Produced("".join(out), tuple(merged), tuple(dict.fromkeys(review)))
