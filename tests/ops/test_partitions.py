"""League partitions (migration 0007, civicaup.stores.partitions) on a real PostgreSQL, and the per-city audit
chains on both databases: rows land in their city's month partition, made on demand; a row nobody made a
partition for lands in a default partition and moves when its partition is made; a filled 0006 store upgrades
(and downgrades) without losing a row; searches read only the city's partitions; concurrent writers keep
every chain intact."""
from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from civicaup.policy.registry import BUILTIN, get_pack
from civicaup.stores import audit, partitions
from civicaup.stores.db import alembic_config, open_store
from civicaup.stores.directory import import_people

from .conftest import new_pg_database

CITIES = ("kirkwood-mo", "rosemount-mn")
MAIL = (b"From: Dana Reed <dana.reed@kirkwoodmo.org>\r\nTo: pat.jones@kirkwoodmo.org\r\n"
        b"Subject: Lobbyist meeting {n}\r\nMessage-ID: <m{n}@kirkwoodmo.org>\r\nDate: {date}\r\n\r\n"
        b"The lobbyists from the county asked about the zoning variance, item {n}.\r\n")


def mail(n: int, date: str = "Tue, 03 Mar 2026 10:00:00 -0600") -> bytes:
    return MAIL.replace(b"{n}", str(n).encode()).replace(b"{date}", date.encode())


@pytest.fixture
def pg(pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CIVICAUP_DB_URL", raising=False)
    return new_pg_database(pg_server)


@pytest.fixture
def store(pg: str) -> Engine:
    engine = open_store(pg)
    for city in CITIES:
        import_people(engine, get_pack(city), BUILTIN / city / "directory.csv")
    return engine


def where(engine: Engine, table: str, condition: str = "true", **params: object) -> list[str]:
    """The partition each matching row is in."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(f"SELECT tableoid::regclass::text FROM {table} WHERE {condition} "
                                                "ORDER BY 1"), params)]


def this_month() -> str:
    return f"{datetime.now(timezone.utc):%Y%m}"


# ---------------------------------------------------------------- layout and on-demand partitions

def test_the_big_tables_are_partitioned_by_city_then_month(store: Engine) -> None:
    with store.connect() as conn:
        kinds = dict(conn.execute(text("SELECT c.relname, p.partstrat FROM pg_partitioned_table p "
                                       "JOIN pg_class c ON c.oid = p.partrelid")).all())
    for table in ("audit", "web_usage", "archive_messages", "archive_fts"):
        assert kinds[table] == "l", table  # LIST by city at the top
    audit.append(store, actor="cli", action="directory-import", subject="x", policy="kirkwood-mo")
    with store.connect() as conn:
        city = partitions.cities(conn, "audit")["kirkwood-mo"]
        leaves = partitions.children(conn, city)
        strategy = conn.execute(text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = "
                                     "to_regclass(:c)"), {"c": city}).scalar_one()
    assert strategy == "r"  # then RANGE by month
    now = datetime.now(timezone.utc)
    nxt = partitions.next_month(partitions.month_of(now))
    assert {f"{city}_h{this_month()}", f"{city}_m{this_month()}", f"{city}_m{nxt:%Y%m}", f"{city}_d"} == set(leaves)


def test_each_citys_entries_go_to_its_own_month_partition(store: Engine) -> None:
    for i in range(3):
        for city in CITIES:
            audit.append(store, actor="cli", action="test", subject=f"entry {i}", policy=city)
    for city in CITIES:
        month = partitions.month_of(datetime.now(timezone.utc))
        assert set(where(store, "audit", "chain = :c", c=city)) == {partitions.month_table("audit", city, month)}
        assert audit.verify(store, city) == (3, None)
    assert audit.verify(store) == (6, None)


def test_a_month_nobody_made_goes_to_the_default_then_moves_when_made(store: Engine) -> None:
    far = datetime.now(timezone.utc).replace(day=15) + timedelta(days=400)  # beyond what writers create
    audit.append_many(store, [audit.Pending(far, "cli", "test", "far", "kirkwood-mo", {})])
    city = partitions.city_table("audit", "kirkwood-mo")
    assert where(store, "audit", "subject = 'far'") == [f"{city}_d"]
    with store.begin() as conn:
        partitions.create_month(conn, "audit", "kirkwood-mo", partitions.month_of(far))
    assert where(store, "audit", "subject = 'far'") == [partitions.month_table("audit", "kirkwood-mo",
                                                                                partitions.month_of(far))]
    assert audit.verify(store, "kirkwood-mo") == (1, None)


def test_a_city_without_partitions_lands_in_the_default_then_moves(store: Engine) -> None:
    now = datetime.now(timezone.utc)
    with store.begin() as conn:  # a writer that did not ask for partitions (an older process, a failed DDL)
        conn.execute(text("INSERT INTO web_usage (policy, line_hash, at, elapsed_ms, client, login, email, department,"
                          " status, bytes, method, host, url, category, categories, work_time) VALUES ('new-city-ia',"
                          " 'h1', :at, 1, '10.0.0.1', '', '', '', 'TCP_MISS/200', 10, 'GET', 'example.org', "
                          "'http://example.org/', '', '', true)"), {"at": now})
    assert where(store, "web_usage") == ["web_usage__default"]
    partitions.ensure_partitions(store, "web_usage", "new-city-ia", [now])
    assert where(store, "web_usage") == [partitions.month_table("web_usage", "new-city-ia", partitions.month_of(now))]


def test_history_and_far_future_need_no_partition(store: Engine) -> None:
    old = datetime(2002, 8, 1, tzinfo=timezone.utc)  # an import of old mail: the city's history partition
    partitions.ensure_partitions(store, "audit", "rosemount-mn", [old, old + timedelta(days=40)])
    audit.append_many(store, [audit.Pending(old, "cli", "test", "old", "rosemount-mn", {})])
    history = f"{partitions.city_table('audit', 'rosemount-mn')}_h{this_month()}"
    assert where(store, "audit", "subject = 'old'") == [history]
    with store.connect() as conn:
        assert not any("_m2002" in n for n in partitions.children(conn, partitions.city_table("audit", "rosemount-mn")))


def test_a_citys_search_reads_only_its_own_partitions(store: Engine) -> None:
    from zoneinfo import ZoneInfo

    from civicaup.records import archive
    from civicaup.records.search import Filters, plan, search

    for n, city in enumerate(CITIES * 2):
        archive.add_message(store, mail(n), policy=city, decision=None, source="test")
    assert search(store, "kirkwood-mo", Filters(text="lobbyist")).to_json()["returned"] == 2
    assert {r.policy for r in search(store, "rosemount-mn", Filters(text="lobbyists")).records} == {"rosemount-mn"}
    assert set(where(store, "archive_messages", "policy = 'kirkwood-mo'")) == {
        f"{partitions.city_table('archive_messages', 'kirkwood-mo')}_h{this_month()}"}  # March 2026: history
    for filters in (Filters(text="lobbyist"), Filters(from_="dana.reed@kirkwoodmo.org"), Filters(text="zoning",
                                                                                                 since=None)):
        with store.connect() as conn:
            _, select_ids, params, _ = plan(conn, filters, "kirkwood-mo", ZoneInfo("America/Chicago"))
            [doc] = conn.execute(text(f"EXPLAIN (FORMAT JSON) {select_ids} LIMIT 51"), params).scalar_one()
        names = set()

        def walk(node: dict[str, object]) -> None:
            if "Relation Name" in node:
                names.add(str(node["Relation Name"]))
            for child in node.get("Plans", []):  # type: ignore[union-attr]
                walk(child)  # type: ignore[arg-type]

        walk(doc["Plan"])
        city_parts = {n for n in names if "__" in n}
        assert city_parts and all("__kirkwood_mo_" in n for n in city_parts), names
        assert not any(n.endswith("__default") for n in names), names


def test_one_message_imported_by_racing_writers_is_one_record(store: Engine) -> None:
    import threading

    from civicaup.records import archive

    raw = (b"From: pat.jones@kirkwoodmo.org\r\nTo: lee.chan@kirkwoodmo.org\r\nSubject: no date\r\n\r\n"
           b"No Date header.\r\n")
    gate = threading.Barrier(4)
    errors: list[BaseException] = []

    def one() -> None:
        gate.wait()
        try:
            archive.add_message(store, raw, policy="kirkwood-mo", decision=None, source="race")
        except Exception as exc:  # noqa: BLE001 - a writer that lost a race may fail (the MTA retries)
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with store.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM archive_messages WHERE policy = 'kirkwood-mo' AND subject = "
                              "'no date'")).scalar_one()
    assert n == 1 and len(errors) < 4


# ---------------------------------------------------------------- concurrent writers, both databases

def _appender(url: str, city: str, n: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    for i in range(n):
        audit.append(engine, actor=f"writer-{city}", action="test", subject=f"{city} {i}", policy=city)
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_writers_of_several_chains_keep_every_chain_intact(backend: str, request: pytest.FixtureRequest,
                                                                      tmp_path: Path) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("pg")
    else:
        request.getfixturevalue("monkeypatch").setenv("CIVICAUP_HOME", str(tmp_path / "home"))
        url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(url, city, 40)) for city in CITIES for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    for city in CITIES:
        seqs = [e.seq for e in audit.entries(engine, city)]
        assert seqs == list(range(1, 121))
        assert audit.verify(engine, city) == (120, None)
    assert audit.verify(engine) == (240, None)


# ---------------------------------------------------------------- upgrading a filled 0006 store

def _fill_0006(url: str, home: Path) -> dict[str, int]:
    """A 0006 store as 0006's code left it: one audit chain across two cities (and its checkpoint file),
    archived messages with their index entries, web usage rows."""
    command.upgrade(alembic_config(url), "0006")
    engine = create_engine(url, poolclass=NullPool)
    pg = engine.dialect.name == "postgresql"
    prev, at0 = audit.GENESIS, datetime(2026, 2, 27, 9, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        for i in range(1, 9):
            at, policy = at0 + timedelta(days=i), CITIES[i % 2]
            detail = json.dumps({"n": i}, separators=(",", ":"))
            h = audit.entry_hash(i, at, "clerk@city.gov", "archive-read", f"record {i}", policy, detail, prev)
            conn.execute(text("INSERT INTO audit (id, at, actor, action, subject, policy, detail, prev_hash, hash) "
                              "VALUES (:i, :at, 'clerk@city.gov', 'archive-read', :s, :p, :d, :prev, :h)"),
                         {"i": i, "at": at, "s": f"record {i}", "p": policy, "d": detail, "prev": prev, "h": h})
            prev = h
        home.mkdir(parents=True, exist_ok=True)
        (home / "audit.head").write_text(f"8 {prev}\n")
        for i in range(1, 7):
            policy = CITIES[i % 2]
            when = at0 - timedelta(days=40 * i)
            mid = (int(when.timestamp()) << 20) + i
            conn.execute(text(
                "INSERT INTO archive_messages (id, policy, sha256, message_id, date, date_source, from_addr, from_name,"
                " to_addrs, cc_addrs, subject, attachments, size, source, series, series_by, imported_at) VALUES "
                "(:id, :p, :sha, '', :d, 'header', 'a@b.org', '', '', '', :s, '', 10, 'test', 'general', '', :d)"),
                {"id": mid, "p": policy, "sha": f"{i:064x}", "d": when, "s": f"Lobbyist visit {i}"})
            if pg:
                conn.execute(text("INSERT INTO archive_fts (id, tsv) VALUES (:id, to_tsvector('english', :s))"),
                             {"id": mid, "s": f"Lobbyists visit {i}"})
            conn.execute(text("INSERT INTO archive_addresses (message, kind, address, domain) VALUES "
                              "(:id, 'from', 'a@b.org', 'org.b')"), {"id": mid})
            conn.execute(text(
                "INSERT INTO web_usage (policy, line_hash, at, elapsed_ms, client, login, email, department, status, "
                "bytes, method, host, url, category, categories, work_time) VALUES (:p, :h, :at, 1, '10.0.0.1', '', "
                "'', '', 'TCP_MISS/200', 10, 'GET', 'example.org', 'http://example.org/', '', '', true)"),
                {"p": policy, "h": f"line{i}", "at": when})
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("audit", "archive_messages", "archive_addresses", "web_usage")}
    engine.dispose()
    return counts


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("audit", "archive_messages", "archive_addresses", "web_usage")}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_filled_0006_store_upgrades_without_losing_a_row(backend: str, request: pytest.FixtureRequest,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    url = request.getfixturevalue("pg") if backend == "postgresql" else f"sqlite:///{tmp_path / 'store.db'}"
    before = _fill_0006(url, home)
    engine = open_store(url)  # migrates to head
    assert _counts(engine) == before
    assert audit.verify(engine) == (8, None)  # the single chain of 0006 is the chain "", seq = id
    assert [e.seq for e in audit.entries(engine, "")] == list(range(1, 9))
    audit.append(engine, actor="cli", action="test", subject="after", policy="kirkwood-mo")
    assert audit.verify(engine, "kirkwood-mo") == (1, None) and audit.verify(engine) == (9, None)
    if backend == "postgresql":
        from civicaup.records.search import Filters, search

        assert set(where(engine, "audit", "chain = ''")) == {f"{partitions.city_table('audit', '')}_h{this_month()}"}
        for city in CITIES:
            found = search(engine, city, Filters(text="lobbyist"), limit=None).records
            assert len(found) == 3 and {r.policy for r in found} == {city}
            assert set(where(engine, "archive_fts", "policy = :c", c=city)) == {
                f"{partitions.city_table('archive_fts', city)}_h{this_month()}"}
            assert len(where(engine, "web_usage", "policy = :c", c=city)) == 3
        with engine.connect() as conn:  # sequences stay global and 64-bit
            assert conn.execute(text("SELECT data_type FROM information_schema.sequences WHERE sequence_name = "
                                     "'audit_id_seq'")).scalar_one() == "bigint"
    # and back: every row is still there in 0006's tables
    command.downgrade(alembic_config(url), "0006")
    plain = create_engine(url, poolclass=NullPool)
    try:
        assert _counts(plain) == {**before, "audit": 9}
        with plain.connect() as conn:
            rows = conn.execute(text("SELECT id, hash FROM audit ORDER BY id")).all()
        assert [r.id for r in rows] == list(range(1, 10))
    finally:
        plain.dispose()
