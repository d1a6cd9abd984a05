"""Records fixtures: the real SpamAssassin corpus unpacked once, stores on SQLite and on a real PostgreSQL.

The PostgreSQL server is Debian's (`apt-get install postgresql`, see .ci/apt-packages.txt), started once per
session on 127.0.0.1 with a free port, as the `postgres` user when the tests run as root; each test gets
its own database. Stopped by its PID at the end.
"""
from __future__ import annotations

import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine

from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people
from tests.pg_instance import PgInstance, PostgresUnavailable

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mail" / "spamassassin-public-corpus.tar.xz"
POLICY = "kirkwood-mo"
PACKS = Path(__file__).resolve().parents[2] / "src" / "civicaup" / "policy" / "packs"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 6,046 corpus messages, unpacked into a temporary directory (the shared folder is read-only)."""
    if not SHARED.is_file():
        pytest.skip(f"the SpamAssassin corpus is not at {SHARED}")
    dest = tmp_path_factory.mktemp("corpus")
    with tarfile.open(SHARED) as tf:
        tf.extractall(dest, filter="data")
    roots = [p for p in dest.rglob("easy-ham-1") if p.is_dir()]
    return roots[0].parent


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for this session (tests/pg_instance.py): yields "127.0.0.1:PORT" without a database."""
    try:
        pg = PgInstance(settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}).start()
    except PostgresUnavailable as exc:
        if "did not start" in str(exc):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield pg.address
    finally:
        pg.stop()  # fast shutdown: disconnects clients, stops by the postmaster's PID


def new_pg_database(server: str) -> str:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    host, port = server.split(":")
    with psycopg.connect(f"host={host} port={port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A fresh store (and data directory) on the backend under test, with Kirkwood's demo directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    if backend == "postgresql":
        url = new_pg_database(request.getfixturevalue("pg_server"))
    else:
        url = f"sqlite:///{home / 'civicaup.db'}"
    monkeypatch.setenv("CIVICAUP_DB_URL", url)
    engine = open_store(url)
    import_people(engine, get_pack(POLICY), PACKS / POLICY / "directory.csv")
    return engine
