"""Shared fixtures for the mail channel: a private data directory and store with the packs' demo directories,
and a helper that runs an asyncio server (milter) in a background thread."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.policy.registry import BUILTIN, get_pack
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people

PACKS = ("kirkwood-mo", "ky-36-082", "west-des-moines-ia")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    monkeypatch.delenv("CIVICAUP_DB_URL", raising=False)
    monkeypatch.delenv("CIVICAUP_MAIL_NEXT_HOP", raising=False)
    engine = open_store(f"sqlite:///{home / 'civicaup.db'}")
    for p in PACKS:
        import_people(engine, get_pack(p), BUILTIN / p / "directory.csv")
    return engine


class LoopThread:
    """An event loop in a daemon thread; `run(coro)` runs a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


class Sink:
    """An SMTP server on 127.0.0.1 that keeps what it receives: (mail_from, rcpt_tos, bytes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.refuse: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        with self.lock:
            sender = "" if envelope.mail_from == "<>" else envelope.mail_from
            self.messages.append((sender, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK"

    def wait(self, n: int, timeout: float = 20.0) -> list[tuple[str, list[str], bytes]]:
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    from .postfix_instance import free_port
    s = Sink()
    port = free_port()
    c = Controller(s, hostname="127.0.0.1", port=port, data_size_limit=200_000_000)
    c.start()
    yield s, port
    c.stop()
