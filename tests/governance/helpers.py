"""Shared set-up for the governance, API and console tests: a private data directory and store with every
pack's demo directory, the CLI run in-process through `main()` (so its error translation is what is tested),
an SMTP sink for released mail, and held messages made by the real mail gateway."""
from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from unittest.mock import patch

import pytest
from sqlalchemy import Engine

from civicaup.policy.registry import BUILTIN, get_pack, pack_ids
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people

OSQUERY = Path(__file__).parent / "osquery"

KIRKWOOD_BROADCAST = (b"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: all-users@kirkwoodmo.org\r\n"
                      b"Subject: Annual picnic\r\nMessage-ID: <picnic-1@kirkwoodmo.org>\r\n"
                      b"Date: Tue, 03 Mar 2026 10:00:00 -0600\r\n\r\nThe picnic is Saturday at Walker Park.\r\n")


def make_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    monkeypatch.delenv("CIVICAUP_DB_URL", raising=False)
    monkeypatch.delenv("CIVICAUP_MAIL_NEXT_HOP", raising=False)
    engine = open_store(f"sqlite:///{home / 'civicaup.db'}")
    for p in pack_ids():
        import_people(engine, get_pack(p), BUILTIN / p / "directory.csv")
    return engine


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`civicaup ARGS...` in this process: (exit status, stdout, stderr)."""
    from civicaup.interfaces.cli.app import main
    capsys.readouterr()
    rc: Any = 0
    with patch.object(sys, "argv", ["civicaup", *args]):
        try:
            main()
        except SystemExit as exc:
            rc = exc.code
    out = capsys.readouterr()
    return int(rc or 0), out.out, out.err


class Sink:
    """An SMTP server on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK"

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[str, list[str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    break
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    from aiosmtpd.controller import Controller
    s = Sink()
    port = free_port()
    c = Controller(s, hostname="127.0.0.1", port=port)
    c.start()
    monkeypatch.setenv("CIVICAUP_MAIL_NEXT_HOP", f"127.0.0.1:{port}")
    try:
        yield s
    finally:
        c.stop()


def hold_mail(store: Engine, policy: str, raw: bytes, mail_from: str, rcpts: list[str]) -> int:
    """Put a message through the real mail gateway; it must be held. Returns the quarantine id."""
    from civicaup.channels.mail.gateway import Envelope, MailGateway
    from civicaup.channels.mail.spool import Spool
    from concurrent.futures import ThreadPoolExecutor
    gw = MailGateway(policy, store=store)
    with Spool() as spool, ThreadPoolExecutor(1) as pool:  # its own thread: a browser test may run a loop here
        spool.write(raw)
        envelope = Envelope(mail_from=mail_from, rcpt_to=rcpts, queue_id="T1")
        verdict = pool.submit(asyncio.run, gw.handle(envelope, spool)).result(60)
    gw.close()
    assert verdict.kind == "discard" and verdict.quarantine_id is not None, verdict
    return verdict.quarantine_id
