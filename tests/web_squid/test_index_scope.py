"""The Squid helper's category index is its own: running a helper in a process never changes the index the
engine's web check reads for other code (the API, the CLI) in the same process."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from civicaup.engine.checks import web as web_checks
from civicaup.governance import tokens
from civicaup.interfaces.api.app import create_app
from tests.governance.helpers import make_store

from .test_protocol import answers, fields, helper

PAT = "pat.jones@kirkwoodmo.org"


def test_helper_index_does_not_leak_into_api_decisions(index: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path, monkeypatch)  # a data directory without a built index: the starter lists
    before = web_checks.index()
    h = helper(index)  # the protocol tests' helper, with their small index (no pornhub.com in it)
    got = answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -", "2 http://www.pornhub.com/ - 10.0.0.1 GET -")
    assert fields(got["1"])["result"] == "ERR" and fields(got["2"])["result"] == "OK"
    h.reload(sync=True)  # a reload installs a new state: still nothing process-wide
    assert web_checks.index() is before
    headers = {"Authorization": "Bearer " + tokens.create(store, "kirkwood-mo", PAT).token}
    with TestClient(create_app(engine=store), raise_server_exceptions=False) as client:
        r = client.post("/v1/decide/url", json={"url": "http://www.pornhub.com/"}, headers=headers)
        assert r.status_code == 200 and r.json()["action"] == "block"  # the starter lists, not the helper's
        r = client.post("/v1/decide/url", json={"url": "http://badsite.example/"}, headers=headers)
        assert r.status_code == 200 and r.json()["action"] == "allow"
    # and the helper still decides with its own index after the API ran
    assert fields(answers(h, "3 http://casino.example/x - 10.0.0.1 GET -")["3"])["result"] == "ERR"
