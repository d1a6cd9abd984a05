from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.interfaces.api.app import create_app
from tests.console.helpers import ARGS, CHROMIUM
from tests.governance.helpers import Sink, free_port, make_store, start_sink


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    return make_store(tmp_path, monkeypatch)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    yield from start_sink(monkeypatch)


@pytest.fixture
def server(store: Engine) -> Iterator[str]:
    """The API and console served by uvicorn on a free loopback port, in a thread of this process."""
    import uvicorn
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine=store), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the console did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian's package, driven by Playwright (never `playwright install`)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
