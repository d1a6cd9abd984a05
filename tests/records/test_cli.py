"""The records commands as DESIGN.md names them, called as a city's scripts would (SQLite store)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PACKS, POLICY
from .mails import mail, utc


def civicaup(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIVICAUP_DB_URL"}
    env["CIVICAUP_HOME"] = str(home)
    exe = Path(sys.executable).with_name("civicaup")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    r = civicaup(h, "directory", "import", str(PACKS / POLICY / "directory.csv"), "--policy", POLICY)
    assert r.returncode == 0, r.stderr
    return h


def test_archive_hold_retention_and_requests_from_the_command_line(home: Path, tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "a.eml").write_bytes(mail(sender="pat.jones@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org",
                                     subject="Lobbyists at city hall", body="Two lobbyists came by.",
                                     date=utc(2019, 3, 4, 15)))
    (box / "b.eml").write_bytes(mail(sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org",
                                     subject="Printer", body="Jammed.", date=utc(2019, 3, 5, 15)))
    r = civicaup(home, "archive", "import", str(box), "--policy", POLICY)
    assert r.returncode == 0 and r.stdout.startswith("imported 2, duplicate 0, failed 0"), (r.stdout, r.stderr)
    r = civicaup(home, "archive", "search", "lobbyist", "--policy", POLICY, "--json")
    found = json.loads(r.stdout)
    assert [x["subject"] for x in found["results"]] == ["Lobbyists at city hall"]
    ref = found["results"][0]["ref"]
    r = civicaup(home, "archive", "search", "--policy", POLICY, "--from", "kirkwoodmo.org", "--since", "2019-03-05",
                 "--json")
    assert [x["subject"] for x in json.loads(r.stdout)["results"]] == ["Printer"]
    r = civicaup(home, "hold", "add", "--policy", POLICY, "--custodian", "dana.reed@kirkwoodmo.org",
                 "--reason", "Doe v. Kirkwood", "--as", "jo.smith@kirkwoodmo.org", "--json")
    hold_id = json.loads(r.stdout)["id"]
    r = civicaup(home, "hold", "list", "--policy", POLICY, "--json")
    assert json.loads(r.stdout)[0]["records"] == 1
    r = civicaup(home, "retention", "run", "--policy", POLICY, "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert plan["due"] == 1 and plan["records"][0]["subject"] == "Printer" and plan["kept"][0]["ref"] == ref
    r = civicaup(home, "hold", "release", str(hold_id), "--policy", POLICY, "--as", "pat.jones@kirkwoodmo.org")
    assert r.returncode == 2 and "cannot release" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = civicaup(home, "retention", "run", "--policy", POLICY, "--json")
    assert json.loads(r.stdout)["certificates"]
    r = civicaup(home, "audit", "verify")
    assert r.returncode == 0, r.stdout
    r = civicaup(home, "records", "request", "add", "--policy", POLICY, "--requester", "A. Reporter",
                 "--description", "lobbyist visits", "--received", "2026-09-04", "--as", "jo.smith@kirkwoodmo.org",
                 "--json")
    assert json.loads(r.stdout)["due"] == "2026-09-10"
    r = civicaup(home, "records", "request", "list", "--policy", POLICY, "--json")
    assert [x["requester"] for x in json.loads(r.stdout)] == ["A. Reporter"]


@pytest.mark.parametrize("args", [
    ["archive", "import", "/nonexistent/box", "--policy", POLICY],
    ["archive", "search", "x", "--policy", "no-such-city"],
    ["archive", "search", "-only", "--policy", POLICY],
    ["archive", "search", "x", "--policy", POLICY, "--since", "yesterday"],
    ["records", "deadline", "--state", "MO", "--received", "July 2nd", "--json"],
])
def test_bad_input_is_one_line_and_exit_2(home: Path, args: list[str]) -> None:
    r = civicaup(home, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
