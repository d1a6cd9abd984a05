"""Several cities on one PostgreSQL, served by several processes at once, as a league runs them: two
`civicaup milter` processes (Kirkwood, Rosemount), two `civicaup squid-helper` processes (Kyhome, Kirkwood:
so Kirkwood's audit chain has two writers in two processes) and one `civicaup serve` for the three cities,
all on the same CIVICAUP_DB_URL, driven concurrently through the milter protocol and the helper's pipes.

Every decision is recorded once, in the right city's partition: each held message is one quarantine row
and one `mail-hold` audit entry of its city; each passed message is journaled once with its city; each
refused one is logged once by its city's milter; each web decision that is not a plain allow is in its
city's audit chain (repeats merged with a count). Every city's chain verifies; no city sees another's rows
through the API.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, text

from civicaup.channels.mail import milter_protocol as mp
from civicaup.channels.mail.journal import decode_header
from civicaup.channels.web.categories import CategoryIndex
from civicaup.governance import tokens
from civicaup.policy.registry import BUILTIN, get_pack
from civicaup.stores import audit, partitions
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people, list_people
from tests.mail.miltertools import FakeMTA
from tests.web_squid.conftest import make_lists

from .conftest import new_pg_database

CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
CITIES = ("kirkwood-mo", "rosemount-mn", "ky-36-082")
MILTERS = ("kirkwood-mo", "rosemount-mn")
HELPERS = ("ky-36-082", "kirkwood-mo")
MESSAGES = 12  # per connection; two connections per milter
URLS = 150  # per helper


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, f"the process exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


# ---------------------------------------------------------------- the league

class League:
    def __init__(self, home: Path, url: str, logs: Path) -> None:
        self.home, self.url, self.logs = home, url, logs
        self.env = {**os.environ, "CIVICAUP_HOME": str(home), "CIVICAUP_DB_URL": url}
        self.env.pop("CIVICAUP_FAKE_NOW", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.milter_ports: dict[str, int] = {}
        self.helpers: dict[str, subprocess.Popen[bytes]] = {}
        self.api = 0

    def start(self, name: str, *args: str, pipes: bool = False) -> subprocess.Popen[bytes]:
        err = open(self.logs / f"{name}.log", "wb")
        p = subprocess.Popen([CIVICAUP, *args], env=self.env, stdout=subprocess.PIPE if pipes else err,
                             stdin=subprocess.PIPE if pipes else subprocess.DEVNULL, stderr=err)
        err.close()
        self.procs.append(p)
        return p

    def start_all(self) -> None:
        for city in MILTERS:
            port = free_port()
            p = self.start(f"milter-{city}", "milter", "--policy", city, "--listen", f"127.0.0.1:{port}",
                           "--next-hop", "127.0.0.1:9")
            self.milter_ports[city] = port
            wait_for_port(port, p)
        for city in HELPERS:  # a long line budget: a busy test machine must not meet the fail mode's watchdog
            self.helpers[city] = self.start(f"helper-{city}", "squid-helper", "--policy", city,
                                            "--audit-interval", "0.2", "--line-budget", "60", pipes=True)
        self.api = free_port()
        serve = self.start("serve", "serve", *[a for c in CITIES for a in ("--policy", c)],
                           "--listen", f"127.0.0.1:{self.api}")
        wait_for_port(self.api, serve)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def league(pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[League, Engine]]:
    home = tmp_path / "home"
    home.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    url = new_pg_database(pg_server)
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    monkeypatch.setenv("CIVICAUP_DB_URL", url)
    engine = open_store(url)
    for city in CITIES:
        import_people(engine, get_pack(city), BUILTIN / city / "directory.csv")
    CategoryIndex.build([make_lists(tmp_path / "ut1")], out=home / "categories.idx")
    lg = League(home, url, logs)
    try:
        lg.start_all()
        yield lg, engine
    finally:
        lg.stop_all()


# ---------------------------------------------------------------- traffic

def staff(engine: Engine, city: str) -> list[str]:
    return [p.email for p in list_people(engine, city)]


def mail_traffic(lg: League, engine: Engine, city: str, conn_no: int, out: dict[str, list[tuple[str, str]]]
                 ) -> None:
    """MESSAGES messages on one connection: a memo (passes), a threat (refused), a confidential all-staff
    message (held)."""
    pack = get_pack(city).pack
    people = staff(engine, city)
    sender, colleague = people[0], people[1]
    broadcast = pack.city.broadcast[0]
    mta = FakeMTA(("127.0.0.1", lg.milter_ports[city]))
    got: list[tuple[str, str]] = []
    for n in range(MESSAGES):
        qid = f"{city[:4].upper()}{conn_no}X{n:03d}"
        kind = ("memo", "threat", "broadcast")[n % 3]
        rcpt = broadcast if kind == "broadcast" else colleague
        body = {"memo": b"The budget meeting moved to 3 pm Thursday.\r\n",
                "threat": b"If you write me up again I will kill you. Watch your back in the parking lot.\r\n",
                # held by Kirkwood as an all-staff message, by Rosemount as a trade secret sent without leave
                "broadcast": b"PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION. The settlement terms "
                             b"are attached for counsel.\r\n"}[kind]
        headers = [("From", sender), ("To", rcpt), ("Subject", f"{kind} {qid}"), ("Message-ID", f"<{qid}@test>")]
        replies = mta.message(sender, [rcpt], headers, body, macros={"i": qid})
        cmd = replies[-1][0]
        verdict = {mp.R_DISCARD: "held", mp.R_REPLYCODE: "refused", mp.R_CONTINUE: "passed",
                   mp.R_ACCEPT: "passed"}.get(cmd, f"other {cmd!r}")
        got.append((qid, verdict))
    mta.close()
    out[f"{city}/{conn_no}"] = got


def web_traffic(lg: League, city: str, out: dict[str, Counter[str]]) -> None:
    """URLS requests (blocked, logged and allowed sites; some repeated) on the helper's pipes, answered
    in any order; counts the answers by kind."""
    p = lg.helpers[city]
    assert p.stdin is not None and p.stdout is not None
    lines = []
    for i in range(URLS):
        site = ("badsite.example", "shop.example", "plain.example")[i % 3]
        path = f"p{i}" if i % 5 else "same"  # every fifth request of a kind repeats one URL
        lines.append(f"{i} http://{site}/{path} - 10.0.0.{i % 7 + 1} GET -\n")
    answers: dict[str, str] = {}
    buf = b""
    fd = p.stdout.fileno()
    for start in range(0, URLS, 25):
        p.stdin.write("".join(lines[start:start + 25]).encode())
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while len(answers) < min(start + 25, URLS):
            assert time.monotonic() < deadline, f"helper {city} stopped answering"
            if select.select([fd], [], [], 1)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, lg.log(f"helper-{city}")
                buf += chunk
                *done, buf = buf.split(b"\n")
                for line in done:
                    channel, _, answer = line.decode().partition(" ")
                    answers[channel] = answer
    kinds: Counter[str] = Counter()
    for answer in answers.values():
        # a logged decision's tag starts with its action ("log:shopping"); in a city's personal-use window the
        # same URL is "allow:shopping", an allow that is not audited
        kinds["block" if answer.startswith("ERR") else "log" if "log=log%3A" in answer else "allow"] += 1
    out[city] = kinds


# ---------------------------------------------------------------- the test

def test_one_database_for_a_league_of_processes(league: tuple[League, Engine]) -> None:
    lg, engine = league
    mail: dict[str, list[tuple[str, str]]] = {}
    web: dict[str, Counter[str]] = {}
    threads = [threading.Thread(target=mail_traffic, args=(lg, engine, city, n, mail)) for city in MILTERS
               for n in (1, 2)]
    threads += [threading.Thread(target=web_traffic, args=(lg, city, web)) for city in HELPERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(mail) == 4 and len(web) == 2, "a traffic thread failed"

    # stop the writers cleanly: the milters on SIGTERM, the helpers at end of input (audit written first)
    for p in lg.procs[:2]:
        p.send_signal(signal.SIGTERM)
    for p in lg.helpers.values():
        assert p.stdin is not None
        p.stdin.close()
    for p in lg.procs[:4]:
        assert p.wait(60) == 0

    verdicts: dict[str, dict[str, str]] = {city: {} for city in MILTERS}
    for key, got in mail.items():
        verdicts[key.split("/")[0]].update(got)
    month = partitions.month_of(datetime.now(timezone.utc))
    with engine.connect() as conn:
        held_rows = conn.execute(text("SELECT id, policy, queue_id FROM mail_quarantine")).all()
        entries = conn.execute(text("SELECT chain, policy, action, subject, detail, tableoid::regclass::text AS part "
                                    "FROM audit")).all()

    for city in CITIES:
        mine = verdicts.get(city, {})
        held = {q for q, v in mine.items() if v == "held"}
        assert set(Counter(v for v in mine.values())) <= {"held", "refused", "passed"}, mine
        if city in MILTERS:
            assert held and {"refused", "passed"} <= set(mine.values()), mine
        # held: one quarantine row of this city each, and one mail-hold entry in this city's partition
        rows = [r for r in held_rows if r.queue_id in held]
        assert sorted(r.queue_id for r in rows) == sorted(held) and {r.policy for r in rows} <= {city}
        holds = [e for e in entries if e.action == "mail-hold" and e.policy == city]
        assert sorted(e.subject for e in holds) == sorted(f"quarantine {r.id}" for r in rows)
        # web: every decision that is not a plain allow, once (repeats merged with a count)
        web_entries = [e for e in entries if e.action.startswith("web-") and e.policy == city]
        counted = Counter()
        for e in web_entries:
            counted[e.action[4:]] += json.loads(e.detail).get("count", 1)
        expected = {k: v for k, v in web.get(city, Counter()).items() if k != "allow"}
        assert dict(counted) == expected, (city, counted, web.get(city))
        # the city's entries are in the city's partition of this month, and its chain verifies
        own = [e for e in entries if e.policy == city]
        assert own and {e.chain for e in own} == {city}
        assert {e.part for e in own} == {partitions.month_table("audit", city, month)}
        assert audit.verify(engine, city) == (len(own), None)
    assert {e.policy for e in entries if e.action in ("mail-hold",) or e.action.startswith("web-")} <= set(CITIES)
    assert audit.verify(engine) == (len(entries), None)

    # passed: journaled once each, with the city; refused: logged once by the city's milter
    journaled: Counter[tuple[str, str]] = Counter()
    for f in (lg.home / "journal" / "new").iterdir():
        value = re.match(rb"X-Civicaup-Journal: ((?:[^\r\n]|\r\n )*)", f.read_bytes())
        assert value, f.name
        record = decode_header(value.group(1).decode())
        journaled[(record["policy"], record["queue_id"])] += 1
    for city in MILTERS:
        passed = {q for q, v in verdicts[city].items() if v == "passed"}
        assert {q for (c, q), n in journaled.items() if c == city and n == 1} == passed
        refused = [q for q, v in verdicts[city].items() if v == "refused"]
        log = lg.log(f"milter-{city}")
        for q in refused:
            assert len(re.findall(rf"block .*queue id {q}\b", log)) == 1, (q, log[-2000:])
    assert sum(journaled.values()) == sum(1 for v in verdicts.values() for x in v.values() if x == "passed")

    # the API: each city's IT person sees the city's held mail and chain, never another city's
    held_by_city = {city: {r.id for r in held_rows if r.policy == city} for city in CITIES}
    for city in CITIES:
        it = next(p.email for p in list_people(engine, city) if "it" in p.roles)
        headers = {"Authorization": "Bearer " + tokens.create(engine, city, it).token}
        listed = api(lg, "/v1/quarantine?all=true", headers)
        assert {h["id"] for h in listed} == held_by_city[city] and {h["policy"] for h in listed} <= {city}
        for other in CITIES:
            for qid in held_by_city[other] if other != city else ():
                assert api(lg, f"/v1/quarantine/{qid}", headers, status=404)
        verified = api(lg, "/v1/audit/verify", headers)
        assert verified["intact"] is True
        assert verified["entries"] == sum(1 for e in audit.entries(engine, city))


def api(lg: League, path: str, headers: dict[str, str], status: int = 200) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{lg.api}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == status
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        assert exc.code == status, (path, exc.code, exc.read()[:300])
        return True
