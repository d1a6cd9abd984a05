"""A private Postfix instance on 127.0.0.1 (its own config, queue and data directories), for the integration tests
and bench/mail.py. It never touches the machine's own Postfix configuration and is started and stopped with
`postfix -c <its config directory>`.

Listeners (all on 127.0.0.1):
  milter_port   smtpd with smtpd_milters = the civicaup milter (milter_default_action = tempfail)
  plain_port    smtpd without any filter (the baseline for the benchmark)
  queue_port    smtpd without a milter whose mail is passed after the queue to milter_port (content_filter): when
                the filter is down, mail waits in Postfix's queue (used by the fault test)
  reinject_port smtpd without filter: where released mail is re-injected
  filter_ports  one smtpd per entry of `content_filters` (e.g. a civicaup relay), passing mail after the queue to it
Every delivery goes over SMTP to `sink_port` (a local aiosmtpd sink that the test controls).
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"


def postfix_missing() -> str | None:
    """Why Postfix cannot be run here, or None."""
    if not Path(POSTFIX).exists():
        return "Postfix is not installed (Debian package 'postfix'; .ci/apt-packages.txt installs it in CI)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its queue belongs to the postfix user)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_dir() -> str | None:
    """TMPDIR when the postfix user can reach into it (every parent searchable by others), else /tmp."""
    path = Path(tempfile.gettempdir()).resolve()
    if all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents)):
        return None
    return "/tmp"


MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    sink_port: int
    milters: dict[str, str]  # name -> Postfix milter address (inet:127.0.0.1:8890 or unix:/path); one smtpd each
    message_size_limit: int = 120_000_000
    process_limit: int = 100
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="civicaup-postfix-", dir=_base_dir())))
    milter_ports: dict[str, int] = field(default_factory=dict)
    plain_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    reinject_port: int = field(default_factory=free_port)
    started: bool = False
    transport: str = ""  # where every message goes; default the SMTP sink ("discard:" for the benchmark)
    # name -> SMTP content filter (e.g. "smtp:[127.0.0.1]:10025", a civicaup relay): one more smtpd without a milter
    # per entry, on filter_ports[name], whose mail is passed after the queue to that filter
    content_filters: dict[str, str] = field(default_factory=dict)
    filter_ports: dict[str, int] = field(default_factory=dict)
    main_overrides: dict[str, str] = field(default_factory=dict)  # main.cf settings that replace the defaults

    def __post_init__(self) -> None:
        for name in self.milters:
            self.milter_ports.setdefault(name, free_port())
        for name in self.content_filters:
            self.filter_ports.setdefault(name, free_port())

    @property
    def milter_port(self) -> int:
        """The first milter's smtpd (the content filter of queue_port goes there)."""
        return self.milter_ports[next(iter(self.milters))]

    @property
    def config(self) -> Path:
        return self.root / "etc"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def write_config(self) -> None:
        os.chmod(self.root, 0o755)
        self.config.mkdir(exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self.queue.mkdir(exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.root / "data", pf.pw_uid, pf.pw_gid)
        sink = self.transport or f"smtp:[127.0.0.1]:{self.sink_port}"
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config),
            "queue_directory": str(self.queue),
            "data_directory": str(self.root / "data"),
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.civicaup.test",
            "mydomain": "civicaup.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "default_transport": sink,
            "relay_transport": sink,
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "message_size_limit": str(self.message_size_limit),
            "mailbox_size_limit": "0",
            "default_process_limit": str(self.process_limit),
            "smtpd_milters": "",
            "non_smtpd_milters": "",
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "60s",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "3s",
            "smtp_connect_timeout": "5s",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "10000",
            "smtpd_hard_error_limit": "10000",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "default_destination_concurrency_limit": "20",
            "alias_maps": "",
            "alias_database": "",
        }
        main.update(self.main_overrides)
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        no_filter = "-o smtpd_milters= -o content_filter="
        master = (
            "".join(f"127.0.0.1:{self.milter_ports[name]} inet n - n - - smtpd -o smtpd_milters={address}\n"
                    for name, address in self.milters.items()) +
            f"127.0.0.1:{self.plain_port} inet n - n - - smtpd {no_filter}\n"
            f"127.0.0.1:{self.queue_port} inet n - n - - smtpd -o smtpd_milters= "
            f"-o content_filter=smtp:[127.0.0.1]:{self.milter_port}\n"
            f"127.0.0.1:{self.reinject_port} inet n - n - - smtpd {no_filter}\n"
            + "".join(f"127.0.0.1:{self.filter_ports[name]} inet n - n - - smtpd -o smtpd_milters= "
                      f"-o content_filter={target}\n" for name, target in self.content_filters.items())
            + MASTER_SERVICES)
        (self.config / "master.cf").write_text(master)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.config), *args], capture_output=True, text=True,
                              check=check, timeout=60)

    def start(self) -> None:
        self.write_config()
        self._run("check", check=False)  # creates the queue directories with their owners
        self._run("start")
        self.started = True
        deadline = time.monotonic() + 20
        for port in (*self.milter_ports.values(), self.plain_port, self.queue_port, self.reinject_port,
                     *self.filter_ports.values()):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Postfix did not listen on {port}: {self.log_tail()}") from None
                    time.sleep(0.1)

    def stop(self) -> None:
        if self.started:
            self._run("stop", check=False)
            pid_file = self.queue / "pid" / "master.pid"
            deadline = time.monotonic() + 10
            while pid_file.exists() and time.monotonic() < deadline:
                try:
                    os.kill(int(pid_file.read_text().strip()), 0)
                except (ValueError, ProcessLookupError, OSError):
                    break
                time.sleep(0.1)
            self.started = False

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def reload(self) -> None:
        self._run("reload")

    def flush(self) -> None:
        subprocess.run([POSTQUEUE, "-c", str(self.config), "-f"], capture_output=True, timeout=60)

    def queued(self) -> int:
        """Messages still in Postfix's queue (incoming, active, deferred, hold, maildrop)."""
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            d = self.queue / sub
            if d.is_dir():
                n += sum(len(files) for _, _, files in os.walk(d))
        return n

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.maillog.read_text(errors="replace")[-n:]
        except OSError:
            return "(no maillog)"


class FilterProcess:
    """A `civicaup milter` or `civicaup relay` as its own process (argv after `civicaup`), started and stopped by
    its PID: ready once it prints its "listening on" line. Its stderr goes to `log`."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, executable: str | None = None) -> None:
        import sys
        self.argv, self.env, self.log = argv, env, log
        self.executable = executable or str(Path(sys.executable).parent / "civicaup")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        import select
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([self.executable, *self.argv], env=self.env, stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.kill()
            raise RuntimeError(f"{self.argv[0]} did not start: {line!r} {self.log.read_text()[-2000:]}")

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, sig)

    def status(self) -> dict[str, str]:
        """/proc/PID/status as name -> value (e.g. VmHWM, VmRSS: "123456 kB")."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
