"""The commands as processes: `civicaup milter` and `civicaup relay` print where they listen and stop cleanly on
SIGTERM; `civicaup quarantine list|show|release|reject` with their JSON and exit codes."""
from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from civicaup.channels.mail.gateway import Envelope, MailGateway
from civicaup.channels.mail.spool import Spool

from .conftest import Sink
from .miltertools import FakeMTA
from .postfix_instance import free_port

CIVICAUP = str(Path(sys.executable).parent / "civicaup")
BROADCAST = (b"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: all-users@kirkwoodmo.org\r\nSubject: Picnic\r\n\r\n"
             b"The picnic is Saturday.\r\n")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("CIVICAUP_DB_URL", "CIVICAUP_MAIL_NEXT_HOP")}


def _start(args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([CIVICAUP, *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().decode() if ready else ""
    assert "listening on" in line, (line, proc.stderr.read(2000) if proc.poll() is not None else b"")  # type: ignore
    return proc, line


def _stop(proc: subprocess.Popen[bytes]) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    return proc.wait(30)


def test_milter_command_listens_decides_and_stops_on_sigterm(store: Engine) -> None:
    port = free_port()
    proc, line = _start(["milter", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{port}", "--no-journal"])
    try:
        assert f"inet:127.0.0.1:{port}" in line and "kirkwood-mo" in line
        mta = FakeMTA(("127.0.0.1", port))
        headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", "dana.reed@kirkwoodmo.org"), ("Subject", "hello")]
        assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], headers, b"Hi Dana\r\n")[-1] \
            == (b"c", b"")
        mta.close()
    finally:
        assert _stop(proc) == 0


def test_relay_command(store: Engine, sink: tuple[Sink, int]) -> None:
    s, sink_port = sink
    port = free_port()
    proc, line = _start(["relay", "--policy", "kirkwood-mo", "--listen", f"127.0.0.1:{port}", "--next-hop",
                         f"127.0.0.1:{sink_port}"])
    try:
        assert f"127.0.0.1:{port}" in line
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                          b"From: pat.jones@kirkwoodmo.org\r\nSubject: hi\r\n\r\nHello Dana\r\n")
        [(_, _, data)] = s.wait(1)
        assert data.startswith(b"X-Civicaup-Decision: allow\r\n")
    finally:
        assert _stop(proc) == 0


def test_bad_options_are_one_line_errors(store: Engine) -> None:
    for args in (["milter", "--policy", "nowhere-xx"], ["milter", "--policy", "kirkwood-mo", "--listen", "nope"],
                 ["relay", "--policy", "kirkwood-mo", "--next-hop", "nohost"]):
        r = subprocess.run([CIVICAUP, *args], env=_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_quarantine_commands(store: Engine, sink: tuple[Sink, int]) -> None:
    s, sink_port = sink
    gw = MailGateway("kirkwood-mo", store=store, next_hop=f"127.0.0.1:{sink_port}")
    with Spool() as spool:
        spool.write(BROADCAST)
        v = asyncio.run(gw.handle(Envelope("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"]), spool))
    gw.close()
    qid = str(v.quarantine_id)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CIVICAUP, "quarantine", *args], env=_env(), capture_output=True, text=True,
                              timeout=60)
    r = cli("list", "--json")
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert {k: row[k] for k in ("id", "policy", "sender", "subject", "rule", "clause", "status")} == {
        "id": int(qid), "policy": "kirkwood-mo", "sender": "pat.jones@kirkwoodmo.org", "subject": "Picnic",
        "rule": "mail-all-users", "clause": "d", "status": "held"}
    assert row["approvers"] == [{"rule": "mail-all-users", "clause": "d", "roles": ["department-head"],
                                 "needed": "any"}]
    assert cli("list", "--policy", "west-des-moines-ia", "--json").stdout.strip() == "[]"
    assert "mail-all-users (clause d)" in cli("list").stdout
    r = cli("show", qid, "--as", "dana.reed@kirkwoodmo.org", "--json")
    assert r.returncode == 0 and "The picnic is Saturday." in json.loads(r.stdout)["text"]
    for args in (("show", qid, "--as", "jo.smith@kirkwoodmo.org"), ("release", qid, "--as", "jo.smith@kirkwoodmo.org"),
                 ("release", "424242", "--as", "dana.reed@kirkwoodmo.org"), ("reject", qid, "--as", "x@y.org")):
        r = cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, args
    r = cli("release", qid, "--as", "dana.reed@kirkwoodmo.org")
    assert r.returncode == 0 and "released message" in r.stdout, r.stderr
    assert s.wait(1)[0][2] == BROADCAST
    assert cli("list", "--json").stdout.strip() == "[]"
    assert json.loads(cli("list", "--all", "--json").stdout)[0]["status"] == "released"
