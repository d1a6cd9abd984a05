"""The governance commands as a city's scripts call them: exit 0 on success, 2 with one line on bad input,
--json prints one JSON value."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.governance import tokens

from .helpers import KIRKWOOD_BROADCAST, OSQUERY, Sink, hold_mail, run_cli


def one_line_error(rc: int, err: str) -> None:
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (rc, err)


def test_request_and_approve_through_the_cli(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "request", "software", "Notepad++", "--policy", "ky-36-082",
                         "--as", "jesse.nolan@kycity.gov", "--json")
    assert rc == 0
    req = json.loads(out)["request"]
    assert req["status"] == "pending" and req["approvers"][0]["needed"] == "all"
    rid = str(req["id"])
    rc, out, _ = run_cli(capsys, "approvals", "list", "--as", "linda.carver@kycity.gov", "--inbox", "--json")
    assert rc == 0 and [r["id"] for r in json.loads(out)["requests"]] == [req["id"]]
    rc, out, _ = run_cli(capsys, "approvals", "approve", rid, "--as", "linda.carver@kycity.gov")
    assert rc == 0 and "still pending" in out
    rc, _, err = run_cli(capsys, "approvals", "approve", rid, "--as", "jesse.nolan@kycity.gov")
    one_line_error(rc, err)
    rc, out, _ = run_cli(capsys, "approvals", "deny", rid, "--as", "ray.dobbs@kycity.gov", "--note", "no licence")
    assert rc == 0 and "denied" in out
    rc, out, _ = run_cli(capsys, "approvals", "show", rid, "--as", "jesse.nolan@kycity.gov", "--json")
    assert [e["action"] for e in json.loads(out)["history"]] == ["approval-request", "approval-approve",
                                                                "approval-deny"]


def test_request_access_and_exemption(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "request", "access", "--kind", "read-mail", "--subject", "carl.okafor@stegenevieve.org",
                         "--reason", "grievance investigation", "--policy", "ste-genevieve-mo",
                         "--as", "renee.bauman@stegenevieve.org", "--json")
    assert rc == 0 and json.loads(out)["request"]["approvers"][0]["roles"] == ["city-administrator"]
    rc, out, _ = run_cli(capsys, "request", "exemption", "--rule", "web-purchases-sales", "--until", "2099-12-31",
                         "--policy", "ste-genevieve-mo", "--as", "amy.rhodes@stegenevieve.org")
    assert rc == 0 and "pending" in out
    rc, _, err = run_cli(capsys, "request", "exemption", "--rule", "no-such-rule", "--until", "2099-12-31",
                         "--policy", "ste-genevieve-mo", "--as", "amy.rhodes@stegenevieve.org")
    one_line_error(rc, err)
    rc, _, err = run_cli(capsys, "request", "exemption", "--rule", "web-purchases-sales", "--until", "soon",
                         "--policy", "ste-genevieve-mo", "--as", "amy.rhodes@stegenevieve.org")
    one_line_error(rc, err)
    rc, _, err = run_cli(capsys, "request", "software", "Zoom", "--policy", "kirkwood-mo", "--as", "nobody@x.org")
    one_line_error(rc, err)


def test_held_broadcast_is_in_the_inbox_and_approving_releases_it(store: Engine, sink: Sink,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    rc, out, _ = run_cli(capsys, "approvals", "list", "--as", "dana.reed@kirkwoodmo.org", "--json")
    assert [m["id"] for m in json.loads(out)["held_mail"]] == [f"mail-{qid}"]
    rc, out, _ = run_cli(capsys, "approvals", "list", "--as", "alex.brown@kirkwoodmo.org", "--json")
    assert json.loads(out)["held_mail"] == []  # a department head of another department
    rc, out, _ = run_cli(capsys, "approvals", "approve", f"mail-{qid}", "--as", "dana.reed@kirkwoodmo.org")
    assert rc == 0 and "released" in out
    assert len(sink.wait(1)) == 1


def test_remind_lists_overdue(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "approvals", "remind", "--policy", "kirkwood-mo", "--json")
    assert rc == 0 and json.loads(out) == []


def test_inventory_ack_training_case_commands(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "inventory", "import", str(OSQUERY / "windows-workstation.json"), "--policy",
                         "kirkwood-mo", "--machine", "kw-pw-014", "--owner", "pat.jones@kirkwoodmo.org", "--json")
    assert rc == 0 and json.loads(out)["violations"] == 6
    rc, out, _ = run_cli(capsys, "inventory", "violations", "--policy", "kirkwood-mo", "--json")
    rows = json.loads(out)
    assert {r["clause"] for r in rows} == {"b"} and any(r["problem"] == "prohibited" for r in rows)
    rc, out, _ = run_cli(capsys, "inventory", "allow", "Microsoft Office", "--policy", "kirkwood-mo",
                         "--as", "lee.chan@kirkwoodmo.org", "--no-home-use")
    assert rc == 0 and "no home use" in out
    rc, _, err = run_cli(capsys, "inventory", "import", "/nonexistent.json", "--policy", "kirkwood-mo",
                         "--machine", "x")
    one_line_error(rc, err)
    rc, out, _ = run_cli(capsys, "ack", "record", "--policy", "kirkwood-mo", "--as", "pat.jones@kirkwoodmo.org")
    assert rc == 0
    rc, out, _ = run_cli(capsys, "ack", "missing", "--policy", "kirkwood-mo", "--json")
    assert json.loads(out)["missing"] == 7
    rc, out, _ = run_cli(capsys, "training", "assign", "groupwise-intro", "--policy", "kirkwood-mo")
    assert rc == 0 and "8" in out
    rc, out, _ = run_cli(capsys, "training", "complete", "groupwise-intro", "--policy", "kirkwood-mo",
                         "--as", "pat.jones@kirkwoodmo.org")
    rc, out, _ = run_cli(capsys, "training", "missing", "--policy", "kirkwood-mo")
    assert rc == 0 and "7 missing" in out and "Public Works" in out
    rc, out, _ = run_cli(capsys, "case", "report", "--policy", "kirkwood-mo", "--as", "pat.jones@kirkwoodmo.org",
                         "--summary", "Someone is selling concert tickets by e-mail", "--json")
    cid = str(json.loads(out)["id"])
    rc, _, err = run_cli(capsys, "case", "show", cid, "--policy", "kirkwood-mo", "--as", "pat.jones@kirkwoodmo.org")
    one_line_error(rc, err)
    rc, out, _ = run_cli(capsys, "case", "list", "--policy", "kirkwood-mo", "--as", "morgan.lee@kirkwoodmo.org",
                         "--json")
    assert [c["id"] for c in json.loads(out)] == [int(cid)]
    rc, out, _ = run_cli(capsys, "case", "close", cid, "--policy", "kirkwood-mo", "--as", "morgan.lee@kirkwoodmo.org",
                         "--decision", "Verbal warning given", "--outcome", "verbal-warning")
    assert rc == 0 and "closed" in out


def test_token_create_prints_it_once_and_stores_only_its_hash(store: Engine,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "token", "create", "--as", "dana.reed@kirkwoodmo.org", "--policy", "kirkwood-mo",
                           "--days", "2")
    token = out.strip()
    assert rc == 0 and token.startswith("cau_") and "shown only now" in err
    raw = b"".join(p.read_bytes() for p in Path(os.environ["CIVICAUP_HOME"]).rglob("*") if p.is_file())
    assert token.encode() not in raw and tokens.digest(token).encode() in raw
    assert tokens.authenticate(store, token).email == "dana.reed@kirkwoodmo.org"
    rc, _, err = run_cli(capsys, "token", "create", "--as", "dana.reed@kirkwoodmo.org", "--policy", "kirkwood-mo",
                         "--days", "0")
    one_line_error(rc, err)


def test_serve_prints_where_it_listens_and_stops_on_sigterm(store: Engine) -> None:
    exe = Path(sys.executable).with_name("civicaup")
    proc = subprocess.Popen([str(exe), "serve", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("civicaup serving kirkwood-mo on http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=10) as r:
            assert json.loads(r.read())["info"]["title"] == "civicaup"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_show_held_mail_tells_the_sender_why(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    rc, out, _ = run_cli(capsys, "approvals", "show", f"mail-{qid}", "--as", "pat.jones@kirkwoodmo.org")
    assert rc == 0 and "mail-all-users (clause d)" in out and "waiting for" in out
    rc, _, err = run_cli(capsys, "approvals", "show", f"mail-{qid}", "--as", "kim.nguyen@kirkwoodmo.org")
    one_line_error(rc, err)
