"""SIGHUP reload of the long-running parts, as processes, while traffic flows.

The city's own copy of the Kirkwood pack sits in $CIVICAUP_HOME/packs/kirkwood-mo (it overrides the shipped one).
While messages (or Squid requests) stream in without a pause, the pack is changed and the process gets SIGHUP:
every message sent gets an answer (none lost, none tempfailed), the ones sent after the reload line are decided by
the new pack, the ones answered before the signal by the old one, and the process is the same one throughout.
A broken pack.yaml or a broken civicaup.toml makes the reload fail with one error line and changes nothing.

The change: all-staff@kirkwoodmo.org becomes a broadcast address too and the all-users rule (clause d) blocks
instead of holding, so a message to all-staff goes from "continue" to "550 5.7.1 mail-all-users"; for the web,
the radio rule (clause b) goes from block to log.
"""
from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from civicaup.policy.registry import BUILTIN
from tests.mail.miltertools import FakeMTA

CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
POLICY = "kirkwood-mo"
ALL_STAFF = "all-staff@kirkwoodmo.org"
BROKEN = "id: kirkwood-mo\nrules: [\n"


def widen_broadcast(text: str) -> str:
    a, b = "broadcast: [all-users@kirkwoodmo.org]", "when: {categories: [broadcast]}\n    action: hold"
    assert a in text and b in text
    return text.replace(a, f"broadcast: [all-users@kirkwoodmo.org, {ALL_STAFF}]").replace(
        b, "when: {categories: [broadcast]}\n    action: block")


def allow_radio(text: str) -> str:
    a = "when: {categories: [radio]}\n    action: block"
    assert a in text
    return text.replace(a, "when: {categories: [radio]}\n    action: log")


class Service:
    """A civicaup process; its stderr is read by a thread into timestamped lines."""

    def __init__(self, home: Path, *args: str, stdin: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVICAUP_", "LISTEN_", "NOTIFY_"))}
        self.proc = subprocess.Popen([CIVICAUP, *args], env={**env, "CIVICAUP_HOME": str(home)},
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._lock:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def first_line(self, timeout: float = 90) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if ready else ""
        assert line, f"no start line; stderr: {self.stderr()[-2000:]}"
        return line

    def stderr(self) -> str:
        with self._lock:
            return "\n".join(text for _, text in self.lines)

    def wait_for(self, pattern: str, after: float, timeout: float = 60) -> tuple[float, str]:
        """(time seen, line) of the first stderr line after `after` that matches."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            with self._lock:
                for seen, text in self.lines:
                    if seen >= after and rx.search(text):
                        return seen, text
            assert self.proc.poll() is None, f"the process ended: {self.stderr()[-2000:]}"
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {self.stderr()[-2000:]}")

    def hup(self) -> float:
        """SIGHUP; the time just before it was sent."""
        at = time.monotonic()
        os.kill(self.pid, signal.SIGHUP)
        return at

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "packs").mkdir(parents=True)
    shutil.copytree(BUILTIN / POLICY, home / "packs" / POLICY)
    return home


@pytest.fixture
def services() -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(home: Path, *args: str, stdin: bool = False) -> Service:
        s = Service(home, *args, stdin=stdin)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def edit_pack(home: Path, change: Callable[[str], str] | str) -> str:
    """Replace pack.yaml as an editor or deployment tool does (a new file renamed over the old one); returns the
    first 12 hex digits of its SHA-256, as the reload line shows them."""
    path = home / "packs" / POLICY / "pack.yaml"
    text = change if isinstance(change, str) else change(path.read_text(encoding="utf-8"))
    tmp = path.with_name("pack.yaml.new")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ the milter

class Stream(threading.Thread):
    """One MTA connection sending message after message to all-staff until stopped; every answer is kept with
    the times the message was started and answered."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.sent = 0
        self.answers: list[tuple[float, float, bytes, bytes]] = []
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            mta = FakeMTA(self.path)
            try:
                while not self.halt.is_set():
                    started = time.monotonic()
                    self.sent += 1
                    cmd, data = send(mta, ALL_STAFF)
                    self.answers.append((started, time.monotonic(), cmd, data))
            finally:
                mta.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def count_after(self, t: float) -> int:
        return sum(1 for a in list(self.answers) if a[0] > t)


def send(mta: FakeMTA, rcpt: str) -> tuple[bytes, bytes]:
    headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", rcpt), ("Subject", "Staff picnic"),
               ("Message-ID", f"<{time.monotonic_ns()}@kirkwoodmo.org>")]
    return mta.message("pat.jones@kirkwoodmo.org", [rcpt], headers, b"The picnic is on Saturday.\r\n")[-1]


CONTINUE = (b"c", b"")


def is_block(answer: tuple[bytes, bytes]) -> bool:
    return answer[0] == b"y" and answer[1].startswith(b"550 5.7.1 mail-all-users clause d")


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.02)


def start_milter(services: Callable[..., Service], home: Path, tmp_path: Path, *args: str) -> tuple[Service, str]:
    path = str(tmp_path / "milter.sock")
    svc = services(home, "milter", "--policy", POLICY, "--listen", f"unix:{path}", "--no-journal", *args)
    assert f"listening on unix:{path}" in svc.first_line()
    return svc, path


@pytest.mark.parametrize("workers", ["0", "2"])  # decisions in threads; in a pool of processes (replaced on reload)
def test_sighup_with_a_changed_pack_takes_effect_without_a_lost_message(home: Path, tmp_path: Path, workers: str,
                                                                         services: Callable[..., Service]) -> None:
    svc, path = start_milter(services, home, tmp_path, "--workers", workers)
    streams = [Stream(path), Stream(path)]
    for s in streams:
        s.start()
    try:
        wait_until(lambda: all(len(s.answers) >= 10 for s in streams) or any(s.error for s in streams),
                   "messages before the reload")
        digest = edit_pack(home, widen_broadcast)
        hup_at = svc.hup()
        seen, line = svc.wait_for(r"milter: reloaded policy kirkwood-mo", hup_at)
        assert f"pack.yaml {digest}" in line
        wait_until(lambda: all(s.count_after(seen) >= 10 for s in streams) or any(s.error for s in streams),
                   "messages after the reload")
    finally:
        for s in streams:
            s.halt.set()
        for s in streams:
            s.join(60)
    for s in streams:
        assert s.error is None, repr(s.error)
        assert s.sent == len(s.answers)  # every message sent got its answer
        kinds = [(cmd, data) for _, _, cmd, data in s.answers]
        assert all(k == CONTINUE or is_block(k) for k in kinds), [k for k in kinds if k != CONTINUE][:3]  # no 451
        assert all((c, d) == CONTINUE for _, t1, c, d in s.answers if t1 < hup_at)  # the old pack
        assert all(is_block((c, d)) for t0, _, c, d in s.answers if t0 > seen)  # the new pack
        first_block = next(i for i, k in enumerate(kinds) if k != CONTINUE)
        assert all(is_block(k) for k in kinds[first_block:])  # once switched, never back
    assert sum(len(s.answers) for s in streams) >= 40
    assert svc.proc.poll() is None and svc.proc.pid == svc.pid  # the same process, still running
    assert "reload failed" not in svc.stderr()
    assert svc.stop() == 0


def test_a_broken_pack_or_configuration_keeps_the_running_one(home: Path, tmp_path: Path,
                                                              services: Callable[..., Service]) -> None:
    svc, path = start_milter(services, home, tmp_path)
    mta = FakeMTA(path)
    assert send(mta, ALL_STAFF) == CONTINUE
    # a broken pack.yaml: one error line, the old pack decides
    edit_pack(home, BROKEN)
    _, line = svc.wait_for(r"milter: reload failed, keeping policy kirkwood-mo \(pack version ", svc.hup())
    assert "pack.yaml" in line and len([x for x in svc.stderr().splitlines() if "reload failed" in x]) == 1
    for _ in range(5):
        assert send(mta, ALL_STAFF) == CONTINUE
    # a good pack but a configuration that does not validate: nothing changes either
    edit_pack(home, widen_broadcast(BUILTIN.joinpath(POLICY, "pack.yaml").read_text(encoding="utf-8")))
    (home / "civicaup.toml").write_text("[mail]\nnext_hop = \"not an address\"\n", encoding="utf-8")
    _, line = svc.wait_for(r"milter: reload failed, keeping policy kirkwood-mo", svc.hup())
    assert "next_hop" in line
    for _ in range(5):
        assert send(mta, ALL_STAFF) == CONTINUE
    # both fixed: the next SIGHUP takes the new pack
    (home / "civicaup.toml").unlink()
    svc.wait_for(r"milter: reloaded policy kirkwood-mo", svc.hup())
    for _ in range(3):
        assert is_block(send(mta, ALL_STAFF))
    mta.close()
    assert svc.proc.poll() is None and "Traceback" not in svc.stderr()
    assert svc.stop() == 0


# ------------------------------------------------------------------------------------------------ the Squid helper

class Requests(threading.Thread):
    """Squid's side: blocks of 10 concurrent requests for a radio site, each block answered before the next."""

    def __init__(self, svc: Service) -> None:
        super().__init__(daemon=True)
        self.svc = svc
        self.sent = 0
        self.blocks: list[tuple[float, float, list[str]]] = []
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        proc = self.svc.proc
        assert proc.stdin is not None and proc.stdout is not None
        fd, buf, n = proc.stdout.fileno(), b"", 0
        try:
            while not self.halt.is_set():
                started = time.monotonic()
                lines = [f"{i} http://tunein.com/station/{n + i} - 10.0.0.{i + 1} GET -" for i in range(10)]
                n += 10
                self.sent += 10
                proc.stdin.write(("\n".join(lines) + "\n").encode())
                proc.stdin.flush()
                while buf.count(b"\n") < 10:
                    ready, _, _ = select.select([fd], [], [], 30)
                    assert ready, "the helper did not answer within 30 s"
                    chunk = os.read(fd, 65536)
                    assert chunk, "the helper closed its output"
                    buf += chunk
                got = buf.split(b"\n")
                buf = b"\n".join(got[10:])
                self.blocks.append((started, time.monotonic(), [x.decode() for x in got[:10]]))
        except BaseException as exc:  # noqa: BLE001
            self.error = exc


def test_squid_helper_reloads_a_changed_pack_without_dropping_a_request(home: Path,
                                                                       services: Callable[..., Service]) -> None:
    svc = services(home, "squid-helper", "--policy", POLICY, stdin=True)
    svc.wait_for(r"ready: policy kirkwood-mo", 0.0, timeout=90)
    req = Requests(svc)
    req.start()
    try:
        wait_until(lambda: len(req.blocks) >= 5 or req.error is not None, "answers before the reload")
        digest = edit_pack(home, allow_radio)
        hup_at = svc.hup()
        seen, line = svc.wait_for(r"reloaded policy kirkwood-mo", hup_at)
        assert f"pack.yaml {digest}" in line
        wait_until(lambda: sum(1 for b in list(req.blocks) if b[0] > seen) >= 5 or req.error is not None,
                   "answers after the reload")
        # a broken pack.yaml: one error line, the pack loaded last keeps deciding
        edit_pack(home, BROKEN)
        broken_at = svc.hup()
        svc.wait_for(r"reload of policy kirkwood-mo failed, keeping the loaded one", broken_at)
        wait_until(lambda: sum(1 for b in list(req.blocks) if b[0] > broken_at) >= 5 or req.error is not None,
                   "answers after the failed reload")
        # a configuration that does not validate: one error line, nothing changes
        (home / "civicaup.toml").write_text("[web]\nhelper_children = 0\n", encoding="utf-8")
        config_at = svc.hup()
        _, line = svc.wait_for(r"squid-helper: reload failed, keeping the running configuration", config_at)
        assert "helper_children" in line
        wait_until(lambda: sum(1 for b in list(req.blocks) if b[0] > config_at) >= 5 or req.error is not None,
                   "answers after the failed configuration reload")
    finally:
        req.halt.set()
        req.join(60)
    assert req.error is None, repr(req.error)
    answers = [a for _, _, block in req.blocks for a in block]
    assert len(answers) == req.sent  # every request answered
    for _, _, block in req.blocks:  # each block: one answer per channel id
        assert sorted(int(a.split(" ", 1)[0]) for a in block) == list(range(10))
    blocked = "ERR message=Blocked%20by%20kirkwood-mo%20rule%20web-streaming-audio"
    for started, done, block in req.blocks:
        if done < hup_at:
            assert all(a.split(" ", 1)[1].startswith(blocked) for a in block), block
        if started > seen:
            assert all(a.split(" ", 1)[1].startswith("OK log=log%3Aradio") for a in block), block
    assert svc.proc.poll() is None and svc.proc.pid == svc.pid
    assert svc.stop() == 0


# ------------------------------------------------------------------------------------------------ serve

def test_serve_reloads_and_keeps_serving_through_a_broken_pack(home: Path, services: Callable[..., Service]) -> None:
    svc = services(home, "serve", "--policy", POLICY, "--listen", "127.0.0.1:0")
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", svc.first_line())
    assert m, "no address in the start line"
    url = f"http://127.0.0.1:{m.group(1)}/openapi.json"

    def alive() -> bool:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status == 200 and b'"openapi"' in r.read()

    assert alive()
    digest = edit_pack(home, lambda t: re.sub(r'(?m)^version: .*$', 'version: "2099-01-01"', t, count=1))
    _, line = svc.wait_for(r"serve: reloaded policy kirkwood-mo \(pack version 2099-01-01", svc.hup())
    assert f"pack.yaml {digest}" in line and alive()
    edit_pack(home, BROKEN)
    svc.wait_for(r"serve: reload failed, keeping policy kirkwood-mo \(pack version 2099-01-01", svc.hup())
    assert alive() and svc.proc.poll() is None
    assert svc.stop() == 0
