"""`civicaup report web ingest` and `civicaup report web`: Squid's access.log into the store, idempotently,
and reports per person and department; one person's history is an audited access request."""
from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .conftest import CIVICAUP

CHICAGO = ZoneInfo("America/Chicago")
STE_PEOPLE = Path(__file__).resolve().parents[2] / "src/civicaup/policy/packs/ste-genevieve-mo/directory.csv"


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVICAUP, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CIVICAUP_HOME": str(home)})


def line(local: str, user: str, url: str, status: str = "TCP_MISS/200", method: str = "GET", size: int = 1200) -> str:
    ts = datetime.fromisoformat(local).replace(tzinfo=CHICAGO).timestamp()
    return f"{ts:.3f}    112 10.0.0.5 {status} {size} {method} {url} {user} HIER_DIRECT/127.0.0.1 text/html"


LOG = [
    line("2026-03-03T10:00:00", "pat.jones", "http://shop.example/cart"),
    line("2026-03-03T10:00:20", "pat.jones", "http://www.shop.example/item/7"),
    line("2026-03-03T10:00:50", "pat.jones", "http://shop.example/pay"),
    line("2026-03-03T12:10:00", "pat.jones", "http://shop.example/lunch"),
    line("2026-03-03T12:10:00", "pat.jones", "http://shop.example/lunch"),  # the same line twice: two requests
    line("2026-03-03T09:00:00", "jo.smith%40kirkwoodmo.org", "http://plain.example/minutes"),
    line("2026-03-03T09:00:30", "jo.smith%40kirkwoodmo.org", "http://badsite.example/", "TCP_DENIED/403", size=3900),
    line("2026-03-03T09:05:00", "-", "bank.example:443", "TCP_TUNNEL/200", "CONNECT"),
    "garbage line that is not squid's",
    line("2026-03-04T08:30:00", "dana.reed", "http://casino.example/"),
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "access.log"
    p.write_text("\n".join(LOG) + "\n", encoding="utf-8")
    return p


def test_ingest_is_idempotent(home: Path, log: Path) -> None:
    r = run(home, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "9 requests added, 0 already stored, 1 lines skipped (of 10)"
    again = run(home, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo")
    assert again.stdout.strip() == "0 requests added, 9 already stored, 1 lines skipped (of 10)"
    log.write_text(log.read_text() + line("2026-03-04T08:31:00", "dana.reed", "http://casino.example/2") + "\n")
    grown = run(home, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo")
    assert grown.stdout.strip() == "1 requests added, 9 already stored, 1 lines skipped (of 11)"


def test_report_per_person_and_department(home: Path, log: Path, tmp_path: Path) -> None:
    assert run(home, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo").returncode == 0
    r = run(home, "report", "web", "--policy", "kirkwood-mo", "--json", "--svg", str(tmp_path / "chart.svg"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["requests"] == 9
    people = {p["person"]: p for p in rep["people"]}
    pat = people["pat.jones@kirkwoodmo.org"]
    assert pat["department"] == "Public Works" and pat["requests"] == 5
    # 10:00:00 -> 10:00:20 -> 10:00:50 -> (capped at 60 s) 12:10; lunch is personal time
    assert pat["work"]["categories"] == {"shopping": {"requests": 3, "seconds": 110.0}}
    assert pat["personal"]["categories"] == {"shopping": {"requests": 2, "seconds": 0.0}}
    jo = people["jo.smith@kirkwoodmo.org"]
    assert jo["work"]["categories"]["uncategorised"] == {"requests": 1, "seconds": 30.0}
    assert jo["work"]["categories"]["adult"]["requests"] == 1
    assert people["dana.reed@kirkwoodmo.org"]["work"]["categories"] == {"gambling": {"requests": 1, "seconds": 0.0}}
    assert "client:10.0.0.5" in people and people["client:10.0.0.5"]["work"]["categories"] == {
        "bank": {"requests": 1, "seconds": 0.0}}
    depts = {d["department"]: d for d in rep["departments"]}
    assert depts["Public Works"]["people"] == 2 and depts["Public Works"]["requests"] == 6
    assert depts["Administration"]["work"]["requests"] == 2
    svg = ET.parse(tmp_path / "chart.svg").getroot()
    assert svg.tag.endswith("svg") and len([e for e in svg.iter() if e.tag.endswith("rect")]) > 3
    text = run(home, "report", "web", "--policy", "kirkwood-mo", "--department", "public works", "--from", "2026-03-03",
               "--to", "2026-03-03")
    assert text.returncode == 0 and "pat.jones@kirkwoodmo.org" in text.stdout and "jo.smith" not in text.stdout
    assert "dana.reed" not in text.stdout  # 2026-03-04 is outside the dates


def test_reading_one_persons_history_is_an_access_event(home: Path, log: Path) -> None:
    assert run(home, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo").returncode == 0
    no_as = run(home, "report", "web", "--policy", "kirkwood-mo", "--person", "pat.jones@kirkwoodmo.org")
    assert no_as.returncode == 2 and "--as" in no_as.stderr
    # Kirkwood's text lets supervisors look at any time and names no approver for web history: allowed, audited
    r = run(home, "report", "web", "--policy", "kirkwood-mo", "--person", "pat.jones@kirkwoodmo.org",
            "--as", "dana.reed@kirkwoodmo.org", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [p["person"] for p in rep["people"]] == ["pat.jones@kirkwoodmo.org"]
    assert rep["person"]["hosts"]["shopping"][0] == {"host": "shop.example", "requests": 4}
    assert rep["person"]["days"] == {"2026-03-03": {"requests": 5, "seconds": 110.0}}
    audit = [json.loads(x) for x in run(home, "audit", "export").stdout.splitlines()]
    reads = [e for e in audit if e["action"] == "monitor-web"]
    assert len(reads) == 1 and reads[0]["actor"] == "dana.reed@kirkwoodmo.org"
    assert reads[0]["subject"] == "pat.jones@kirkwoodmo.org" and reads[0]["detail"]["kind"] == "monitor-web"


def test_history_needs_the_roles_the_pack_names(home: Path, tmp_path: Path) -> None:
    assert run(home, "directory", "import", str(STE_PEOPLE), "--policy", "ste-genevieve-mo").returncode == 0
    log = tmp_path / "ste.log"
    log.write_text(line("2026-03-03T10:00:00", "carl.okafor@stegenevieve.org", "http://shop.example/") + "\n")
    assert run(home, "report", "web", "ingest", str(log), "--policy", "ste-genevieve-mo").returncode == 0
    refused = run(home, "report", "web", "--policy", "ste-genevieve-mo", "--person", "carl.okafor@stegenevieve.org",
                  "--as", "renee.bauman@stegenevieve.org")
    assert refused.returncode == 2 and refused.stdout == ""
    err = refused.stderr.strip()
    assert len(err.splitlines()) == 1 and "clause D.3" in err and "city-administrator" in err, err
    ok = run(home, "report", "web", "--policy", "ste-genevieve-mo", "--person", "carl.okafor@stegenevieve.org",
             "--as", "ellen.morrow@stegenevieve.org", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["people"][0]["requests"] == 1
    audit = [json.loads(x) for x in run(home, "audit", "export").stdout.splitlines()]
    kinds = [(e["action"], e["actor"]) for e in audit if e["action"].startswith("monitor-web")]
    assert kinds == [("monitor-web-refused", "renee.bauman@stegenevieve.org"),
                     ("monitor-web", "ellen.morrow@stegenevieve.org")]
    held = [e for e in audit if e["action"] == "monitor-web"][0]
    assert held["detail"]["findings"][0]["exempted_by"] == "approved:city-administrator"


def test_bad_inputs_are_one_line_errors(home: Path, tmp_path: Path) -> None:
    for args in (["report", "web", "ingest", str(tmp_path / "missing.log"), "--policy", "kirkwood-mo"],
                 ["report", "web", "--policy", "kirkwood-mo", "--from", "yesterday"],
                 ["report", "web", "--policy", "nowhere"],
                 ["report", "web"]):
        r = run(home, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, args
