"""Integration: a real Postfix (Debian's package) on 127.0.0.1 with `civicaup milter` processes, mail sent with
smtplib as a real client, observed where Postfix delivers (a local SMTP sink).

Kirkwood's milter listens on TCP, West Des Moines' on a unix socket. Released mail is re-injected through a
Postfix listener without the filter. The fault test passes mail through Postfix's queue to the milter-enabled
listener (content_filter), kills the milter with SIGKILL in the middle, and counts: every message is delivered
once, or waits in Postfix's queue until the milter is back. The stall tests stop the milter, and the content-filter
relay, with SIGSTOP past Postfix's (shortened) timeouts in a batch, resume them and count the same way.
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
from .postfix_instance import FilterProcess, PostfixInstance, free_port, postfix_missing

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


# ---------------------------------------------------------------- a stalled filter (SIGSTOP), milter and relay

STALL_TIMEOUTS = {
    # Postfix gives up on a stalled milter within seconds (milter_default_action = tempfail answers 4xx) ...
    "milter_connect_timeout": "2s", "milter_command_timeout": "3s", "milter_content_timeout": "4s",
    # ... and its smtp client on a stalled content filter (the relay) that does not greet or answer a command.
    "smtp_connect_timeout": "2s", "smtp_helo_timeout": "3s", "smtp_mail_timeout": "3s", "smtp_rcpt_timeout": "3s",
    "smtp_data_init_timeout": "3s", "smtp_data_xfer_timeout": "3s",
    # The wait for the answer to the final dot stays longer than the stall, as Postfix's default (600 s) is longer
    # than any pause the relay is expected to survive: giving up there while the relay re-injects is SMTP's own
    # duplicate window (RFC 1047), which no content filter can close.
    "smtp_data_done_timeout": "120s",
    # More deliveries at once than the filter has messages in progress: when it stops, the clients that wait for
    # its answer to a final dot do not take every delivery slot, and the next ones connect and time out.
    "default_destination_concurrency_limit": "60", "initial_destination_concurrency": "60",
}
STALL_SECONDS = 8.0  # past every timeout above but the last


class StallWorld:
    """A private Postfix with short filter timeouts, a `civicaup milter` (Kirkwood) behind milter_port, and a
    `civicaup relay` (Kirkwood) as the content filter of filter_ports["relay"], re-injecting to reinject_port."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ("CIVICAUP_DB_URL", "CIVICAUP_MAIL_NEXT_HOP")}
        self.env["CIVICAUP_HOME"] = str(self.home)
        self.sink = Sink()
        self.sink_port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink_port)
        milter_port, relay_port = free_port(), free_port()
        self.postfix = PostfixInstance(sink_port=self.sink_port,
                                       milters={"kirkwood-mo": f"inet:127.0.0.1:{milter_port}"},
                                       content_filters={"relay": f"smtp:[127.0.0.1]:{relay_port}"},
                                       main_overrides=STALL_TIMEOUTS)
        hop = f"127.0.0.1:{self.postfix.reinject_port}"
        self.filters = {
            "milter": FilterProcess(["milter", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{milter_port}",
                                     "--next-hop", hop], self.env, root / "milter.log"),
            "relay": FilterProcess(["relay", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{relay_port}",
                                    "--next-hop", hop], self.env, root / "relay.log"),
        }

    def start(self) -> None:
        r = subprocess.run([CIVICAUP, "directory", "import", str(BUILTIN / "kirkwood-mo" / "directory.csv"),
                            "--policy", "kirkwood-mo"], env=self.env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        self.controller.start()
        for f in self.filters.values():
            f.start()
        self.postfix.start()

    def stop(self) -> None:
        try:
            self.postfix.cleanup()
        finally:
            for f in self.filters.values():
                f.stop()
            self.controller.stop()

    def delivered_ids(self, batch: str) -> list[str]:
        """The Message-IDs of the batch's messages at the sink, one per delivery."""
        out = []
        with self.sink.lock:
            for _, _, data in self.sink.messages:
                head = header_block(data).decode("utf-8", "replace")
                for line in head.split("\r\n"):
                    if line.lower().startswith("message-id:") and batch in line:
                        out.append(line.split(":", 1)[1].strip())
                        assert "\r\nX-Civicaup-Decision: allow" in "\r\n" + head, head[:500]
        return out

    def deferred_since(self, offset: int) -> int:
        """`status=deferred` lines written to Postfix's maillog past byte `offset`."""
        try:
            with open(self.postfix.maillog, "rb") as fp:
                fp.seek(offset)
                return fp.read().count(b"status=deferred")
        except FileNotFoundError:
            return 0

    def maillog_size(self) -> int:
        try:
            return self.postfix.maillog.stat().st_size
        except FileNotFoundError:
            return 0


@pytest.fixture(scope="module")
def stall_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StallWorld]:
    w = StallWorld(tmp_path_factory.mktemp("postfix-stall"))
    try:
        w.start()
        yield w
    except BaseException:
        print(w.postfix.log_tail())
        raise
    finally:
        w.stop()


def _stall_in_a_batch(world: StallWorld, which: str, port: int, n: int = 300, stall_at: int = 100) -> None:
    """Send `n` messages to `port` (Postfix queues them, then passes them to the filter); SIGSTOP the filter after
    message `stall_at` (once it has passed some on), keep it stopped STALL_SECONDS, SIGCONT it, flush the queue;
    then every message must have been delivered exactly once (by Message-ID) and the queue be empty."""
    batch = f"stall-{which}-{uuid.uuid4().hex[:8]}"
    flt = world.filters[which]
    log_offset = world.maillog_size()
    sent: list[str] = []
    stopped_at = None
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for i in range(n):
                mid = f"<{batch}-{i:04d}@civicaup.test>"
                msg = text_message("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", f"Work order {i}",
                                   f"Work order {i} for the Public Works yard.")
                msg = msg.replace(msg.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0], mid.encode(), 1)
                assert smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], msg) == {}
                sent.append(mid)
                if i == stall_at:  # mid-batch, once the filter is busy passing the first messages on
                    busy = time.monotonic() + 30
                    while len(world.delivered_ids(batch)) < 10 and time.monotonic() < busy:
                        time.sleep(0.05)
                    flt.send_signal(signal.SIGSTOP)
                    stopped_at = time.monotonic()
        assert stopped_at is not None
        time.sleep(max(0.0, stopped_at + STALL_SECONDS - time.monotonic()))
        waiting = world.postfix.queued()
        delivered_during_stall = len(world.delivered_ids(batch))
    finally:
        flt.send_signal(signal.SIGCONT)
    deferred = world.deferred_since(log_offset)
    world.postfix.flush()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if len(world.delivered_ids(batch)) >= n and world.postfix.queued() == 0:
            break
        time.sleep(1.0)
        world.postfix.flush()
    time.sleep(2.0)  # a late duplicate would show up here
    got = world.delivered_ids(batch)
    print(f"{which} stopped {STALL_SECONDS:.0f} s in a batch of {n}: {delivered_during_stall} delivered and {waiting} "
          f"waiting in Postfix's queue at the end of the stall, "
          f"{deferred} deferrals, {len(got)} delivered, {len(set(got))} distinct")
    assert waiting > 0 and delivered_during_stall < n, "the stall left nothing waiting: the fault was not exercised"
    assert deferred > 0, f"Postfix deferred nothing while the {which} was stopped: {world.postfix.log_tail()}"
    missing = sorted(set(sent) - set(got))
    assert not missing, f"{len(missing)} of {n} never delivered ({waiting} were waiting in the queue)"
    assert len(got) == len(set(got)) == n, f"duplicates: {len(got) - len(set(got))}"
    assert world.postfix.queued() == 0


def test_stalling_the_milter_loses_and_duplicates_nothing(stall_world: StallWorld) -> None:
    _stall_in_a_batch(stall_world, "milter", stall_world.postfix.queue_port)


def test_stalling_the_relay_loses_and_duplicates_nothing(stall_world: StallWorld) -> None:
    _stall_in_a_batch(stall_world, "relay", stall_world.postfix.filter_ports["relay"])
