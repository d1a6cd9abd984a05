"""Integration: a real Postfix (Debian's package) on 127.0.0.1 with `civicaup milter` processes, mail sent with
smtplib as a real client, observed where Postfix delivers (a local SMTP sink).

Kirkwood's milter listens on TCP, West Des Moines' on a unix socket. Released mail is re-injected through a
Postfix listener without the filter. The fault test passes mail through Postfix's queue to the milter-enabled
listener (content_filter), kills the milter with SIGKILL in the middle, and counts: every message is delivered
once, or waits in Postfix's queue until the milter is back.
"""
from __future__ import annotations

import json
import os
import select
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller

from civicaup.policy.registry import BUILTIN

from .conftest import Sink
from .postfix_instance import PostfixInstance, free_port, postfix_missing

pytestmark = [pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing())),
              pytest.mark.timeout(300)]

CIVICAUP = str(Path(sys.executable).parent / "civicaup")
PACKS = ("kirkwood-mo", "west-des-moines-ia")


class MilterProcess:
    """`civicaup milter` as its own process, started and stopped by PID."""

    def __init__(self, policy: str, listen: str, env: dict[str, str], next_hop: str, log: Path) -> None:
        self.policy, self.listen, self.env, self.next_hop, self.log = policy, listen, env, next_hop, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        err = open(self.log, "ab")
        self.proc = subprocess.Popen([CIVICAUP, "milter", "--policy", self.policy, "--listen", self.listen,
                                      "--next-hop", self.next_hop], env=self.env, stdout=subprocess.PIPE,
                                     stderr=err, stdin=subprocess.DEVNULL)
        err.close()
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.kill()
            raise RuntimeError(f"milter did not start: {line!r} {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class World:
    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ("CIVICAUP_DB_URL", "CIVICAUP_MAIL_NEXT_HOP")}
        self.env["CIVICAUP_HOME"] = str(self.home)
        self.sink = Sink()
        self.sink_port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink_port,
                                     data_size_limit=200_000_000)
        self.kirkwood_port = free_port()
        self.postfix = PostfixInstance(sink_port=self.sink_port, milters={
            "kirkwood-mo": f"inet:127.0.0.1:{self.kirkwood_port}", "west-des-moines-ia": ""})
        self.socket = self.postfix.root / "wdm-milter.sock"
        self.postfix.milters["west-des-moines-ia"] = f"unix:{self.socket}"
        hop = f"127.0.0.1:{self.postfix.reinject_port}"
        self.milters = {
            "kirkwood-mo": MilterProcess("kirkwood-mo", f"127.0.0.1:{self.kirkwood_port}", self.env, hop,
                                         root / "kirkwood.log"),
            "west-des-moines-ia": MilterProcess("west-des-moines-ia", f"unix:{self.socket}", self.env, hop,
                                                root / "wdm.log"),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CIVICAUP, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        for p in PACKS:
            r = self.cli("directory", "import", str(BUILTIN / p / "directory.csv"), "--policy", p)
            assert r.returncode == 0, r.stderr
        self.controller.start()
        for m in self.milters.values():
            m.start()
        self.postfix.start()

    def stop(self) -> None:
        try:
            self.postfix.cleanup()
        finally:
            for m in self.milters.values():
                m.stop()
            self.controller.stop()

    def send(self, port: int, msg: bytes, sender: str, rcpts: list[str]) -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            return smtp.sendmail(sender, rcpts, msg)

    def delivered(self, token: str, n: int = 1, timeout: float = 20.0) -> list[tuple[str, list[str], bytes]]:
        deadline = time.monotonic() + timeout
        while True:
            with self.sink.lock:
                found = [m for m in self.sink.messages if token.encode() in m[2][:20000]]
            if len(found) >= n or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("postfix-world"))
    try:
        w.start()
        yield w
    except BaseException:
        print(w.postfix.log_tail())
        raise
    finally:
        w.stop()


def text_message(sender: str, to: str, subject: str, body: str, name: str = "") -> bytes:
    return (f"From: {name} <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@test>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


def test_allowed_mail_arrives_with_the_decision_header(world: World) -> None:
    token = f"budget-{uuid.uuid4().hex[:8]}"
    msg = text_message("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", f"Budget meeting {token}",
                       "Dana,\r\n\r\nThe budget meeting moved to 3 pm Thursday.\r\n\r\nPat", "Pat Jones")
    assert world.send(world.postfix.milter_ports["kirkwood-mo"], msg, "pat.jones@kirkwoodmo.org",
                      ["dana.reed@kirkwoodmo.org"]) == {}
    [(_, rcpts, data)] = world.delivered(token)
    assert rcpts == ["dana.reed@kirkwoodmo.org"]
    assert b"\r\nX-Civicaup-Decision: allow\r\n" in header_block(data) + b"\r\n"
    assert body_of(data) == body_of(msg)


def test_prohibited_mail_is_rejected_with_the_clause_in_the_reply(world: World) -> None:
    token = f"threat-{uuid.uuid4().hex[:8]}"
    msg = text_message("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", f"about yesterday {token}",
                       "Dana,\r\n\r\nIf you write me up again I will kill you. Watch your back.\r\n\r\nPat")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        world.send(world.postfix.milter_ports["kirkwood-mo"], msg, "pat.jones@kirkwoodmo.org",
                   ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 550
    reply = exc.value.smtp_error.decode()
    assert reply.startswith("5.7.1 mail-offensive-threatening clause e: ") and "threatening" in reply
    assert world.delivered(token, timeout=1.0) == []


def test_broadcast_is_held_then_arrives_unchanged_after_release(world: World) -> None:
    token = f"picnic-{uuid.uuid4().hex[:8]}"
    body = "\r\n".join(f"Line {i}: the Public Works picnic is Saturday June 6 at Walker Lake." for i in range(300))
    msg = text_message("pat.jones@kirkwoodmo.org", "all-users@kirkwoodmo.org", f"Annual picnic {token}",
                       body + "\r\n.\r\n..dots stay", "Pat Jones")
    assert world.send(world.postfix.milter_ports["kirkwood-mo"], msg, "pat.jones@kirkwoodmo.org",
                      ["all-users@kirkwoodmo.org"]) == {}
    assert world.delivered(token, timeout=2.0) == []  # held: Postfix discarded its copy, ours is kept
    r = world.cli("quarantine", "list", "--policy", "kirkwood-mo", "--json")
    assert r.returncode == 0, r.stderr
    [held] = [h for h in json.loads(r.stdout) if token in h["subject"]]
    assert (held["status"], held["rule"], held["clause"], held["sender"]) == ("held", "mail-all-users", "d",
                                                                              "pat.jones@kirkwoodmo.org")
    assert held["approvers"][0]["roles"] == ["department-head"]
    qid = str(held["id"])
    for who in ("pat.jones@kirkwoodmo.org", "alex.brown@kirkwoodmo.org", "nobody@kirkwoodmo.org"):
        r = world.cli("quarantine", "release", qid, "--as", who)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (who, r.stderr)
    assert world.cli("quarantine", "release", "99999", "--as", "dana.reed@kirkwoodmo.org").returncode == 2
    r = world.cli("quarantine", "release", qid, "--as", "dana.reed@kirkwoodmo.org")
    assert r.returncode == 0, r.stderr
    [(mail_from, rcpts, data)] = world.delivered(token)
    assert mail_from == "pat.jones@kirkwoodmo.org" and rcpts == ["all-users@kirkwoodmo.org"]
    assert body_of(data) == body_of(msg)  # byte-identical body
    stored = (world.home / "quarantine" / held["sha256"]).read_bytes()
    assert data.endswith(stored)  # the whole held message, only a Received line of the re-injection added
    assert b"X-Civicaup-Decision" not in data
    r = world.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def _big(sender: str, to: str, subject: str, mb: int) -> bytes:
    m = MIMEMultipart()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.attach(MIMEText("The site survey data is attached.\n"))
    a = MIMEApplication(os.urandom(mb * 1_000_000), Name="survey-data.bin")
    a["Content-Disposition"] = 'attachment; filename="survey-data.bin"'
    m.attach(a)
    return m.as_bytes().replace(b"\n", b"\r\n")


def test_60_mb_attachment_is_refused_only_in_west_des_moines(world: World) -> None:
    token = f"survey-{uuid.uuid4().hex[:8]}"
    wdm = _big("taylor.nguyen@wdm.iowa.gov", "jamie.olson@wdm.iowa.gov", f"Survey {token}", 60)
    with pytest.raises(smtplib.SMTPDataError) as exc:
        world.send(world.postfix.milter_ports["west-des-moines-ia"], wdm, "taylor.nguyen@wdm.iowa.gov",
                   ["jamie.olson@wdm.iowa.gov"])
    assert exc.value.smtp_code == 550
    reply = exc.value.smtp_error.decode()
    assert reply.startswith("5.7.1 mail-large-files clause Software Usage para 15: "), reply
    del wdm
    kirkwood = _big("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", f"Survey {token}", 60)
    assert world.send(world.postfix.milter_ports["kirkwood-mo"], kirkwood, "pat.jones@kirkwoodmo.org",
                      ["dana.reed@kirkwoodmo.org"]) == {}
    [(_, _, data)] = world.delivered(token, timeout=60)
    assert b"X-Civicaup-Decision: allow" in header_block(data) and body_of(data) == body_of(kirkwood)
    with world.sink.lock:  # free the memory
        world.sink.messages[:] = [m for m in world.sink.messages if token.encode() not in m[2][:20000]]


def test_killing_the_milter_loses_and_duplicates_nothing(world: World) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    n, kill_at = 300, 100
    milter = world.milters["kirkwood-mo"]
    sent = []
    with smtplib.SMTP("127.0.0.1", world.postfix.queue_port, timeout=60) as smtp:
        for i in range(n):
            token = f"{batch}-{i:04d}"
            msg = text_message("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", f"Work order {token}",
                               f"Work order {i} for the Public Works yard.")
            assert smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], msg) == {}
            sent.append(token)
            if i == kill_at:
                milter.kill(signal.SIGKILL)  # mid-batch, with messages in flight
    time.sleep(2)
    waiting = world.postfix.queued()
    milter.start()
    world.postfix.flush()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        got = world.delivered(batch, n=n, timeout=5)
        if len(got) >= n and world.postfix.queued() == 0:
            break
        world.postfix.flush()
    got = world.delivered(batch, n=n, timeout=1)
    tokens = []
    for _, _, data in got:
        head = header_block(data).decode()
        tokens.append(head.split("Work order ", 1)[1].split("\r\n", 1)[0])
        assert "X-Civicaup-Decision: allow" in head
    assert waiting > 0, "the kill left nothing waiting: the fault path was not exercised"
    assert sorted(tokens) == sorted(sent), f"{len(tokens)} of {n} delivered, {waiting} were waiting in the queue"
    assert len(set(tokens)) == len(tokens), "duplicates"
    assert world.postfix.queued() == 0
