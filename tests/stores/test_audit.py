"""The audit log is a hash chain: altering, removing, reordering or cutting off entries is detected."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, text, update

from civicaup.stores import audit
from civicaup.stores.db import open_store
from civicaup.stores.tables import audit as audit_table


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    for i in range(5):
        audit.append(engine, actor=f"user{i}@city.gov", action="release", subject=f"msg-{i}", policy="kirkwood-mo",
                     detail={"rule": "mail-all-users", "n": i})
    return engine


def test_intact_chain_verifies(store: Engine) -> None:
    assert audit.verify(store) == (5, None)


def test_altered_entry_is_named(store: Engine) -> None:
    with store.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.id == 3).values(actor="someone-else@city.gov"))
    n, problem = audit.verify(store)
    assert problem and "entry 3 was altered" in problem


def test_removed_entry_is_named(store: Engine) -> None:
    with store.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.id == 2))
    assert "entry 2 is missing" in (audit.verify(store)[1] or "")


def test_reordered_entries_are_detected(store: Engine) -> None:
    with store.begin() as conn:  # swap the contents of entries 2 and 4, ids kept
        rows = {r.id: r for r in conn.execute(audit_table.select().where(audit_table.c.id.in_([2, 4])))}
        for a, b in ((2, 4), (4, 2)):
            r = rows[b]
            conn.execute(text("UPDATE audit SET actor=:actor, subject=:subject, detail=:detail, prev_hash=:p, "
                              "hash=:h WHERE id=:id"),
                         dict(actor=r.actor, subject=r.subject, detail=r.detail, p=f"x{a}" + r.prev_hash[2:],
                              h=r.hash, id=a))
    assert audit.verify(store)[1] is not None


def test_cut_off_tail_is_detected_by_the_checkpoint(store: Engine) -> None:
    with store.begin() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.id >= 4))
    assert "missing" in (audit.verify(store)[1] or "")


def test_export_entries_carry_their_hashes(store: Engine) -> None:
    rows = [e.to_json() for e in audit.entries(store)]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))
    assert rows[0]["detail"] == {"n": 0, "rule": "mail-all-users"}
