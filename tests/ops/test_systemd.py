"""The systemd units and socket activation.

`civicaup setup systemd` fills the shipped units in for this machine: every unit it prints passes
`systemd-analyze verify` without a single warning (verify reads unit files offline; it needs no systemd running as
PID 1, so it runs in a container, and in CI where the `systemd` Debian package provides it), and, whether or not
verify can run, a parse of each unit checks the keys that matter (absolute ExecStart of the real program, the
hardening, reload by SIGHUP, the socket's owner and mode). `--apply DIR` writes them with backups.

Socket activation: `civicaup milter` started as systemd starts it from civicaup-milter.socket -- the listening unix
socket as descriptor 3, LISTEN_FDS=1 and LISTEN_PID set to its own pid by a small exec shim -- answers the milter
protocol on that socket, tells NOTIFY_SOCKET it is ready, survives a restart without losing a queued connection,
and leaves the socket (systemd's) in place when it stops.
"""
from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mail.miltertools import FakeMTA

CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
ANALYZE = shutil.which("systemd-analyze") or ("/usr/bin/systemd-analyze"
                                              if os.path.exists("/usr/bin/systemd-analyze") else None)
UNITS = ("civicaup-milter.socket", "civicaup-milter.service", "civicaup-relay.service", "civicaup-serve.service")
SERVICES = UNITS[1:]
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "CapabilityBoundingSet": "", "SystemCallFilter": "@system-service",
             "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "StateDirectory": "civicaup",
             "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "Restart": "on-failure",
             "Type": "notify"}
# What systemd passes: the socket as descriptor 3 and LISTEN_PID = the pid that execs civicaup.
SHIM = ("import os, sys\n"
        "fd = int(sys.argv[1])\n"
        "if fd != 3:\n"
        "    os.dup2(fd, 3)\n"
        "    os.close(fd)\n"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='civicaup-milter.socket')\n"
        "os.execv(sys.argv[2], sys.argv[2:])\n")


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) pairs in order, as systemd reads a unit file (comments, blank lines skipped)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep, f"not a unit file line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


@pytest.fixture
def config(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    home.mkdir()
    path = tmp_path / "civicaup.toml"
    path.write_text(f'data_dir = "{home}"\npacks = ["kirkwood-mo"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVICAUP_", "LISTEN_", "NOTIFY_"))}
    return {**env, "CIVICAUP_CONFIG": str(path)}, path


def civicaup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVICAUP, *args], env=env, capture_output=True, text=True, timeout=120)


def rendered(env: dict[str, str], *args: str) -> dict[str, str]:
    r = civicaup(env, "setup", "systemd", *args)
    assert r.returncode == 0, r.stderr
    parts = re.split(r"^# ---- (\S+)\n", r.stdout, flags=re.MULTILINE)
    assert parts[0] == ""
    return {name: text.rstrip("\n") + "\n" for name, text in zip(parts[1::2], parts[2::2])}


def verify_or_skip(folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on unit files in `folder`; skips (saying why) where it cannot run at all."""
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the units were still parsed")
    probe = folder / "civicaup-probe.service"
    probe.write_text("[Unit]\nDescription=probe\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n", encoding="utf-8")
    r = subprocess.run([ANALYZE, "verify", "--man=no", str(probe)], capture_output=True, text=True, timeout=120,
                       cwd=folder)
    probe.unlink()
    if r.returncode != 0 or r.stderr.strip():
        pytest.skip(f"systemd-analyze verify cannot run here (a known-good unit fails: "
                    f"{(r.stderr.strip() or 'exit ' + str(r.returncode)).splitlines()[0]}); the units were parsed")
    return subprocess.run([ANALYZE, "verify", "--man=no", *[str(folder / n) for n in names]], capture_output=True,
                          text=True, timeout=120, cwd=folder)


# ------------------------------------------------------------------------------------------------ the units

def test_rendered_units_have_the_real_program_and_the_hardening(config: tuple[dict[str, str], Path]) -> None:
    env, path = config
    units = rendered(env)
    assert sorted(units) == sorted(UNITS)
    for name, text in units.items():
        assert not re.search(r"@[A-Z_]+@", text), name
        unit = parse_unit(text)
        if name.endswith(".socket"):
            assert values(unit, "Socket", "ListenStream") == ["/var/spool/postfix/civicaup/milter.sock"]
            assert values(unit, "Socket", "SocketUser") == ["civicaup"]
            assert values(unit, "Socket", "SocketGroup") == ["postfix"]
            assert values(unit, "Socket", "SocketMode") == ["0660"]
            assert values(unit, "Install", "WantedBy") == ["sockets.target"]
            continue
        [start] = values(unit, "Service", "ExecStart")
        program, command, *args = start.split()
        assert os.path.isabs(program) and os.access(program, os.X_OK)
        assert Path(program).samefile(CIVICAUP)
        assert command == name.split("-")[1].split(".")[0]  # milter, relay, serve
        assert args == ["--policy", "kirkwood-mo"]
        assert values(unit, "Service", "Environment") == [f"CIVICAUP_CONFIG={path}"]
        assert values(unit, "Service", "User") == values(unit, "Service", "Group") == ["civicaup"]
        assert values(unit, "Service", "ReadWritePaths") == [f"-{path.parent / 'home'}"]
        for key, value in HARDENING.items():
            assert values(unit, "Service", key) == [value], (name, key)
        assert values(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_every_unit_passes_systemd_analyze_verify(config: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = config
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in rendered(env).items():
        (folder / name).write_text(text, encoding="utf-8")
    r = verify_or_skip(folder, list(UNITS))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr  # not even a warning
    # the check is real: a misspelt value is reported
    broken = (folder / "civicaup-serve.service").read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt")
    (folder / "civicaup-serve.service").write_text(broken)
    r = verify_or_skip(folder, ["civicaup-serve.service"])
    assert "strikt" in r.stderr


def test_security_exposure_is_low(config: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """systemd's own sandboxing review: each service rates OK (below 4 of 10) or better."""
    env, _ = config
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in rendered(env).items():
        (folder / name).write_text(text, encoding="utf-8")
    verify_or_skip(folder, list(UNITS))
    assert ANALYZE is not None
    for name in SERVICES:
        r = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(folder / name)],
                           capture_output=True, text=True, timeout=120, cwd=folder)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        if m is None:
            pytest.skip(f"systemd-analyze security --offline is not supported here: {r.stderr.strip()[:200]}")
        assert float(m.group(1)) < 4.0, (name, r.stdout[-400:])


def test_configured_socket_path_and_several_policies(config: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, path = config
    path.write_text(f'data_dir = "{tmp_path / "home"}"\npacks = ["kirkwood-mo", "ky-36-082"]\n'
                    '\n[listen]\nmilter = "unix:/run/civicaup/milter.sock"\n')
    r = civicaup(env, "setup", "systemd", "--user", "civicaup-svc")
    assert r.returncode == 0 and "run one of each per city" in r.stderr
    units = rendered(env, "--user", "civicaup-svc")
    sock = parse_unit(units["civicaup-milter.socket"])
    assert values(sock, "Socket", "ListenStream") == ["/run/civicaup/milter.sock"]
    assert values(sock, "Socket", "SocketUser") == ["civicaup-svc"]
    serve = values(parse_unit(units["civicaup-serve.service"]), "Service", "ExecStart")[0]
    milter = values(parse_unit(units["civicaup-milter.service"]), "Service", "ExecStart")[0]
    assert serve.endswith(" serve --policy kirkwood-mo --policy ky-36-082")
    assert milter.endswith(" milter --policy kirkwood-mo")


def test_apply_writes_units_and_keeps_backups(config: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = config
    target = tmp_path / "system"
    target.mkdir()
    expected = rendered(env)
    r = civicaup(env, "setup", "systemd", "--apply", str(target))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(UNITS)
    for name, text in expected.items():
        assert (target / name).read_text() == text
        assert (target / name).stat().st_mode & 0o777 == 0o644
    assert "systemctl daemon-reload" in r.stdout
    r = civicaup(env, "setup", "systemd", "--apply", str(target))
    assert r.returncode == 0 and r.stdout.count(": unchanged") == len(UNITS)
    (target / "civicaup-serve.service").write_text("[Service]\nExecStart=/bin/true\n")  # an edit by hand
    r = civicaup(env, "setup", "systemd", "--apply", str(target))
    assert r.returncode == 0 and r.stdout.count(": unchanged") == len(UNITS) - 1
    [backup] = [p for p in target.iterdir() if p.name.endswith(".bak")]
    assert backup.name.startswith("civicaup-serve.service.") and backup.read_text().startswith("[Service]")
    assert (target / "civicaup-serve.service").read_text() == expected["civicaup-serve.service"]


@pytest.mark.parametrize("args,message", [
    (["--apply", "/nonexistent/folder"], "no such folder"),
    (["--user", "Not A User"], "--user"),
    (["--user", "root"], "a user of their own"),
    (["/tmp"], "only for --apply"),
    (["--policy", "nowhere-city"], "unknown policy"),
])
def test_bad_input_is_one_line(config: tuple[dict[str, str], Path], args: list[str], message: str) -> None:
    env, _ = config
    r = civicaup(env, "setup", "systemd", *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_no_policy_anywhere_is_an_error(config: tuple[dict[str, str], Path]) -> None:
    env, path = config
    path.write_text(f'data_dir = "{path.parent / "home"}"\n')
    r = civicaup(env, "setup", "systemd")
    assert r.returncode == 2 and "--policy" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ socket activation

def _start_activated(env: dict[str, str], sock: socket.socket, *extra: str) -> subprocess.Popen[bytes]:
    fd = sock.fileno()
    return subprocess.Popen([sys.executable, "-c", SHIM, str(fd), CIVICAUP, "milter", "--policy", "kirkwood-mo",
                             "--no-journal", "--listen", "127.0.0.1:1", *extra],  # --listen is not used
                            env=env, pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _first_line(proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    assert "listening on" in line, (line, proc.stderr.read() if proc.poll() is not None else b"")  # type: ignore
    return line


def _message(mta: FakeMTA, rcpt: str) -> tuple[bytes, bytes]:
    headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", rcpt), ("Subject", "hello")]
    return mta.message("pat.jones@kirkwoodmo.org", [rcpt], headers, b"Hi there\r\n")[-1]


def test_milter_takes_the_socket_systemd_passes(config: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = config
    path = str(tmp_path / "milter.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what civicaup-milter.socket holds
    listener.bind(path)
    listener.listen(64)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's NOTIFY_SOCKET
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    env = {**env, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    try:
        early = FakeMTA(path)  # Postfix connects before the milter runs: the kernel queues the connection
        proc = _start_activated(env, listener)
        try:
            assert _message(early, "dana.reed@kirkwoodmo.org") == (b"c", b"")
            line = _first_line(proc)
            assert f"unix:{path} (from systemd)" in line
            got = notify.recv(4096).decode()
            assert got.startswith("READY=1\n") and f"STATUS=listening on unix:{path}" in got
            early.close()
            os.kill(proc.pid, signal.SIGHUP)
            assert notify.recv(4096) == b"RELOADING=1" and notify.recv(4096) == b"READY=1"
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(60) == 0
            assert notify.recv(4096) == b"STOPPING=1"
            waiting = FakeMTA(path)  # while no milter runs
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert os.path.exists(path), "the socket is systemd's: the milter must not remove it"
        # a restart (Restart=on-failure, or systemctl restart): the connection made meanwhile is answered
        proc = _start_activated(env, listener)
        try:
            assert _message(waiting, "dana.reed@kirkwoodmo.org") == (b"c", b"")
            waiting.close()
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        listener.close()
        notify.close()


def test_several_milter_processes_share_the_socket_systemd_passes(config: tuple[dict[str, str], Path],
                                                                   tmp_path: Path) -> None:
    """--processes 2 under socket activation: the supervisor (the main PID) alone talks to systemd; both
    processes answer on systemd's socket, which stays in place after the stop."""
    env, _ = config
    path = str(tmp_path / "milter.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    env = {**env, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    try:
        proc = _start_activated(env, listener, "--processes", "2")
        try:
            line = _first_line(proc)
            assert f"unix:{path} (from systemd)" in line and "2 processes" in line
            got = notify.recv(4096).decode()
            assert got.startswith("READY=1\n") and "2 processes" in got
            for _ in range(8):
                mta = FakeMTA(path)
                assert _message(mta, "dana.reed@kirkwoodmo.org") == (b"c", b"")
                mta.close()
            os.kill(proc.pid, signal.SIGHUP)
            assert notify.recv(4096) == b"RELOADING=1" and notify.recv(4096) == b"READY=1"
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(60) == 0
            assert notify.recv(4096) == b"STOPPING=1"
            notify.settimeout(0.5)
            with pytest.raises(TimeoutError):  # nothing from the two processes: systemd would refuse it
                notify.recv(4096)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert os.path.exists(path), "the socket is systemd's: the milter must not remove it"
    finally:
        listener.close()
        notify.close()


def test_inherited_listen_variables_for_another_pid_are_ignored(config: tuple[dict[str, str], Path],
                                                                 tmp_path: Path) -> None:
    """LISTEN_PID names the process the sockets are for; a child that inherits the variables listens itself."""
    env, _ = config
    path = tmp_path / "own.sock"
    env = {**env, "LISTEN_PID": "1", "LISTEN_FDS": "1"}
    proc = subprocess.Popen([CIVICAUP, "milter", "--policy", "kirkwood-mo", "--no-journal", "--listen", f"unix:{path}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _first_line(proc)
        assert f"unix:{path}" in line and "systemd" not in line
        mta = FakeMTA(str(path))
        assert _message(mta, "dana.reed@kirkwoodmo.org") == (b"c", b"")
        mta.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        deadline = time.monotonic() + 5
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not path.exists()  # its own socket: removed when it stops
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
