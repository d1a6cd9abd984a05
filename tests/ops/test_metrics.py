"""GET /metrics adds up what every civicaup process counted: decisions made by CLI commands, the API, the milter
and a Squid helper (each its own process), their errors, archive imports, and the quarantine read from the store,
scraped over HTTP from a real `civicaup serve` and parsed with prometheus_client's own parser."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.mail.miltertools import FakeMTA

from .parts import BROADCAST, CIVICAUP, Running, clean_env, make_install

AT = "2025-03-04T10:00"  # a Tuesday morning: working hours in every pack
Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(port: int) -> tuple[dict[Sample, float], str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        assert r.status == 200
        content_type = r.headers["Content-Type"]
        text = r.read().decode()
    assert content_type.startswith("text/plain")
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, text


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def decision_key(d: dict[str, object]) -> tuple[str, str, str]:
    findings = d["findings"]
    assert isinstance(findings, list)
    return str(d["channel"]), str(d["action"]), findings[0]["category"] if findings else "none"


def api_post(port: int, path: str, token: str, body: dict[str, str]) -> dict[str, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_metrics_add_up_every_process(tmp_path: Path) -> None:
    inst = make_install(tmp_path)
    expected: Counter[tuple[str, str, str]] = Counter()
    serve = Running(inst, "serve", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0", ready="civicaup serving")
    try:
        port = serve.port()
        # CLI decisions, one process each
        blocked = json.loads(inst.ok("check", "url", "http://blocked.example/", "--policy", "kirkwood-mo", "--at", AT,
                                     "--json"))
        plain = json.loads(inst.ok("check", "url", "http://example.com/", "--policy", "kirkwood-mo", "--at", AT,
                                   "--json"))
        software = json.loads(inst.ok("check", "software", "utorrent", "--policy", "kirkwood-mo", "--json"))
        (tmp_path / "broadcast.eml").write_bytes(BROADCAST)
        mail = json.loads(inst.ok("check", "mail", str(tmp_path / "broadcast.eml"), "--policy", "kirkwood-mo",
                                  "--json"))
        assert blocked["action"] == "block" and plain["action"] == "allow"
        for d in (blocked, plain, software, mail):
            expected[decision_key(d)] += 1

        # the API, in the serve process
        token = inst.ok("token", "create", "--as", "lee.chan@kirkwoodmo.org", "--policy", "kirkwood-mo").strip()
        via_api = api_post(port, "/v1/decide/software", token, {"name": "utorrent"})
        expected[decision_key(via_api)] += 1

        # the milter: one message allowed, one held (quarantined), one connection with a broken packet
        milter = Running(inst, "milter", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0", "--no-journal",
                         ready="listening on")
        try:
            mta = FakeMTA(("127.0.0.1", milter.port()))
            headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", "dana.reed@kirkwoodmo.org"), ("Subject", "hi")]
            assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], headers,
                               b"Hi Dana\r\n")[-1] == (b"c", b"")
            expected[("mail", "allow", "none")] += 1
            headers = [("From", "Pat Jones <pat.jones@kirkwoodmo.org>"), ("To", "all-users@kirkwoodmo.org"),
                       ("Subject", "Picnic")]
            assert mta.message("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"], headers,
                               b"The picnic is Saturday.\r\n")[-1][0] == b"d"  # discarded: held
            mta.close()
            broken = FakeMTA(("127.0.0.1", milter.port()))
            broken.sock.sendall(b"\x00\x00\x00\x00X")  # a packet of length 0: a protocol error
            assert broken.sock.recv(10) == b""  # the milter hangs up
            broken.sock.close()
        finally:
            assert milter.stop() == 0, milter.stderr
        [held] = json.loads(inst.ok("quarantine", "list", "--json"))
        shown = json.loads(inst.ok("quarantine", "show", str(held["id"]), "--as", "dana.reed@kirkwoodmo.org",
                                   "--json"))
        expected[decision_key({**shown["decision"], "channel": "mail"})] += 1

        # a Squid helper: two lines for a blocked site (the second from its cache), two plain, one malformed
        lines = (b"0 http://blocked.example/ - 127.0.0.1 GET\n1 http://blocked.example/ - 127.0.0.1 GET\n"
                 b"2 http://example.com/ pat.jones 127.0.0.1 GET\n3 http://example.com/ pat.jones 127.0.0.1 GET\n"
                 b"4 nonsense\n")
        r = subprocess.run([CIVICAUP, "squid-helper", "--policy", "kirkwood-mo"], input=lines, capture_output=True,
                           env={**inst.env, "CIVICAUP_FAKE_NOW": AT}, timeout=120)
        assert r.returncode == 0, r.stderr
        answers = dict(line.split(b" ", 1) for line in r.stdout.splitlines())
        assert answers[b"0"].startswith(b"ERR") and answers[b"1"].startswith(b"ERR")
        assert answers[b"2"].startswith(b"OK") and b"bad" in answers[b"4"]
        expected[decision_key(blocked)] += 2
        expected[decision_key(plain)] += 2

        # an archive import: two messages and one of them again
        box = tmp_path / "box"
        box.mkdir()
        (box / "a.eml").write_bytes(BROADCAST)
        (box / "b.eml").write_bytes(b"From: dana.reed@kirkwoodmo.org\r\nSubject: Budget\r\n\r\nSee attached.\r\n")
        (box / "c.eml").write_bytes(BROADCAST)
        report = json.loads(inst.ok("archive", "import", str(box), "--policy", "kirkwood-mo", "--json"))
        assert (report["imported"], report["duplicate"]) == (2, 1)

        got, text = scrape(port)
    finally:
        assert serve.stop() == 0, serve.stderr

    # decisions: each process's counts, added up
    decided = {(dict(lb)["channel"], dict(lb)["action"], dict(lb)["category"]): v
               for (name, lb), v in got.items() if name == "civicaup_decisions_total" and dict(lb)["pack"] ==
               "kirkwood-mo"}
    assert decided == {k: float(v) for k, v in expected.items()}, text

    # latency: one observation per engine evaluation (the helper evaluates only what is not cached)
    def count(channel: str) -> float:
        return got[("civicaup_decision_seconds_count", labels(channel=channel, pack="kirkwood-mo"))]
    assert count("mail") == 3 and count("software") == 2
    assert 3 <= count("web") <= 6
    for channel in ("mail", "software", "web"):
        assert got[("civicaup_decision_seconds_bucket", labels(channel=channel, le="+Inf", pack="kirkwood-mo"))] \
            == count(channel)
        assert got[("civicaup_decision_seconds_sum", labels(channel=channel, pack="kirkwood-mo"))] > 0

    assert got[("civicaup_milter_errors_total", labels(kind="protocol"))] == 1
    assert got[("civicaup_helper_errors_total", labels(kind="bad-request"))] == 1
    for result in ("imported", "duplicate", "failed"):
        assert got.get(("civicaup_archive_ingested_total", labels(pack="kirkwood-mo", result=result)), 0.0) \
            == report[result]
    assert got[("civicaup_quarantine_messages", labels(pack="kirkwood-mo"))] == 1
    assert 0 < got[("civicaup_quarantine_oldest_age_seconds", labels(pack="kirkwood-mo"))] < 3600

    # every process that has exited folded its files into the archive files
    left = [p.name for p in (inst.home / "metrics").glob("*.db")]
    assert "counter_archive.db" in left and "histogram_archive.db" in left
    assert [n for n in left if "archive" not in n] == []


def test_metrics_route_is_open_to_loopback_and_needs_an_it_token_otherwise(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from civicaup.governance import tokens
    from civicaup.interfaces.api.app import create_app
    from civicaup.stores.db import open_store

    inst = make_install(tmp_path, index=False)
    monkeypatch.setenv("CIVICAUP_HOME", str(inst.home))
    engine = open_store(f"sqlite:///{inst.home / 'civicaup.db'}")
    app = create_app(policies=["kirkwood-mo"], engine=engine)
    it = tokens.create(engine, "kirkwood-mo", "lee.chan@kirkwoodmo.org", days=1).token
    employee = tokens.create(engine, "kirkwood-mo", "pat.jones@kirkwoodmo.org", days=1).token
    remote = TestClient(app)  # its client address is not loopback
    assert remote.get("/metrics").status_code == 401
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {employee}"}).status_code == 403
    r = remote.get("/metrics", headers={"Authorization": f"Bearer {it}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'civicaup_quarantine_messages{pack="kirkwood-mo"} 0.0' in r.text
    local = TestClient(app, client=("127.0.0.1", 40000))
    assert local.get("/metrics").status_code == 200
    assert "/metrics" not in app.openapi()["paths"]


SNIPPET = """
import sys
from civicaup.channels import events
from civicaup.engine.evaluate import evaluate
from civicaup.operations import metrics
from civicaup.policy.registry import get_pack

pack = get_pack("kirkwood-mo")
for _ in range(3):
    decision = evaluate(events.software_event("utorrent", pack), pack)
metrics.decided(object(), 0.1)  # not a decision: logged once, never raised
metrics.decided(object(), 0.1)
print(metrics.mode(), decision.action, decision.findings[0].category)
sys.stdout.write(metrics.exposition()[0].decode())
"""


def test_without_a_writable_metrics_folder_a_process_counts_in_memory(tmp_path: Path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the data directory would be: <home>/metrics cannot be made\n")
    r = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, timeout=120,
                       env=clean_env(home))
    assert r.returncode == 0, r.stderr
    first, _, text = r.stdout.partition("\n")
    mode, action, category = first.split()
    assert mode == "in-process"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    key = ("civicaup_decisions_total", labels(action=action, category=category, channel="software",
                                              pack="kirkwood-mo"))
    assert samples[key] == 3
    warnings = [line for line in r.stderr.splitlines() if "metrics:" in line]
    assert len(warnings) == 2 and "Traceback" not in r.stderr, r.stderr  # the folder once, the bad call once
    assert not any(p.name.endswith(".db") for p in tmp_path.rglob("*")), os.listdir(tmp_path)
