"""Public-records requests: due date, responsive records, redacted production, originals untouched."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.detect import scan_text
from civicaup.records import archive, blobs
from civicaup.records.authz import NotPermittedError
from civicaup.records.export import export_request
from civicaup.records.requests import add_redaction, add_request, get_request, items, tag
from civicaup.records.search import Filters
from civicaup.stores import audit

from .conftest import POLICY
from .mails import mail, utc

CLERK = "jo.smith@kirkwoodmo.org"
SSN, CARD = "123-45-6789", "4111 1111 1111 1111"


def test_request_export_redacts_the_copy_and_leaves_the_original(store: Engine, tmp_path: Path) -> None:
    raws = {
        "pii": mail(sender="morgan.lee@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org", subject="Sidewalk claim",
                    body=f"Claimant SSN {SSN}, refund to card {CARD}. Call Ann Doe at home.",
                    date=utc(2026, 6, 1, 15)),
        "clean": mail(sender="dana.reed@kirkwoodmo.org", to="pat.jones@kirkwoodmo.org",
                      subject="Sidewalk repair schedule", body="Crews start on Elm Street Monday.",
                      date=utc(2026, 6, 2, 15)),
        "personnel": mail(sender="morgan.lee@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org",
                          subject="Sidewalk crew", body="This is a personnel matter: the crew lead was late. "
                                                        "Sidewalk work continues.", date=utc(2026, 6, 3, 15)),
        "privileged": mail(sender="sam.ortiz@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org",
                           subject="Sidewalk claim advice", body="Counsel's view on the sidewalk claim.",
                           date=utc(2026, 6, 4, 15)),
    }
    shas = {k: archive.add_message(store, v, policy=POLICY, decision=None, source="t").sha256 for k, v in raws.items()}
    assert {"pii:ssn", "pii:card"} <= {t for h in scan_text(raws["pii"].decode()) for t in h.tags}
    # Friday 2026-07-03 is the observed Independence Day holiday (4 July is a Saturday): received Thursday
    # 2 July, the three business days following are Mon 6, Tue 7, Wed 8 July.
    req = add_request(store, POLICY, requester="A. Reporter", contact="reporter@example.com",
                      description="Sidewalk complaints, June 2026", received="2026-07-02T10:15", kind="public",
                      actor=CLERK)
    assert req.due.isoformat() == "2026-07-08" and req.statute == "RSMo 610.023.3"
    with pytest.raises(NotPermittedError):
        tag(store, POLICY, req.id, refs=[], filters=Filters(text="sidewalk"), status="responsive", note="",
            actor="pat.jones@kirkwoodmo.org")
    assert tag(store, POLICY, req.id, refs=[], filters=Filters(text="sidewalk", since=utc(2026, 6, 1).date()),
               status="responsive", note="", actor=CLERK) == 4
    tag(store, POLICY, req.id, refs=[shas["privileged"][:12]], filters=None, status="withheld",
        note="attorney-client privilege, RSMo 610.021(1)", actor=CLERK)
    add_redaction(store, POLICY, req.id, ref=shas["pii"][:12], text="Ann Doe", reason="RSMo 610.021(14) privacy",
                  actor=CLERK)
    assert len(items(store, POLICY, req.id)) == 4
    out = tmp_path / "production.zip"
    report = export_request(store, POLICY, req.id, out, actor=CLERK)
    assert (report.released_in_full, report.redacted, report.withheld) == (1, 2, 1)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        top = f"request-{req.id}"
        originals = [n for n in names if "/originals/" in n]
        assert originals == [f"{top}/originals/{n:04d}-{shas['clean'][:12]}.eml"
                             for n in range(1, 5) if f"{n:04d}-{shas['clean'][:12]}" in " ".join(names)]
        assert zf.read(originals[0]) == raws["clean"]
        redacted = {n: zf.read(n).decode() for n in names if "/redacted/" in n}
        assert len(redacted) == 3  # the withheld record has no file
        pii_copy = next(t for n, t in redacted.items() if shas["pii"][:12] in n)
        digits = re.sub(r"\D", "", pii_copy)
        assert SSN not in pii_copy and "123456789" not in digits
        assert CARD not in pii_copy and "4111111111111111" not in digits
        assert "Ann Doe" not in pii_copy and "[REDACTED: SSN]" in pii_copy and "[REDACTED: payment card]" in pii_copy
        personnel_copy = next(t for n, t in redacted.items() if shas["personnel"][:12] in n)
        assert "crew lead was late" not in personnel_copy and "Sidewalk work continues" in personnel_copy
        index = list(csv.DictReader(io.StringIO(zf.read(f"{top}/index.csv").decode())))
        status = {r["ref"]: r["status"] for r in index}
        assert status[shas["privileged"][:12]] == "withheld" and status[shas["clean"][:12]] == "released in full"
        log = zf.read(f"{top}/production-log.txt").decode()
        assert "RSMo 610.023.3" in log and "2026-07-08" in log and CLERK in log
    # the archived originals are unchanged: same bytes, same hash, still verified on read
    for k, sha in shas.items():
        assert hashlib.sha256(blobs.get(sha, store)).hexdigest() == sha and blobs.get(sha, store) == raws[k]
    actions = [e.action for e in audit.entries(store)]
    for step in ("records-request-add", "records-request-tag", "records-request-redact", "records-request-export"):
        assert step in actions
    assert audit.verify(store)[1] is None
    assert get_request(store, POLICY, req.id).status == "open"
