"""The production for a records request, as one zip:

    request-<id>/index.csv            one row per responsive record: what was produced, how, and why not
    request-<id>/production-log.txt   the request, its deadline and statute, who produced it when, each record
    request-<id>/originals/*.eml      the original bytes, for records released in full (hash-verified)
    request-<id>/redacted/*.txt       the produced copy of every released record, redacted where needed

A record with any redaction is released only as its redacted copy; a withheld record only as a row in
the index. Originals in the archive are read (and their hashes checked), never changed.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.records.archive import original
from civicaup.records.authz import require
from civicaup.records.redact import produce
from civicaup.records.requests import get_request, items, redactions
from civicaup.stores import audit


@dataclass(frozen=True)
class ExportReport:
    path: Path
    sha256: str
    released_in_full: int
    redacted: int
    withheld: int
    unavailable: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "released_in_full": self.released_in_full,
                "redacted": self.redacted, "withheld": self.withheld, "unavailable": self.unavailable}


def export_request(engine: Engine, policy: str, request_id: int, out: Path, *, actor: str) -> ExportReport:
    person = require(engine, policy, actor, action="export a records production")
    req = get_request(engine, policy, request_id)
    found = items(engine, policy, request_id)
    if not found:
        raise InputError(f"request {request_id} has no responsive records tagged yet")
    manual = redactions(engine, request_id)
    now = datetime.now(timezone.utc)
    top = f"request-{request_id}"
    index = io.StringIO()
    writer = csv.writer(index)
    writer.writerow(["doc", "ref", "sha256", "date", "from", "to", "subject", "series", "status", "redactions",
                     "review", "files"])
    log = [f"Production for records request {req.id} ({policy})",
           f"Requester: {req.requester} {('<' + req.contact + '>') if req.contact else ''}".rstrip(),
           f"Description: {req.description}", f"Received: {req.received} ({req.kind} request, {req.state})",
           f"Due: {req.due.isoformat() if req.due else 'no fixed day set by law'} - {req.statute}",
           f"Produced: {now.isoformat()} by {person.email}", "", "Records:"]
    counts = {"full": 0, "redacted": 0, "withheld": 0, "unavailable": 0}
    out = out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, it in enumerate(found, 1):
            doc = f"{n:04d}"
            rec = it.record
            if rec is None:
                counts["unavailable"] += 1
                writer.writerow([doc, it.sha256[:12], it.sha256, "", "", "", "", "", "unavailable", "", "", ""])
                log.append(f"  {doc} {it.sha256[:12]} unavailable (no longer in the archive)")
                continue
            base = [doc, rec.ref, rec.sha256, rec.date.isoformat(), rec.from_addr, rec.to, rec.subject, rec.series]
            if it.status == "withheld":
                counts["withheld"] += 1
                writer.writerow([*base, "withheld", it.note, "", ""])
                log.append(f"  {doc} {rec.ref} withheld: {it.note or 'no reason given'}")
                continue
            raw = original(rec, engine)
            produced = produce(rec, raw, manual.get(rec.sha256, []))
            files = [f"redacted/{doc}-{rec.ref}.txt"]
            zf.writestr(f"{top}/{files[0]}", produced.text)
            if produced.redactions:
                counts["redacted"] += 1
                status = "released with redactions"
            else:
                counts["full"] += 1
                status = "released in full"
                files.append(f"originals/{doc}-{rec.ref}.eml")
                zf.writestr(f"{top}/{files[1]}", raw)
            labels = "; ".join(sorted({r.label for r in produced.redactions}))
            writer.writerow([*base, status, labels, " | ".join(produced.review), " ".join(files)])
            log.append(f"  {doc} {rec.ref} {status}" + (f" ({len(produced.redactions)} redactions: {labels})"
                                                        if produced.redactions else "") +
                       (f"; for review: {' | '.join(produced.review)}" if produced.review else ""))
        log += ["", f"Released in full: {counts['full']}; with redactions: {counts['redacted']}; "
                    f"withheld: {counts['withheld']}; unavailable: {counts['unavailable']}",
                "Originals were read from the archive and verified against their SHA-256; none was changed."]
        zf.writestr(f"{top}/index.csv", index.getvalue())
        zf.writestr(f"{top}/production-log.txt", "\n".join(log) + "\n")
    os.replace(tmp, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    audit.append(engine, actor=person.email, action="records-request-export", subject=f"request {request_id}",
                 policy=policy, detail={"file": str(out), "sha256": digest, **counts})
    return ExportReport(out, digest, counts["full"], counts["redacted"], counts["withheld"], counts["unavailable"])
