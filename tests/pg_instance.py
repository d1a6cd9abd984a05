"""A private PostgreSQL from Debian's packages on 127.0.0.1, for the test fixtures and the benchmarks in bench/.

initdb into a temporary folder, the postmaster on a free loopback port with the settings the caller gives,
run as the `postgres` user when we are root (PostgreSQL refuses root; no wrapper, so the PID we hold is the
postmaster's), and stopped by that PID with a fast shutdown.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be run here, or did not start; the message says why."""


def pg_binary(name: str) -> str | None:
    """initdb/postgres on PATH or under Debian's /usr/lib/postgresql/<version>/bin (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgInstance:
    """One server: `start()`, then `url(database)` / `create_database(name)`, then `stop()`."""
    settings: dict[str, str] = field(default_factory=dict)  # -c NAME=VALUE for the postmaster
    prefix: str = "civicaup-pg-"
    base: Path = field(init=False)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> "PgInstance":
        initdb, postgres = pg_binary("initdb"), pg_binary("postgres")
        if not (initdb and postgres):
            raise PostgresUnavailable("PostgreSQL binaries not found (apt-get install postgresql)")
        as_user: dict[str, object] = {}
        self.base = Path(tempfile.mkdtemp(prefix=self.prefix))
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user to run PostgreSQL as")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}
        data = self.base / "data"
        subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"],
                       check=True, capture_output=True, timeout=120, **as_user)  # type: ignore[arg-type]
        self.port = free_port()
        opts = [a for k, v in self.settings.items() for a in ("-c", f"{k}={v}")]
        with open(self.base / "server.log", "wb") as log:
            self.proc = subprocess.Popen([postgres, "-D", str(data), "-k", str(self.base), "-h", "127.0.0.1",
                                          "-p", str(self.port), *opts], stdout=log, stderr=subprocess.STDOUT,
                                         **as_user)  # type: ignore[arg-type]
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.conninfo(), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.base / "server.log").read_text(errors="replace")[-500:]
                    self.stop()
                    raise PostgresUnavailable("PostgreSQL did not start: " + tail)
                time.sleep(0.2)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.address}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown of the postmaster by its PID, then remove its folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)
