"""`civicaup squid-helper` as Squid runs it: a process on pipes. SIGHUP reloads without dropping requests,
SIGTERM and end of input stop cleanly with every answer written and every audit entry stored."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from civicaup.channels.web.categories import CategoryIndex

from .conftest import CIVICAUP, LISTS, make_lists


class Proc:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen([CIVICAUP, "squid-helper", "--policy", "kirkwood-mo", *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, "CIVICAUP_HOME": str(home), **(env or {})})
        self.buf = b""

    def send(self, *lines: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(("\n".join(lines) + "\n").encode())
        self.p.stdin.flush()

    def read(self, n: int, timeout: float = 20) -> list[str]:
        assert self.p.stdout is not None
        fd = self.p.stdout.fileno()
        deadline = time.monotonic() + timeout
        while self.buf.count(b"\n") < n:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {n} answers, have {self.buf!r}"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, f"helper closed its output: {self.stderr()}"
                self.buf += chunk
        lines = self.buf.split(b"\n")
        self.buf = b"\n".join(lines[n:])
        return [x.decode() for x in lines[:n]]

    def ask(self, *lines: str) -> dict[str, str]:
        self.send(*lines)
        return dict(a.split(" ", 1) for a in self.read(len(lines)))

    def stderr(self) -> str:
        return self.p.stderr.read().decode() if self.p.stderr and self.p.poll() is not None else ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


@pytest.fixture
def proc(home: Path):  # type: ignore[no-untyped-def]
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        p = Proc(home, *args, env=env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def audit_entries(home: Path) -> list[dict]:
    r = subprocess.run([CIVICAUP, "audit", "export"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "CIVICAUP_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_answers_over_pipes_with_directory_roles(home: Path, proc) -> None:  # type: ignore[no-untyped-def]
    p = proc(env={"CIVICAUP_FAKE_NOW": "2026-03-03T10:00"})
    got = p.ask("4 http://badsite.example/ kim.nguyen 10.0.0.9 GET -", "9 http://badsite.example/ pat.jones 10.0.0.8 GET -",
                "2 http://shop.example/ - 10.0.0.7 GET -", "1 http://plain.example/ alex.brown 10.0.0.6 GET -")
    assert got["4"] == "OK log=log%3Aadult%20exempted-by%3Dlaw-enforcement"  # Police Detective
    assert got["9"].startswith("ERR message=Blocked%20by%20kirkwood-mo%20rule%20web-prohibited-sites")
    assert "lee.chan%40kirkwoodmo.org" in got["9"]  # the MIS Director, from the directory
    assert got["2"] == "OK log=log%3Ashopping" and got["1"] == "OK"
    p.p.stdin.close()  # end of input: a clean stop
    assert p.p.wait(30) == 0
    entries = [e for e in audit_entries(home) if e["action"].startswith("web-")]
    assert {(e["actor"], e["action"], e["subject"]) for e in entries} == {
        ("kim.nguyen@kirkwoodmo.org", "web-log", "badsite.example/"),
        ("pat.jones@kirkwoodmo.org", "web-block", "badsite.example/"),
        ("-", "web-log", "shop.example/")}


def test_sigterm_answers_what_was_read_and_loses_no_audit_entry(home: Path, proc) -> None:  # type: ignore[no-untyped-def]
    p = proc("--audit-interval", "30")  # nothing would reach the store before SIGTERM but for the final flush
    n = 500
    p.send(*[f"{i % 100} http://h{i}.badsite.example/p{i} pat.jones 10.0.0.1 GET -" for i in range(n)])
    assert len(p.read(n)) == n
    p.p.send_signal(signal.SIGTERM)
    assert p.p.wait(30) == 0
    blocks = [e for e in audit_entries(home) if e["action"] == "web-block"]
    assert len(blocks) == n and len({e["subject"] for e in blocks}) == n
    r = subprocess.run([CIVICAUP, "audit", "verify"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "CIVICAUP_HOME": str(home)})
    assert r.returncode == 0, r.stdout


def test_sighup_reloads_the_index_without_dropping_requests(home: Path, tmp_path: Path, proc) -> None:  # type: ignore[no-untyped-def]
    p = proc()
    assert p.ask("1 http://newly-bad.example/ - 10.0.0.1 GET -") == {"1": "OK"}
    lists = {**LISTS, "gambling": {"domains": "casino.example\nnewly-bad.example\n"}}
    CategoryIndex.build([make_lists(tmp_path / "ut1-v2", lists)], out=home / "categories.idx")
    sent = answered = 0
    p.p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    blocked = False
    while not blocked:
        assert time.monotonic() < deadline, "the new index was not picked up"
        p.send(f"{sent % 100} http://newly-bad.example/x{sent} - 10.0.0.1 GET -")
        sent += 1
        (answer,) = p.read(1)
        answered += 1
        blocked = "ERR message=" in answer
    assert sent == answered
    p.p.send_signal(signal.SIGTERM)
    assert p.p.wait(30) == 0
    assert "reloaded policy kirkwood-mo" in p.p.stderr.read().decode()


def test_sighup_keeps_serving_when_the_new_index_is_broken(home: Path, proc) -> None:  # type: ignore[no-untyped-def]
    p = proc()
    assert p.ask("1 http://casino.example/ - 10.0.0.1 GET -")["1"].startswith("ERR ")
    broken = home / "new.idx"
    broken.write_bytes(b"CAUPIDX\x00 broken")
    os.replace(broken, home / "categories.idx")  # replaced, as 'categories build' does (never truncated in place)
    p.p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    for i in range(5):
        assert p.ask(f"{i} http://casino.example/{i} - 10.0.0.1 GET -")[str(i)].startswith("ERR message=Blocked")
    p.p.send_signal(signal.SIGTERM)
    assert p.p.wait(30) == 0
    assert "keeping the loaded category index" in p.p.stderr.read().decode()


def test_unknown_policy_is_a_one_line_error(home: Path) -> None:
    r = subprocess.run([CIVICAUP, "squid-helper", "--policy", "nowhere"], capture_output=True, text=True,
                       input="", timeout=60, env={**os.environ, "CIVICAUP_HOME": str(home)})
    assert r.returncode == 2 and r.stderr.startswith("civicaup: unknown policy 'nowhere'")
    assert len(r.stderr.strip().splitlines()) == 1
