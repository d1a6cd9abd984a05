"""Archive ids: ordered by date, so the newest matches are found by walking an index backwards.

An id is (Unix seconds << 20) + a 20-bit tiebreak taken from the message's hash; see
stores/records_tables.py.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from civicaup.stores.records_tables import archive_messages as M


def date_key(when: datetime) -> int:
    """The smallest message id for a moment: ids sort by date (see stores/records_tables.py)."""
    return int(when.timestamp()) << 20


def message_key(when: datetime, sha256: str) -> int:
    return date_key(when) | int(sha256[:5], 16)


def allocate(conn: Connection, wanted: list[int]) -> list[int]:
    """Free ids near the wanted ones: a clash (same second, same 20-bit tiebreak) moves to the next id."""
    result, used, taken = list(wanted), set(), set()  # type: ignore[var-annotated]
    pending = list(range(len(wanted)))
    while pending:
        cand = sorted({result[i] for i in pending} - taken)
        for start in range(0, len(cand), 900):
            taken |= set(conn.scalars(select(M.c.id).where(M.c.id.in_(cand[start:start + 900]))))
        again = []
        for i in pending:
            if result[i] in taken or result[i] in used:
                result[i] += 1
                again.append(i)
            else:
                used.add(result[i])
        pending = again
    return result
