"""Archive upkeep run by hand (`civicaup archive migrate-originals|compact`): packing originals that earlier
versions kept as one file each into the segment store, and compacting segments once dispositions have freed
space in them. The work itself is in civicaup.records.blobs; this module checks the options, runs it, and
writes each real run to the audit log (a dry run changes nothing and is not audited). Both are safe to stop
at any point and run again: an original's old copy is removed only after its new copy is fsync'ed, read back
with its hash checked, and recorded in the database.

Originals are shared by every policy that archived the message, so these runs belong to no city: their
audit entries go to the log's chain of entries without a policy.
"""
from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.records import blobs
from civicaup.stores import audit


def _who(actor: str | None) -> str:
    return actor.strip().lower() if actor and actor.strip() else "cli"


def _unwritable(exc: OSError) -> blobs.BlobError:
    return blobs.BlobError(f"archive maintenance stopped: {exc.strerror or exc}"
                           f"{f' ({exc.filename})' if exc.filename else ''}; no original was lost, "
                           "run it again once that is fixed")


def migrate_originals(engine: Engine, *, dry_run: bool, actor: str | None = None) -> dict[str, Any]:
    """Move every original of the earlier one-file layout into segments (or, with `dry_run`, say how many
    would move). Returns the summary: moved, already (a segment copy existed: only the file went), bytes,
    bad (files left in place, with the problem), dry_run, and the audit entry's id for a real run."""
    try:
        report = blobs.migrate_files(engine, dry_run=dry_run)
    except OSError as exc:
        raise _unwritable(exc) from None
    doc: dict[str, Any] = {**report.to_json(), "dry_run": dry_run, "audit": None}
    if not dry_run:
        entry = audit.append(engine, actor=_who(actor), action="archive-migrate-originals",
                             subject=f"{report.moved} originals moved into segments, {report.already} files "
                                     f"already there removed, {len(report.bad)} left in place",
                             detail={k: v for k, v in doc.items() if k != "audit"})
        doc["audit"] = entry.id
    return doc


def compact_segments(engine: Engine, *, dry_run: bool, threshold: float = blobs.COMPACT_THRESHOLD,
                     actor: str | None = None) -> dict[str, Any]:
    """Delete segments with no live record and rewrite those whose dead share is at least `threshold`
    (0 to 1; 0: any dead byte). Returns the summary (see blobs.CompactReport) with dry_run, threshold and
    the audit entry's id for a real run."""
    if not isinstance(threshold, (int, float)) or math.isnan(threshold) or not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be a share between 0 and 1, not {threshold}")
    try:
        report = blobs.compact(engine, threshold=float(threshold), dry_run=dry_run)
    except OSError as exc:
        raise _unwritable(exc) from None
    doc: dict[str, Any] = {**report.to_json(), "dry_run": dry_run, "threshold": float(threshold), "audit": None}
    if not dry_run:
        entry = audit.append(engine, actor=_who(actor), action="archive-compact",
                             subject=f"{len(report.rewritten)} segments rewritten, {len(report.deleted)} deleted, "
                                     f"{report.reclaimed} bytes reclaimed",
                             detail={k: v for k, v in doc.items() if k != "audit"})
        doc["audit"] = entry.id
    return doc


def problems(doc: dict[str, Any]) -> list[str]:
    """One line per original or segment a run had to leave as it was (a failed check: exit 1)."""
    return ([f"{b['ref']}: {b['problem']}" for b in doc.get("bad", [])]
            + [f"segment {d['segment']}: {d['problem']}" for d in doc.get("damaged", [])])
