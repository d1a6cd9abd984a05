from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from civicaup.governance import tokens
from civicaup.interfaces.api.app import create_app
from tests.governance.helpers import Sink, make_store, start_sink


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    return make_store(tmp_path, monkeypatch)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    yield from start_sink(monkeypatch)


@pytest.fixture
def client(store: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine=store), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth(store: Engine) -> Callable[[str], dict[str, str]]:
    """Headers acting as a person (of whichever city lists them)."""
    made: dict[str, dict[str, str]] = {}

    def headers(email: str) -> dict[str, str]:
        if email not in made:
            from civicaup.governance.people import policy_for
            made[email] = {"Authorization": "Bearer " + tokens.create(store, policy_for(store, email, None),
                                                                      email).token}
        return made[email]
    return headers
