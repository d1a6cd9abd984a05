"""Records fixtures: the real SpamAssassin corpus unpacked once, stores on SQLite and on a real PostgreSQL.

The PostgreSQL server is Debian's (`apt-get install postgresql`, see .ci/apt-packages.txt), started once per
session on 127.0.0.1 with a free port, as the `postgres` user when the tests run as root; each test gets
its own database. Stopped by its PID at the end.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine

from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people

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


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for this session: yields a base URL without a database name."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not (initdb and postgres):
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")
    as_user: dict[str, object] = {}
    root = os.geteuid() == 0
    if root:  # PostgreSQL refuses to run as root: run it as the postgres user (its own PID, no wrapper)
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}
    base = Path(tempfile.mkdtemp(prefix="civicaup-pg-"))
    if root:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data = base / "data"
    subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"],
                   check=True, capture_output=True, timeout=120, **as_user)  # type: ignore[arg-type]
    port = _free_port()
    log = open(base / "server.log", "wb")
    proc = subprocess.Popen([postgres, "-D", str(data), "-k", str(base), "-h", "127.0.0.1",
                             "-p", str(port), "-c", "fsync=off", "-c", "synchronous_commit=off",
                             "-c", "full_page_writes=off"], stdout=log, stderr=subprocess.STDOUT,
                            **as_user)  # type: ignore[arg-type]
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("PostgreSQL did not start: " + (base / "server.log").read_text(errors="replace")[-500:])
            time.sleep(0.2)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients, stops by the postmaster's PID
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


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
