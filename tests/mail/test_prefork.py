"""`civicaup milter --processes N`: a supervisor and N processes on one socket (civicaup.channels.prefork).

The supervisor's own behaviour is tested on a small program (prefork_program.py) whose children answer TCP
connections with their pid: SIGKILL of a child -> another takes its place; SIGHUP -> the supervisor reloads, then
every child sees the signal; SIGTERM -> every child exits, the supervisor cleans up and exits 0; children that keep
dying -> exit 1 instead of forking in a loop. Then the real milter with two processes behind a real Postfix: both
processes decide mail, and killing one in the middle of a batch loses and duplicates nothing.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller

from civicaup.policy.registry import BUILTIN

from .conftest import Sink
from .postfix_instance import PostfixInstance, free_port, postfix_missing

CIVICAUP = str(Path(sys.executable).parent / "civicaup")
PROGRAM = Path(__file__).with_name("prefork_program.py")


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _wait(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _ask(port: int) -> tuple[int, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        pid, hups = s.makefile().readline().split()
    return int(pid), int(hups)


@pytest.fixture
def program(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    env = dict(os.environ, CIVICAUP_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([sys.executable, str(PROGRAM), str(tmp_path), "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert _wait(lambda: (tmp_path / "port").exists() and len(_children(proc.pid)) == 2)
        yield proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in _children(proc.pid):  # pragma: no cover - only if the supervisor was killed above
            os.kill(pid, signal.SIGKILL)


def test_a_killed_process_is_replaced_and_the_socket_keeps_answering(program) -> None:  # type: ignore[no-untyped-def]
    proc, where = program
    port = int((where / "port").read_text())
    before = _children(proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert _wait(lambda: len(_children(proc.pid)) == 2 and victim not in _children(proc.pid))
    after = _children(proc.pid)
    assert after - before and before - after == {victim}
    seen = {_ask(port)[0] for _ in range(40)}
    assert seen <= after and victim not in seen


def test_sighup_reloads_in_the_supervisor_then_reaches_every_process(program) -> None:  # type: ignore[no-untyped-def]
    proc, where = program
    port = int((where / "port").read_text())
    os.kill(proc.pid, signal.SIGHUP)
    assert _wait(lambda: (where / "reloads").exists())
    assert (where / "reloads").read_text() == "reload\n"
    answers: dict[int, int] = {}
    assert _wait(lambda: answers.update([_ask(port)]) or (len(answers) == 2 and set(answers.values()) == {1}))
    assert proc.poll() is None


def test_sigterm_stops_every_process_then_cleans_up(program) -> None:  # type: ignore[no-untyped-def]
    proc, where = program
    children = _children(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(20) == 0
    assert (where / "cleaned").read_text() == "yes"
    assert not any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in children)
    assert proc.stdout is not None and proc.stdout.read().decode() == "test: listening\n"


def test_processes_that_keep_dying_stop_the_supervisor_with_status_1(tmp_path: Path) -> None:
    env = dict(os.environ, CIVICAUP_HOME=str(tmp_path / "home"))
    r = subprocess.run([sys.executable, str(PROGRAM), str(tmp_path), "2", "crash"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert "died within 60 s; stopping the rest" in r.stderr
    assert (tmp_path / "cleaned").read_text() == "yes"


@pytest.mark.parametrize(("args", "message"), [
    (["--processes", "0"], "--processes must be at least 1"),
    (["--processes", "2", "--workers", "1"], "--processes and --workers: give one"),
])
@pytest.mark.parametrize("command", ["milter", "relay"])
def test_bad_process_counts_are_refused_in_one_line(tmp_path: Path, command: str, args: list[str],
                                                     message: str) -> None:
    env = dict(os.environ, CIVICAUP_HOME=str(tmp_path))
    r = subprocess.run([CIVICAUP, command, "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0", *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr


def test_the_process_count_comes_from_the_configuration_unless_given(tmp_path: Path) -> None:
    env = dict(os.environ, CIVICAUP_HOME=str(tmp_path), CIVICAUP_MAIL__PROCESSES="3")
    for args, expected in (([], "3 processes"), (["--processes", "2"], "2 processes")):
        with _running([CIVICAUP, "milter", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{free_port()}",
                       *args], env) as proc:
            assert proc.stdout is not None
            assert expected in proc.stdout.readline().decode()
            assert _wait(lambda: len(_children(proc.pid)) == int(expected[0]))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0


def test_the_relay_with_two_processes_relays_decides_and_stops(
        tmp_path: Path, sink) -> None:  # type: ignore[no-untyped-def]
    receiver, hop = sink
    env = {k: v for k, v in os.environ.items() if k not in ("CIVICAUP_DB_URL", "CIVICAUP_MAIL_NEXT_HOP")}
    env["CIVICAUP_HOME"] = str(tmp_path)
    port = free_port()
    with _running([CIVICAUP, "relay", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{port}",
                   "--next-hop", f"127.0.0.1:{hop}", "--processes", "2"], env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"listening on 127.0.0.1:{port}" in line and "2 processes" in line, line
        assert len(_children(proc.pid)) == 2
        token = f"relay-{uuid.uuid4().hex[:8]}"
        for i in range(6):
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                assert smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                                     _message(f"{token}-{i}", "The agenda for Monday.")) == {}
            with pytest.raises(smtplib.SMTPDataError) as refused, \
                    smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                              _message(f"{token}-rude-{i}", "Tell that motherfucker to get the fuck out."))
            assert refused.value.smtp_code == 550
        got = receiver.wait(6)
        assert sorted(m[2].split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in got) == \
            sorted(f"{token}-{i}" for i in range(6))
        assert all(b"X-Civicaup-Decision: allow" in m[2] for m in got)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


@contextlib.contextmanager
def _running(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A command started by the test, killed by its PID if the test left it running."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------- the milter, two processes, a real Postfix

postfix = pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing()))


class TwoProcessWorld:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("CIVICAUP_DB_URL", "CIVICAUP_MAIL_NEXT_HOP")}
        self.env["CIVICAUP_HOME"] = str(root / "home")
        self.sink = Sink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=free_port())
        self.postfix = PostfixInstance(sink_port=self.controller.port, milters={"kirkwood-mo": ""})
        self.socket = self.postfix.root / "milter.sock"
        self.postfix.milters["kirkwood-mo"] = f"unix:{self.socket}"
        self.log = root / "milter.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        r = subprocess.run([CIVICAUP, "directory", "import", str(BUILTIN / "kirkwood-mo" / "directory.csv"),
                            "--policy", "kirkwood-mo"], env=self.env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        self.controller.start()
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [CIVICAUP, "milter", "--policy", "kirkwood-mo", "--listen", f"unix:{self.socket}", "--processes", "2",
                 "--next-hop", f"127.0.0.1:{self.postfix.reinject_port}", "--log-level", "info"],
                env=self.env, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert "listening on unix:" in line and "2 processes" in line, (line, self.log.read_text()[-2000:])
        self.postfix.start()

    def stop(self) -> None:
        try:
            self.postfix.cleanup()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.controller.stop()

    def delivered(self, token: str) -> list[bytes]:
        with self.sink.lock:
            return [m[2] for m in self.sink.messages if token.encode() in m[2][:20000]]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoProcessWorld]:
    w = TwoProcessWorld(tmp_path_factory.mktemp("prefork-world"))
    try:
        w.start()
        yield w
    except BaseException:
        print(w.postfix.log_tail())
        raise
    finally:
        w.stop()


def _message(token: str, body: str) -> bytes:
    return (f"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: dana.reed@kirkwoodmo.org\r\nSubject: {token}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@test>\r\n\r\n{body}\r\n").encode()


@postfix
@pytest.mark.timeout(300)
def test_both_processes_decide_mail(two: TwoProcessWorld) -> None:
    assert two.proc is not None
    children = _children(two.proc.pid)
    assert len(children) == 2
    batch = f"rude-{uuid.uuid4().hex[:8]}"

    def send(i: int) -> int:
        try:
            with smtplib.SMTP("127.0.0.1", two.postfix.milter_port, timeout=60) as smtp:
                smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                              _message(f"{batch}-{i}", "Tell that motherfucker to get the fuck out of my office."))
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code
        return 250

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(64)))
    assert set(codes) == {550}

    def deciders() -> set[int]:
        pids = set()
        for line in two.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if str(record.get("event", "")).startswith("milter: block"):
                pids.add(record["pid"])
        return pids

    assert _wait(lambda: children <= deciders(), timeout=10), f"only {deciders() & children} of {children} decided"


@postfix
@pytest.mark.timeout(300)
def test_killing_one_process_in_a_batch_loses_and_duplicates_nothing(two: TwoProcessWorld) -> None:
    assert two.proc is not None
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    n, kill_at = 300, 100
    victim = min(_children(two.proc.pid))
    sent = []
    with smtplib.SMTP("127.0.0.1", two.postfix.queue_port, timeout=60) as smtp:
        for i in range(n):
            token = f"{batch}-{i:04d}"
            assert smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                                 _message(token, f"Work order {i} for the Public Works yard.")) == {}
            sent.append(token)
            if i == kill_at:
                os.kill(victim, signal.SIGKILL)  # mid-batch, with messages in flight in that process
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if len(two.delivered(batch)) >= n and two.postfix.queued() == 0:
            break
        two.postfix.flush()
        time.sleep(2)
    tokens = [data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for data in two.delivered(batch)]
    assert sorted(tokens) == sorted(sent), f"{len(tokens)} of {n} delivered"
    assert all(b"X-Civicaup-Decision: allow" in data for data in two.delivered(batch))
    assert two.postfix.queued() == 0
    now = _children(two.proc.pid)
    assert len(now) == 2 and victim not in now, "the supervisor replaced the killed process"
    assert "was killed by SIGKILL; starting another" in two.log.read_text()


@postfix
@pytest.mark.timeout(300)
def test_sigterm_stops_the_milter_and_removes_its_socket(two: TwoProcessWorld) -> None:
    assert two.proc is not None
    two.proc.send_signal(signal.SIGTERM)
    assert two.proc.wait(60) == 0
    assert not two.socket.exists()
