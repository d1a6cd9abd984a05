"""`civicaup setup postfix`: the main.cf / master.cf lines from the configuration, and --apply on real files.

Unit tests run the command on a scratch Postfix configuration folder (printed lines follow civicaup.toml; --apply
keeps a backup equal to the original, applying twice changes nothing, the city's own settings are replaced, not
duplicated, and come back when the mode changes; bad input is one line and exit 2).

Integration tests start a private real Postfix (Debian's package, tests/mail/postfix_instance.py: its own config,
queue and data directories, loopback, delivering to an SMTP sink) whose base configuration has no civicaup wiring at
all: the milter or content-filter wiring, and the re-injection listener, come only from
`civicaup setup postfix --apply --config-dir <instance>/etc`; the filter is started with the command line setup
prints, under the same civicaup.toml. Kirkwood, MO policy.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from civicaup.policy.registry import BUILTIN
from tests.mail.conftest import Sink
from tests.mail.postfix_instance import MASTER_SERVICES, PostfixInstance, free_port, postfix_missing

CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
POSTCONF = shutil.which("postconf") or ("/usr/sbin/postconf" if os.path.exists("/usr/sbin/postconf") else None)
POLICY = "kirkwood-mo"
SENDER, COLLEAGUE, ALL_STAFF = "pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", "all-users@kirkwoodmo.org"


def toml(data: dict[str, Any]) -> str:
    """A small TOML writer: top-level scalars, then one table per section."""
    def value(v: Any) -> str:
        return str(v) if isinstance(v, int) else json.dumps(str(v))
    top = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {value(vv)}" for kk, vv in v.items())
              for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"


def env_for(home: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAUP_")}
    return {**env, "CIVICAUP_HOME": str(home), "CIVICAUP_CONFIG": str(config)}


def civicaup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVICAUP, *args], env=env, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------------------ unit tests

MAIN_CF = """\
# the city's own main.cf
myhostname = mx.example.gov
smtpd_milters = inet:127.0.0.1:8891,
# DKIM signing
    { inet:127.0.0.1:8892, default_action = accept }
non_smtpd_milters = $smtpd_milters
message_size_limit = 20480000
mailbox_size_limit = 0
smtpd_recipient_restrictions =
    permit_mynetworks,
    reject_unauth_destination
"""

MASTER_CF = """\
# the city's own master.cf
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
127.0.0.1:10026 inet n  -       n       -       -       smtpd
  -o smtpd_milters=
qmgr      unix  n       -       n       300     1       qmgr
"""


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(Postfix config folder, civicaup.toml, env) with the city's own files and a civicaup home."""
    etc = tmp_path / "postfix"
    etc.mkdir()
    (etc / "main.cf").write_text(MAIN_CF)
    (etc / "master.cf").write_text(MASTER_CF)
    home = tmp_path / "home"
    home.mkdir()
    config = home / "civicaup.toml"
    config.write_text(toml({"data_dir": home, "listen": {"milter": "unix:/run/civicaup/milter.sock",
                                                         "relay": "127.0.0.1:10035"},
                            "mail": {"next_hop": "127.0.0.1:10026", "milter_timeout_s": 45, "max_message_mb": 80,
                                     "postfix_config_dir": etc}}))
    return etc, config, env_for(home, config)


def block(text: str) -> list[str]:
    lines = text.splitlines()
    begin = [i for i, ln in enumerate(lines) if ln.startswith("# civicaup begin")]
    end = [i for i, ln in enumerate(lines) if ln.startswith("# civicaup end")]
    assert len(begin) == 1 and len(end) == 1 and begin[0] < end[0], text
    return lines[begin[0]:end[0] + 1]


def backups(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.civicaup-*"))


def test_printed_lines_follow_the_configuration(scratch: tuple[Path, Path, dict[str, str]]) -> None:
    etc, config, env = scratch
    r = civicaup(env, "setup", "postfix", "--policy", POLICY)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    others = "inet:127.0.0.1:8891, { inet:127.0.0.1:8892, default_action = accept }"
    assert f"smtpd_milters = unix:/run/civicaup/milter.sock, {others}" in lines  # the city's milters kept, after
    assert "non_smtpd_milters = $smtpd_milters" in lines  # already includes ours
    for expected in ("milter_default_action = tempfail", "milter_protocol = 6", "milter_connect_timeout = 10s",
                     "milter_command_timeout = 45s", "milter_content_timeout = 45s",
                     f"message_size_limit = {80 * 1024 * 1024}", "127.0.0.1:10026 inet n - n - - smtpd"):
        assert expected in lines, (expected, r.stdout)
    assert "mailbox_size_limit" not in r.stdout  # 0 = unlimited: nothing to raise
    assert (f"# runs beside Postfix: civicaup milter --policy {POLICY} --listen unix:/run/civicaup/milter.sock "
            "--next-hop 127.0.0.1:10026") in lines
    assert (etc / "main.cf").read_text() == MAIN_CF and not backups(etc, "main.cf")  # printing writes nothing

    config.write_text(config.read_text().replace('"unix:/run/civicaup/milter.sock"', '"127.0.0.1:8899"')
                      .replace("max_message_mb = 80", "max_message_mb = 10"))
    r = civicaup(env, "setup", "postfix", "--policy", POLICY)
    assert r.returncode == 0, r.stderr
    assert f"smtpd_milters = inet:127.0.0.1:8899, {others}" in r.stdout.splitlines()
    assert "message_size_limit = 20480000" in r.stdout.splitlines()  # never lowered below the city's

    r = civicaup(env, "setup", "postfix", "--policy", POLICY, "--mode", "content-filter")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "content_filter = civicaup:[127.0.0.1]:10035" in lines
    assert "receive_override_options = no_address_mappings" in lines
    assert "civicaup unix - - n - 10 smtp" in lines and "  -o content_filter=" in lines
    assert "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters" in lines
    assert not any(ln.startswith("smtpd_milters") for ln in lines)


def test_apply_twice_gives_one_block_and_one_backup_equal_to_the_original(
        scratch: tuple[Path, Path, dict[str, str]]) -> None:
    etc, _, env = scratch
    r = civicaup(env, "setup", "postfix", "--policy", POLICY, "--apply")
    assert r.returncode == 0, r.stderr
    [main_backup] = backups(etc, "main.cf")
    [master_backup] = backups(etc, "master.cf")
    assert main_backup.read_text() == MAIN_CF and master_backup.read_text() == MASTER_CF
    main, master = (etc / "main.cf").read_text(), (etc / "master.cf").read_text()
    assert "\n".join(block(main)) in r.stdout and "\n".join(block(master)) in r.stdout  # what it printed
    # the city's settings that civicaup sets are commented out, not duplicated; the others are untouched
    for line in ("smtpd_milters = inet:127.0.0.1:8891,", "# DKIM signing",
                 "    { inet:127.0.0.1:8892, default_action = accept }"):  # every line of the logical line
        assert "#civicaup-replaced: " + line in main.splitlines()
    assert "#civicaup-replaced: message_size_limit = 20480000" in main.splitlines()
    assert "myhostname = mx.example.gov" in main.splitlines() and "    reject_unauth_destination" in main
    assert "#civicaup-replaced: 127.0.0.1:10026 inet n  -       n       -       -       smtpd" in master
    assert "#civicaup-replaced:   -o smtpd_milters=" in master
    active = [ln.split("=")[0].strip() for ln in main.splitlines() if ln and not ln[0].isspace()
              and not ln.startswith("#")]
    assert len(active) == len(set(active))
    if POSTCONF:  # Postfix itself reads the result
        got = subprocess.run([POSTCONF, "-c", str(etc), "-h", "smtpd_milters", "milter_default_action",
                              "message_size_limit"], capture_output=True, text=True, timeout=60).stdout.splitlines()
        assert got == ["unix:/run/civicaup/milter.sock, inet:127.0.0.1:8891, { inet:127.0.0.1:8892, "
                       "default_action = accept }", "tempfail", str(80 * 1024 * 1024)]

    r = civicaup(env, "setup", "postfix", "--policy", POLICY, "--apply")
    assert r.returncode == 0, r.stderr
    assert (etc / "main.cf").read_text() == main and (etc / "master.cf").read_text() == master
    assert len(backups(etc, "main.cf")) == 1 and len(backups(etc, "master.cf")) == 1
    assert "main.cf: unchanged" in r.stderr

    # another mode: the block is replaced in place, and the city's settings it no longer sets come back
    r = civicaup(env, "setup", "postfix", "--policy", POLICY, "--apply", "--mode", "content-filter")
    assert r.returncode == 0, r.stderr
    main = (etc / "main.cf").read_text()
    assert len(block(main)) > 2 and "smtpd_milters = inet:127.0.0.1:8891," in main.splitlines()
    assert "content_filter = civicaup:[127.0.0.1]:10035" in block(main)
    assert len(backups(etc, "main.cf")) == 2


def test_bad_input_is_one_line_and_exit_2(scratch: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    etc, config, env = scratch
    cases = [
        ["setup", "postfix", "--policy", "nowhere"],
        ["setup", "postfix", "--policy", POLICY, "--mode", "sideways"],
        ["setup", "postfix", "--policy", POLICY, "--apply", "--config-dir", str(tmp_path / "missing")],
    ]
    for args in cases:
        r = civicaup(env, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    # a unix socket outside the chroot of a chrooted smtpd cannot work
    (etc / "master.cf").write_text(MASTER_CF.replace("smtp      inet  n       -       n", "smtp inet n - y"))
    r = civicaup(env, "setup", "postfix", "--policy", POLICY)
    assert r.returncode == 2 and "chrooted" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # a configuration that does not validate
    config.write_text(config.read_text().replace('"unix:/run/civicaup/milter.sock"', '"nowhere"'))
    r = civicaup(env, "setup", "postfix", "--policy", POLICY)
    assert r.returncode == 2 and "listen.milter" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (etc / "main.cf").read_text() == MAIN_CF and not backups(etc, "main.cf")
    # a block whose markers were damaged by hand is not guessed at
    (etc / "main.cf").write_text(MAIN_CF + "# civicaup begin\nmilter_protocol = 6\n")
    config.write_text(config.read_text().replace('"nowhere"', '"127.0.0.1:8890"'))
    r = civicaup(env, "setup", "postfix", "--policy", POLICY, "--apply")
    assert r.returncode == 2 and "markers" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not backups(etc, "main.cf")


# ----------------------------------------------------------------------------------------- integration tests

BASE_MILTER_KEYS = ("milter_default_action", "milter_protocol", "milter_connect_timeout", "milter_command_timeout",
                    "milter_content_timeout")


class BareInstance(PostfixInstance):
    """The private instance (directories, ports, SMTP sink) with one plain smtpd and no civicaup wiring:
    `civicaup setup postfix --apply` adds it between writing the base configuration and `postfix start`."""

    setup: Any = None  # called with the instance once the base configuration is written

    def write_config(self) -> None:
        super().write_config()
        main = [ln for ln in (self.config / "main.cf").read_text().splitlines()
                if ln.partition(" = ")[0] not in BASE_MILTER_KEYS]
        (self.config / "main.cf").write_text("\n".join(main) + "\n")
        (self.config / "master.cf").write_text(f"127.0.0.1:{self.milter_port} inet n - n - - smtpd\n"
                                               + MASTER_SERVICES)
        self.setup(self)


class Filter:
    """The civicaup command setup printed ('# runs beside Postfix: ...'), started by PID."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        argv = command.split()
        assert argv[0] == "civicaup" and argv[1] in ("milter", "relay"), command
        self.argv, self.env, self.log = [CIVICAUP, *argv[1:]], env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"{self.argv[1]} did not start: {line!r} {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class World:
    """A civicaup home and civicaup.toml, a sink, a bare Postfix wired by setup, and the filter setup names."""

    def __init__(self, root: Path, mode: str) -> None:
        from aiosmtpd.controller import Controller

        self.root, self.mode = root, mode
        self.home = root / "home"
        self.home.mkdir()
        self.sink = Sink()
        self.sink_port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink_port,
                                     data_size_limit=200_000_000)
        self.postfix = BareInstance(sink_port=self.sink_port, milters={"front": ""})
        self.postfix.setup = self._setup
        self.front = self.postfix.milter_port
        self.postfix.plain_port = self.postfix.queue_port = self.front  # the only smtpd of the base config
        hop = free_port()
        self.postfix.reinject_port = hop  # start() waits for it: the listener setup adds
        self.config = self.home / "civicaup.toml"
        self.config.write_text(toml({
            "data_dir": self.home,
            "listen": {"milter": f"unix:{self.postfix.root}/civicaup-milter.sock",
                       "relay": f"127.0.0.1:{free_port()}"},
            "mail": {"next_hop": f"127.0.0.1:{hop}", "milter_timeout_s": 30,
                     "postfix_config_dir": self.postfix.config}}))
        self.env = env_for(self.home, self.config)
        self.filter: Filter | None = None
        self.setup_output = ""

    def _setup(self, instance: PostfixInstance) -> None:
        # no --config-dir: mail.postfix_config_dir of the same civicaup.toml names the instance's folder
        r = civicaup(self.env, "setup", "postfix", "--policy", POLICY, "--mode", self.mode, "--apply")
        assert r.returncode == 0, r.stderr
        self.setup_output = r.stdout
        [run] = [ln.split(": ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("# runs beside Postfix: ")]
        self.filter = Filter(run, self.env, self.root / f"{self.mode}.log")
        self.filter.start()

    def start(self) -> None:
        r = civicaup(self.env, "directory", "import", str(BUILTIN / POLICY / "directory.csv"), "--policy", POLICY)
        assert r.returncode == 0, r.stderr
        self.controller.start()
        self.postfix.start()

    def stop(self) -> None:
        try:
            self.postfix.cleanup()
        finally:
            if self.filter is not None:
                self.filter.stop()
            self.controller.stop()

    def send(self, msg: bytes, rcpts: list[str], sender: str = SENDER) -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", self.front, timeout=120) as smtp:
            return smtp.sendmail(sender, rcpts, msg)

    def delivered(self, token: str, n: int = 1, timeout: float = 30.0) -> list[tuple[str, list[str], bytes]]:
        deadline = time.monotonic() + timeout
        while True:
            with self.sink.lock:
                found = [m for m in self.sink.messages if token.encode() in m[2]]
            if len(found) >= n or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def held(self, token: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            r = civicaup(self.env, "quarantine", "list", "--policy", POLICY, "--json")
            assert r.returncode == 0, r.stderr
            rows = [h for h in json.loads(r.stdout) if token in h["subject"]]
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.3)


def world_for(mode: str, factory: pytest.TempPathFactory) -> Iterator[World]:
    reason = postfix_missing()
    if reason:
        pytest.skip(reason)
    w = World(factory.mktemp(f"setup-{mode}"), mode)
    try:
        w.start()
        yield w
    except BaseException:
        print(w.postfix.log_tail())
        raise
    finally:
        w.stop()


@pytest.fixture(scope="module")
def milter_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_for("milter", tmp_path_factory)


@pytest.fixture(scope="module")
def filter_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_for("content-filter", tmp_path_factory)


def text_message(to: str, subject: str, body: str) -> bytes:
    return (f"From: Pat Jones <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@test>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


CLEAN = "Dana,\r\n\r\nThe budget meeting moved to 3 pm Thursday.\r\n\r\nPat"
THREAT = "Dana,\r\n\r\nIf you write me up again I will kill you. Watch your back.\r\n\r\nPat"
PICNIC = "All,\r\n\r\nThe Public Works picnic is Saturday June 6 at Walker Lake.\r\n\r\nPat"
THREAT_REPLY = "5.7.1 mail-offensive-threatening clause e: "

def _header(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n"


@pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing()))
@pytest.mark.timeout(600)
def test_milter_wiring_from_setup_only(milter_world: World) -> None:
    w = milter_world
    main = (w.postfix.config / "main.cf").read_text()
    assert f"smtpd_milters = unix:{w.postfix.root}/civicaup-milter.sock" in block(main)
    assert "#civicaup-replaced: smtpd_milters = " in main.splitlines()  # the base's empty value, replaced

    token = f"budget-{uuid.uuid4().hex[:8]}"
    assert w.send(text_message(COLLEAGUE, f"Budget meeting {token}", CLEAN), [COLLEAGUE]) == {}
    [(_, rcpts, data)] = w.delivered(token)
    assert rcpts == [COLLEAGUE] and b"\r\nX-Civicaup-Decision: allow\r\n" in _header(data)

    token = f"threat-{uuid.uuid4().hex[:8]}"
    with pytest.raises(smtplib.SMTPDataError) as exc:
        w.send(text_message(COLLEAGUE, f"about yesterday {token}", THREAT), [COLLEAGUE])
    assert exc.value.smtp_code == 550 and exc.value.smtp_error.decode().startswith(THREAT_REPLY)
    assert w.delivered(token, timeout=1.0) == []

    token = f"picnic-{uuid.uuid4().hex[:8]}"
    assert w.send(text_message(ALL_STAFF, f"Annual picnic {token}", PICNIC), [ALL_STAFF]) == {}
    [held] = w.held(token)
    assert (held["status"], held["rule"], held["clause"]) == ("held", "mail-all-users", "d")
    assert w.delivered(token, timeout=1.0) == []
    # release goes back in through the re-injection listener setup added (mail.next_hop), without the milter
    r = civicaup(w.env, "quarantine", "release", str(held["id"]), "--as", COLLEAGUE)
    assert r.returncode == 0, r.stderr
    [(mail_from, rcpts, data)] = w.delivered(token)
    assert (mail_from, rcpts) == (SENDER, [ALL_STAFF]) and b"X-Civicaup-Decision" not in data


@pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing()))
@pytest.mark.timeout(600)
def test_content_filter_wiring_from_setup_only(filter_world: World) -> None:
    w = filter_world
    main = (w.postfix.config / "main.cf").read_text()
    assert any(ln.startswith("content_filter = civicaup:[127.0.0.1]:") for ln in block(main))

    token = f"budget-{uuid.uuid4().hex[:8]}"
    assert w.send(text_message(COLLEAGUE, f"Budget meeting {token}", CLEAN), [COLLEAGUE]) == {}
    [(_, rcpts, data)] = w.delivered(token)
    assert rcpts == [COLLEAGUE] and b"\r\nX-Civicaup-Decision: allow\r\n" in _header(data)

    token = f"picnic-{uuid.uuid4().hex[:8]}"
    assert w.send(text_message(ALL_STAFF, f"Annual picnic {token}", PICNIC), [ALL_STAFF]) == {}
    [held] = w.held(token)
    assert (held["status"], held["rule"], held["clause"]) == ("held", "mail-all-users", "d")
    assert held["recipients"] == [ALL_STAFF]

    # after the queue, the relay's 550 comes back to the sender as Postfix's bounce, quoting the clause
    token = f"threat-{uuid.uuid4().hex[:8]}"
    assert w.send(text_message(COLLEAGUE, f"about yesterday {token}", THREAT), [COLLEAGUE]) == {}
    deadline = time.monotonic() + 60
    bounce: list[tuple[str, list[str], bytes]] = []
    while not bounce and time.monotonic() < deadline:
        with w.sink.lock:
            bounce = [m for m in w.sink.messages if m[0] == "" and m[1] == [SENDER] and token.encode() in m[2]]
        time.sleep(0.2)
    assert bounce, w.postfix.log_tail()
    text = bounce[0][2].decode("utf-8", "replace")
    assert "550 " + THREAT_REPLY.strip() in " ".join(text.split()), text[:3000]
    assert not [m for m in w.sink.messages if m[1] == [COLLEAGUE] and token.encode() in m[2]]
