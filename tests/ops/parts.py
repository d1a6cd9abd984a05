"""A private installation for the operations tests: a data directory of its own, the CLI as a subprocess with a
clean environment, and the long-running parts (serve, milter, relay) started and stopped as processes."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from civicaup.policy.registry import BUILTIN

CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
KIRKWOOD_PEOPLE = BUILTIN / "kirkwood-mo" / "directory.csv"
LISTS = {"adult": {"domains": "blocked.example\n"}, "gambling": {"domains": "casino.example\n"}}
BROADCAST = (b"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: all-users@kirkwoodmo.org\r\nSubject: Picnic\r\n\r\n"
             b"The picnic is Saturday.\r\n")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any civicaup or Prometheus setting, with CIVICAUP_HOME = home."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("CIVICAUP_") and k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env["CIVICAUP_HOME"] = str(home)
    env.update(extra)
    return env


@dataclass
class Install:
    home: Path
    env: dict[str, str]

    def cli(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([CIVICAUP, *args], input=input, capture_output=True, env={**self.env, **(env or {})},
                           timeout=timeout)
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8", "replace"),
                                           r.stderr.decode("utf-8", "replace"))

    def ok(self, *args: str, **kw: Any) -> str:
        r = self.cli(*args, **kw)
        assert r.returncode == 0, (args, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        return r.stdout


def make_install(root: Path, *, index: bool = True, people: bool = True) -> Install:
    """A data directory with a small category index (blocked.example is adult) and Kirkwood's people."""
    home = root / "home"
    home.mkdir(parents=True)
    inst = Install(home, clean_env(home))
    if index:
        lists = root / "ut1"
        for category, files in LISTS.items():
            (lists / category).mkdir(parents=True)
            for name, text in files.items():
                (lists / category / name).write_text(text, encoding="utf-8")
        inst.ok("categories", "build", str(lists))
    if people:
        inst.ok("directory", "import", str(KIRKWOOD_PEOPLE), "--policy", "kirkwood-mo")
    return inst


class Running:
    """A long-running civicaup command; ``first_line`` is what it printed first on stdout (where it listens)."""

    def __init__(self, inst: Install, *args: str, ready: str, env: dict[str, str] | None = None,
                 timeout: float = 90) -> None:
        self.proc = subprocess.Popen([CIVICAUP, *args], env={**inst.env, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready_now, _, _ = select.select([self.proc.stdout], [], [], timeout)
        self.first_line = self.proc.stdout.readline().decode() if ready_now else ""
        if ready not in self.first_line:
            self.stop()
            raise AssertionError(f"{args[0]} did not start: {self.first_line!r} {self.stderr[-2000:]}")
        self.stderr = ""

    def port(self) -> int:
        m = re.search(r"127\.0\.0\.1:(\d+)", self.first_line)
        assert m, self.first_line
        return int(m.group(1))

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, wait, keep what it wrote on stderr; returns the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.stderr = err.decode("utf-8", "replace")
        return self.proc.returncode


def wait_for(predicate: Any, timeout: float = 20.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
