"""A pytest plugin that runs tests written for SQLite against PostgreSQL: every store a test opens through
`civicaup.stores.db.open_store` with a SQLite URL is opened instead on a fresh database of the session's real
PostgreSQL (Debian's, on loopback; see tests/records/conftest.py), created at first use, one per SQLite URL.

    .venv/bin/pytest -p tests.ops.pg_everywhere tests/governance tests/mail tests/stores tests/api

Run by hand when the store changes (not in CI: the folders already run on SQLite there). Tests that look
at the SQLite file itself, or start `civicaup` in another process with a SQLite URL, are not meaningful
under it.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.records.conftest import new_pg_database, pg_server  # noqa: F401 - the session's server, as a fixture


@pytest.fixture(autouse=True)
def _stores_on_postgresql(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from civicaup.stores import db

    server = request.getfixturevalue("pg_server")
    real = db._open
    mapped: dict[str, str] = {}

    def opened(url: str) -> Any:
        if url.startswith("sqlite"):
            if url not in mapped:
                mapped[url] = new_pg_database(server)
            url = mapped[url]
        return real(url)

    monkeypatch.setattr(db, "_open", opened)
    yield
