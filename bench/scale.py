#!/usr/bin/env python3
"""Benchmark: a league of cities on one PostgreSQL, from 10 to 100 to 300 cities.

    .venv/bin/python bench/scale.py [--cities 10,100,300] [--staff 200] [--quick] [--workers N]
                                    [--web N] [--mail N] [--archive N] [--searches N] [--api N]
                                    [--budget SECONDS] [--workdir DIR] [--keep]

Each city is a copy of one of the five shipped packs under its own id and mail domain, with a directory of
STAFF people. For every city count (cumulative: the 100-city store holds the first 10 cities' rows too) it
runs a sample of one working day per city and prints:

  decisions/s per core  URL and mail decisions through the engine (civicaup.engine.evaluate, the mail
                        gateway's `decide`) in WORKERS processes, each taking a share of the cities, per
                        CPU-second of decision work (pack compilation and store writes timed apart); every
                        decision that is not a plain allow goes to the city's audit chain, in batches as the
                        Squid helper's writer does; the day's URLs go to web_usage as an access.log ingest
  archive ingest/s      each new city's archive (ARCHIVE messages: the day's mail and older mail) through
                        `archive import`'s code path, WORKERS importers at once
  search p50/p95        clerk searches (words, phrases, sender, recipient, date range, attachment) on random
                        cities
  API p50/p95           `civicaup serve` for all the cities (it compiles and pins every city's pack as it
                        starts), REST calls with each city's IT person's token on random cities from four clients
  peak memory           of a decision worker, of the API process, and the database size, bytes a row of each
                        partitioned table and the partition count

Traffic comes from the real data in ../shared/data: URLs from the UT1 lists (listed sites to block and to log,
the allow list, press and bank sites for the ordinary rest), mail from the SpamAssassin corpus's bodies and
MIME structures (extracted into the work directory, never beside the data). PostgreSQL is Debian's, started
on a free loopback port for the run with a league's settings (PG_SETTINGS) and stopped by its PID. Volumes
are a sample of a day (--web URL and --mail messages per city); the summary scales the measured rates to a
full day (DAY_URLS and DAY_MAILS per person) to say how many cores a league needs. --budget bounds the run:
a city count that would start after it is skipped. Not run in CI.

UT1 lists: CC BY-SA 4.0 (Université Toulouse 1 Capitole). SpamAssassin public corpus: PDDL 1.0 / CC0.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPUS = DATA / "mail" / "spamassassin-public-corpus.tar.xz"
UT1 = DATA / "ut1"
CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
BASES = ("kirkwood-mo", "ste-genevieve-mo", "ky-36-082", "west-des-moines-ia", "rosemount-mn")
DAY_URLS = 600  # URL requests per person per working day that reach the helper (a proxy sees every request)
DAY_MAILS = 40  # messages per person per working day through the milter (sent and received)
WORDS = ["lobbyist", "subpoena", "zoning variance", "city council", "budget amendment", "annexation", "sidewalk"]
FIRST = ["pat", "dana", "lee", "sam", "kim", "alex", "jo", "morgan", "chris", "taylor", "jordan", "casey", "robin",
         "drew", "avery", "quinn", "reese", "skyler", "jamie", "riley"]
LAST = ["jones", "reed", "chan", "ortiz", "nguyen", "brown", "smith", "lee", "garcia", "miller", "davis", "wilson",
        "moore", "clark", "lewis", "walker", "hall", "young", "king", "wright"]

sys.path.insert(0, str(ROOT / "bench"))
from archive import corpus_shapes  # noqa: E402 - the archive benchmark's corpus reader

sys.path.insert(0, str(ROOT))
from tests.pg_instance import PgInstance, PostgresUnavailable  # noqa: E402

# A league's server settings (docs/scaling.md): a statement that cannot prune by city locks every partition it
# reads, and the shared lock table holds max_locks_per_transaction x max_connections locks.
PG_SETTINGS = {"max_connections": "200", "max_locks_per_transaction": "256", "shared_buffers": "512MB",
               "work_mem": "32MB", "maintenance_work_mem": "256MB", "synchronous_commit": "off",
               "max_wal_size": "4GB"}


# ---------------------------------------------------------------- the cities

def city_id(n: int) -> str:
    return f"{BASES[n % len(BASES)]}-{n:03d}"


def base_domain(base: str) -> str:
    from civicaup.policy.registry import BUILTIN

    for line in (BUILTIN / base / "pack.yaml").read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("mail_domain:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no mail_domain in {base}")


def city_domain(n: int) -> str:
    return f"c{n:03d}.{base_domain(BASES[n % len(BASES)])}"


def staff_of(n: int, count: int) -> list[tuple[str, str, str, str]]:
    """(email, name, department, title) of city n: the shipped demo people's titles first (so each city has its
    IT person, clerk and administrator), then staff with the demo directory's other titles."""
    from civicaup.policy.registry import BUILTIN

    base, domain = BASES[n % len(BASES)], city_domain(n)
    demo = [line.split(",") for line in (BUILTIN / base / "directory.csv").read_text(encoding="utf-8")
            .splitlines()[1:] if line.strip()]
    rng = random.Random(n)
    out, seen = [], set()
    for i in range(count):
        d = demo[i % len(demo)]
        while True:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}{rng.randint(1, 99)}@{domain}"
            if email not in seen:
                seen.add(email)
                break
        out.append((email, f"{first.title()} {last.title()}", d[2], d[3]))
    return out


def make_city(n: int, home: Path, staff: int) -> str:
    """The city's pack folder (a shipped pack under a new id and domain) and its directory CSV."""
    from civicaup.policy.registry import BUILTIN

    cid, base = city_id(n), BASES[n % len(BASES)]
    folder = home / "packs" / cid
    folder.mkdir(parents=True, exist_ok=True)
    text = (BUILTIN / base / "pack.yaml").read_text(encoding="utf-8")
    text = text.replace(f"id: {base}\n", f"id: {cid}\n", 1).replace(base_domain(base), city_domain(n))
    (folder / "pack.yaml").write_text(text, encoding="utf-8")
    for extra in (BUILTIN / base).iterdir():
        if extra.name not in ("pack.yaml", "directory.csv") and extra.is_file():
            shutil.copy(extra, folder / extra.name)
    lines = ["email,name,department,title,roles"] + [",".join(p) + "," for p in staff_of(n, staff)]
    (folder / "directory.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cid


# ---------------------------------------------------------------- traffic from the real data

def ut1_sites(rng: random.Random) -> dict[str, list[str]]:
    """Domains to request: listed ones a city blocks or logs, and ordinary ones (allow list, press, banks)."""
    def sample(category: str, k: int) -> list[str]:
        path = UT1 / category / "domains"
        if not path.is_file():
            return []
        lines = [x.strip() for x in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if x.strip() and not x.startswith("#")]
        return rng.sample(lines, min(k, len(lines)))

    return {"blocked": sample("adult", 300) + sample("gambling", 300) + sample("warez", 100) + sample("agressif", 50),
            "logged": sample("shopping", 300) + sample("social_networks", 100) + sample("games", 200) +
            sample("radio", 50) + sample("dating", 50) + sample("sports", 100),
            "ordinary": sample("liste_blanche", 300) + sample("press", 400) + sample("bank", 300) +
            sample("blog", 200)}


def web_day(rng: random.Random, sites: dict[str, list[str]], count: int) -> list[str]:
    """A sample of a city's day of URLs: mostly ordinary sites, some logged categories, a few blocked."""
    urls = []
    for i in range(count):
        r = rng.random()
        kind = "blocked" if r < 0.03 else "logged" if r < 0.15 else "ordinary"
        host = rng.choice(sites[kind])
        path = rng.choice(("", "index.html", f"news/{i}", f"img/{i % 50}.png", "login", f"search?q={i}"))
        urls.append(f"https://{host}/{path}")
    return urls


def mail_message(rng: random.Random, shapes: list[tuple[str, bytes, str]], staff: list[tuple[str, ...]],
                 domain: str, broadcast: str, when: datetime, n: int) -> tuple[bytes, str, list[str]]:
    """(raw, sender, recipients): a corpus body and structure, with city headers."""
    ctype, body, subject = rng.choice(shapes)
    sender = rng.choice(staff)[0] if rng.random() < 0.6 else f"{rng.choice(FIRST)}{n % 997}@vendor{n % 41}.example.com"
    if rng.random() < 0.01:
        rcpts = [broadcast]
    else:
        rcpts = [p[0] for p in rng.sample(staff, rng.choice((1, 1, 1, 2, 3)))]
    if rng.random() < 0.05:
        subject = f"{rng.choice(WORDS).title()}: {subject}"
    head = (f"From: {sender}\nTo: {', '.join(rcpts)}\nSubject: {subject}\nDate: {format_datetime(when)}\n"
            f"Message-ID: <scale.{n}.{rng.getrandbits(32):08x}@{domain}>\n")
    extra = f"\n\nRe: {rng.choice(WORDS)} (case {n})\n".encode() if rng.random() < 0.05 else b""
    return (head + ctype).encode("utf-8", "replace") + b"\n" + body + extra, sender, rcpts


# ---------------------------------------------------------------- decisions (worker processes)

def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decision_worker(args: dict[str, Any]) -> dict[str, Any]:
    """A share of the cities' day: URL and mail decisions, their audit entries, the day's access.log."""
    os.environ["CIVICAUP_HOME"] = args["home"]
    os.environ["CIVICAUP_DB_URL"] = args["url"]
    import pickle

    from civicaup.channels.mail.gateway import decide
    from civicaup.channels.web import usage
    from civicaup.channels.web.url import normalise_url
    from civicaup.engine.checks.web import index
    from civicaup.engine.evaluate import evaluate
    from civicaup.engine.event import Actor, WebEvent
    from civicaup.policy.registry import get_pack
    from civicaup.stores import audit
    from civicaup.stores.db import open_store
    from civicaup.stores.directory import list_people

    engine = open_store(args["url"])
    sites, shapes = pickle.loads(Path(args["traffic"]).read_bytes())
    idx = index()
    out: dict[str, Any] = {"web": 0, "mail": 0, "web_cpu": 0.0, "mail_cpu": 0.0, "load_cpu": 0.0, "audit": 0,
                           "audit_s": 0.0, "usage_rows": 0, "usage_s": 0.0, "actions": Counter()}
    now = datetime.now(timezone.utc)
    for n in args["cities"]:
        cid = city_id(n)
        rng = random.Random(f"{args['stage']}-{n}")
        c0 = time.process_time()
        pack = get_pack(cid)
        people = {p.email: p for p in list_people(engine, cid)}
        staff_names = frozenset((p.name, p.email) for p in people.values() if p.name)
        staff = staff_of(n, args["staff"])
        actors = {e: Actor(email=e, roles=frozenset(people[e].roles) | {"employee"}, department=people[e].department,
                           name=people[e].name) for e, *_ in staff if e in people}
        emails = list(actors)
        # warm-up, as a milter or helper does once when it starts: the index and the pack's detectors
        evaluate(WebEvent(actor=actors[emails[0]], at=now, url=normalise_url("https://www.example.org/")), pack)
        raw, sender, rcpts = mail_message(random.Random(n), shapes, staff, pack.pack.city.mail_domain, "x@x", now, 0)
        decide(cid, raw, actors[emails[0]], emails[0], tuple(rcpts), staff_names, at=now, pack=pack)
        out["load_cpu"] += time.process_time() - c0
        pending: list[Any] = []
        # the web: every URL through the engine, as the Squid helper asks it
        urls = web_day(rng, sites, args["web"])
        users = [rng.choice(emails) for _ in urls]
        c0 = time.process_time()
        for url, user in zip(urls, users):
            event = WebEvent(actor=actors[user], at=now, url=normalise_url(url))
            d = evaluate(event, pack)
            out["actions"][f"web-{d.action}"] += 1
            if d.action != "allow":
                pending.append(audit.Pending(now, user, f"web-{d.action}", url[:500], cid,
                                             {"decision": d.action, "findings": [
                                                 {"rule": f.rule, "clause": f.clause} for f in d.findings]}))
        out["web_cpu"] += time.process_time() - c0
        out["web"] += len(urls)
        # mail: parse and decide each message, as the milter does at end of message
        domain = pack.pack.city.mail_domain
        broadcast = (pack.pack.city.broadcast or [f"all@{domain}"])[0]
        msgs = [mail_message(rng, shapes, staff, domain, broadcast, now, i) for i in range(args["mail"])]
        c0 = time.process_time()
        for raw, sender, rcpts in msgs:
            actor = actors.get(sender) or Actor(email=sender)
            d = decide(cid, raw, actor, sender, tuple(rcpts), staff_names, at=now, pack=pack)
            out["actions"][f"mail-{d.action}"] += 1
            if d.action != "allow":
                pending.append(audit.Pending(now, sender, f"mail-{d.action}", f"message from {sender}", cid,
                                             {"decision": d.action, "rules": [f.rule for f in d.findings]}))
        out["mail_cpu"] += time.process_time() - c0
        out["mail"] += len(msgs)
        # the audit log: the city's chain, in batches as the helper's writer process writes them
        t = time.perf_counter()
        for start in range(0, len(pending), 5000):
            audit.append_many(engine, pending[start:start + 5000])
        out["audit_s"] += time.perf_counter() - t
        out["audit"] += len(pending)
        # the day's access.log, ingested for the usage reports
        log = Path(args["work"]) / f"access-{cid}.log"
        base = now.timestamp() - 3600
        with open(log, "w", encoding="utf-8") as f:
            for i, (url, user) in enumerate(zip(urls, users)):
                f.write(f"{base + i * 0.37:.3f} {rng.randint(5, 900)} 10.{n % 250}.{i % 250}.{i % 97 + 1} "
                        f"TCP_MISS/200 {rng.randint(300, 90000)} GET {url} {user.split('@')[0]} "
                        f"HIER_DIRECT/203.0.113.9 text/html\n")
        t = time.perf_counter()
        report = usage.ingest(engine, pack, str(log), idx)
        out["usage_s"] += time.perf_counter() - t
        out["usage_rows"] += report.added
        log.unlink()
    out["rss_mb"] = _rss_mb()
    out["actions"] = dict(out["actions"])
    engine.dispose()
    return out


# ---------------------------------------------------------------- archive ingest (worker processes)

def archive_worker(args: dict[str, Any]) -> dict[str, Any]:
    os.environ["CIVICAUP_HOME"] = args["home"]
    os.environ["CIVICAUP_DB_URL"] = args["url"]
    import pickle

    from civicaup.policy.registry import get_pack
    from civicaup.records.archive import import_paths
    from civicaup.stores.db import open_store

    engine = open_store(args["url"])
    _, shapes = pickle.loads(Path(args["traffic"]).read_bytes())
    now = datetime.now(timezone.utc)
    out = {"imported": 0, "failed": 0, "seconds": 0.0}
    for n in args["cities"]:
        cid = city_id(n)
        pack = get_pack(cid)
        rng = random.Random(f"archive-{n}")
        staff = staff_of(n, args["staff"])
        mbox = Path(args["work"]) / f"archive-{cid}.mbox"
        domain = pack.pack.city.mail_domain
        with open(mbox, "wb") as f:
            for i in range(args["archive"]):
                # half the day's journal, half older mail imported when the city joined
                when = now - (timedelta(minutes=rng.randrange(600)) if i % 2 else
                              timedelta(days=rng.randrange(730), seconds=rng.randrange(86400)))
                raw, _, _ = mail_message(rng, shapes, staff, domain, f"all@{domain}", when, i)
                f.write(b"From scale@" + domain.encode() + b" Thu Jan  1 00:00:00 2026\n" +
                        raw.replace(b"\nFrom ", b"\n>From ") + b"\n")
        t = time.perf_counter()
        report = import_paths(engine, [mbox], policy=cid, jobs=1)
        out["seconds"] += time.perf_counter() - t
        out["imported"] += report.imported
        out["failed"] += report.failed
        mbox.unlink()
    out["rss_mb"] = _rss_mb()
    engine.dispose()
    return out


# ---------------------------------------------------------------- the server

def start_postgres() -> PgInstance:
    """Debian's PostgreSQL on a free loopback port with PG_SETTINGS (tests/pg_instance.py, as the tests start it)."""
    try:
        return PgInstance(settings=PG_SETTINGS, prefix="civicaup-scale-pg-").start()
    except PostgresUnavailable as exc:
        sys.exit(str(exc))


# ---------------------------------------------------------------- the measurements

def cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


SERVER_PID = [0]


def server_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server: the postmaster, the backends it has reaped (their time
    stays in its counters) and the ones still running."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2:].split()
        pid, ppid = int(stat.parent.name), int(rest[1])
        if pid == SERVER_PID[0]:
            total += sum(int(x) for x in rest[11:15]) / tick  # utime, stime, cutime, cstime
        elif ppid == SERVER_PID[0]:
            total += (int(rest[11]) + int(rest[12])) / tick
    return total


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def run_searches(engine: Any, cities: list[int], staff: int, count: int, seed: int) -> dict[str, Any]:
    from civicaup.policy.registry import get_pack
    from civicaup.records.search import Filters, search

    rng = random.Random(seed)
    today = datetime.now(timezone.utc).date()
    kinds = [
        ("rare word", lambda s: Filters(text=rng.choice(["lobbyist", "subpoena", "annexation", "sidewalk"]))),
        ("common word", lambda s: Filters(text=rng.choice(["the", "please", "list", "free", "time"]))),
        ("phrase", lambda s: Filters(text=f'"{rng.choice(["city council", "budget amendment", "zoning variance"])}"')),
        ("sender", lambda s: Filters(from_=rng.choice(s)[0])),
        ("recipient", lambda s: Filters(to=rng.choice(s)[0])),
        ("last 30 days", lambda s: Filters(since=today - timedelta(days=30), until=today)),
        ("word + year", lambda s: Filters(text=rng.choice(["meeting", "report", "money"]),
                                          since=date(today.year - 1, 1, 1), until=date(today.year - 1, 12, 31))),
        ("word + sender", lambda s: Filters(text=rng.choice(["the", "please"]), from_=rng.choice(s)[0])),
    ]
    times: dict[str, list[float]] = {k: [] for k, _ in kinds}
    found = Counter()
    for i in range(count):
        n = rng.choice(cities)
        name, make = kinds[i % len(kinds)]
        cid = city_id(n)
        tz = get_pack(cid).tz
        f = make(staff_of(n, staff))
        t = time.perf_counter()
        res = search(engine, cid, f, tz=tz, limit=50)
        times[name].append((time.perf_counter() - t) * 1000)
        found[name] += len(res.records)
        assert all(r.policy == cid for r in res.records), "a search returned another city's record"
    # where a search's time goes: PostgreSQL's planning (grows with the partitions it must consider) and
    # execution, for the common-word search on random cities (median of 20)
    from sqlalchemy import text

    from civicaup.records.search import plan

    plans, execs = [], []
    for _ in range(20):
        n = rng.choice(cities)
        cid = city_id(n)
        with engine.connect() as conn:
            _, select_ids, params, _ = plan(conn, Filters(text="please"), cid, get_pack(cid).tz)
            [doc] = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {select_ids} LIMIT 51"), params).scalar_one()
        plans.append(doc["Planning Time"])
        execs.append(doc["Execution Time"])
    every = [x for v in times.values() for x in v]
    return {"p50": pct(every, 50), "p95": pct(every, 95), "max": max(every),
            "by_kind": {k: (pct(v, 50), pct(v, 95)) for k, v in times.items() if v}, "found": dict(found),
            "plan_ms": statistics.median(plans), "exec_ms": statistics.median(execs)}


def run_api(url: str, home: Path, work: Path, cities: list[int], count: int, seed: int) -> dict[str, Any]:
    """`civicaup serve` for every city; REST calls on random cities from four clients."""
    from civicaup.governance import tokens
    from civicaup.stores.db import open_store
    from civicaup.stores.directory import list_people

    engine = open_store(url)
    heads = {}
    for n in cities:
        cid = city_id(n)
        it = next(p.email for p in list_people(engine, cid) if "it" in p.roles)
        heads[cid] = {"Authorization": "Bearer " + tokens.create(engine, cid, it, days=1).token}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [CIVICAUP, "serve", "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    for n in cities:
        argv += ["--policy", city_id(n)]
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen(argv, env={**os.environ, "CIVICAUP_HOME": str(home), "CIVICAUP_DB_URL": url},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("civicaup serve did not start: " + (work / "serve.log").read_text()[-800:])
                time.sleep(0.2)
        warm = time.perf_counter()
        for cid in heads:  # each city once: its pack compiled in the API process (which keeps only 32)
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/me", headers=heads[cid]),
                                        timeout=120) as r:
                r.read()
        warm_s = time.perf_counter() - warm
        paths = ["/v1/me", "/v1/quarantine", "/v1/audit/verify", "/v1/stats/decisions", "/v1/coverage"]
        rng = random.Random(seed)
        jobs = [(rng.choice(list(heads)), paths[i % len(paths)]) for i in range(count)]
        times: dict[str, list[float]] = {p: [] for p in paths}
        errors = Counter()
        lock = threading.Lock()

        def client(mine: list[tuple[str, str]]) -> None:
            for cid, path in mine:
                req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=heads[cid])
                t = time.perf_counter()
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        r.read()
                except urllib.error.HTTPError as exc:
                    with lock:
                        errors[exc.code] += 1
                with lock:
                    times[path].append((time.perf_counter() - t) * 1000)

        threads = [threading.Thread(target=client, args=(jobs[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            hwm = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmHWM")) / 1024
        except (OSError, StopIteration):
            hwm = 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    every = [x for v in times.values() for x in v]
    return {"p50": pct(every, 50), "p95": pct(every, 95), "max": max(every), "rss_mb": hwm, "warm_s": warm_s,
            "by_path": {p: (pct(v, 50), pct(v, 95)) for p, v in times.items() if v}, "errors": dict(errors)}


def db_facts(engine: Any) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        parts = conn.execute(text("SELECT count(*) FROM pg_class WHERE relispartition AND relkind IN ('r', 'p')"))\
            .scalar_one()
        rels = conn.execute(text("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = 'public'")).scalar_one()
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("audit", "web_usage", "archive_messages")}
        sizes = {t: conn.execute(text("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM "
                                      "pg_partition_tree(CAST(:t AS regclass)) WHERE isleaf"), {"t": t}).scalar_one()
                 for t in ("audit", "web_usage", "archive_messages", "archive_fts")}
    per_row = {t: sizes[t] / max(rows["archive_messages" if t == "archive_fts" else t], 1) for t in sizes}
    return {"db_mb": size / 2**20, "partitions": parts, "relations": rels, "rows": rows, "bytes_per_row": per_row}


def pool_map(fn: Any, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")  # fresh processes: honest memory figures, no shared pools
    with ctx.Pool(len(tasks), maxtasksperchild=1) as pool:
        return pool.map(fn, tasks)


# ---------------------------------------------------------------- a stage: N cities

def stage(n_cities: int, st: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from civicaup.policy.registry import get_pack
    from civicaup.stores.directory import import_people

    engine, home, work, url = st["engine"], st["home"], st["work"], st["url"]
    new = list(range(st["made"], n_cities))
    t = time.perf_counter()
    for n in new:
        cid = make_city(n, home, args.staff)
        import_people(engine, get_pack(cid), home / "packs" / cid / "directory.csv")
    st["made"] = n_cities
    setup_s = time.perf_counter() - t
    cities = list(range(n_cities))
    common = {"home": str(home), "url": url, "traffic": str(work / "traffic.pickle"), "work": str(work),
              "staff": args.staff, "stage": n_cities}
    w = max(1, min(args.workers, n_cities))

    # decisions for every city's day
    t, c0, s0 = time.perf_counter(), cpu_of_children(), server_cpu()
    results = pool_map(decision_worker, [{**common, "cities": cities[k::w], "web": args.web, "mail": args.mail}
                                         for k in range(w)])
    dec_wall = time.perf_counter() - t
    agg: dict[str, Any] = Counter()
    actions: Counter[str] = Counter()
    for r in results:
        for k in ("web", "mail", "web_cpu", "mail_cpu", "load_cpu", "audit", "audit_s", "usage_rows", "usage_s"):
            agg[k] += r[k]
        actions.update(r["actions"])
    dec_rss = max(r["rss_mb"] for r in results)
    dec_server = server_cpu() - s0

    # the archives of the cities that joined
    ing: dict[str, Any] = {"imported": 0, "failed": 0, "seconds": 0.0}
    ing_wall = ing_cpu = ing_server = 0.0
    if new and args.archive:
        wa = max(1, min(args.workers, len(new)))
        t, c0, s0 = time.perf_counter(), cpu_of_children(), server_cpu()
        for r in pool_map(archive_worker, [{**common, "cities": new[k::wa], "archive": args.archive}
                                           for k in range(wa)]):
            for k in ing:
                ing[k] += r[k]
        ing_wall, ing_cpu, ing_server = time.perf_counter() - t, cpu_of_children() - c0, server_cpu() - s0
    # what autovacuum does after a day: statistics for the planner. Outside a transaction block PostgreSQL
    # analyses each partition in its own transaction (in one, it would lock every partition at once)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("archive_messages", "archive_fts", "archive_addresses", "archive_attachments", "audit",
                      "web_usage"):
            conn.execute(text(f"ANALYZE {table}"))

    searches = run_searches(engine, cities, args.staff, args.searches, seed=n_cities)
    api = run_api(url, home, work, cities, args.api, seed=n_cities)
    facts = db_facts(engine)
    return {"cities": n_cities, "setup_s": setup_s, "dec_wall": dec_wall, "dec_server_cpu": dec_server, **agg,
            "actions": dict(actions), "dec_rss": dec_rss, "ing": ing, "ing_wall": ing_wall, "ing_cpu": ing_cpu,
            "ing_server_cpu": ing_server, "search": searches, "api": api, **facts}


def show(r: dict[str, Any], staff: int) -> None:
    web_rate = r["web"] / max(r["web_cpu"], 1e-9)
    mail_rate = r["mail"] / max(r["mail_cpu"], 1e-9)
    print(f"\n== {r['cities']} cities ({staff} staff each): set-up {r['setup_s']:.0f} s")
    print(f"   decisions: {r['web']:,} URLs and {r['mail']:,} messages in {r['dec_wall']:.0f} s wall")
    print(f"     URL decisions/s per core   {web_rate:10,.0f}")
    print(f"     mail decisions/s per core  {mail_rate:10,.0f}")
    print(f"     pack, directory, warm-up   {r['load_cpu'] / r['cities']:10.2f} CPU-s per city (once a process)")
    print(f"     audit entries written/s    {r['audit'] / max(r['audit_s'], 1e-9):10,.0f}  ({r['audit']:,} entries)")
    print(f"     web usage rows/s           {r['usage_rows'] / max(r['usage_s'], 1e-9):10,.0f}  "
          f"({r['usage_rows']:,} rows)")
    print(f"     actions: {', '.join(f'{k} {v:,}' for k, v in sorted(r['actions'].items()))}")
    print(f"     peak memory of a decision worker {r['dec_rss']:,.0f} MB; database server CPU "
          f"{r['dec_server_cpu']:.0f} s (the audit entries and web usage rows)")
    ing = r["ing"]
    if ing["imported"]:
        print(f"   archive ingest: {ing['imported']:,} messages ({ing['failed']} failed): "
              f"{ing['imported'] / r['ing_wall']:,.0f}/s wall, {ing['imported'] / max(r['ing_cpu'], 1e-9):,.0f} "
              f"per CPU-second of the importers, {ing['imported'] / max(r['ing_cpu'] + r['ing_server_cpu'], 1e-9):,.0f}"
              f" counting the database server's CPU")
    s = r["search"]
    print(f"   clerk searches: p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms, max {s['max']:.1f} ms; a common word: "
          f"planning {s['plan_ms']:.1f} ms, execution {s['exec_ms']:.1f} ms (medians)")
    for k, (p50, p95) in s["by_kind"].items():
        print(f"     {k:16} p50 {p50:7.1f}  p95 {p95:7.1f}  ({s['found'].get(k, 0)} results)")
    a = r["api"]
    print(f"   API: p50 {a['p50']:.1f} ms, p95 {a['p95']:.1f} ms, max {a['max']:.1f} ms after a first call per city "
          f"({a['warm_s']:.1f} s for all); API process peak memory {a['rss_mb']:,.0f} MB; "
          f"errors {a['errors'] or 'none'}")
    for k, (p50, p95) in a["by_path"].items():
        print(f"     {k:22} p50 {p50:7.1f}  p95 {p95:7.1f}")
    print(f"   database: {r['db_mb']:,.0f} MB, {r['partitions']:,} partitions ({r['relations']:,} relations); rows "
          + ", ".join(f"{k} {v:,}" for k, v in r["rows"].items()))
    print("   bytes a row, with its indexes: " + ", ".join(f"{k} {v:,.0f}" for k, v in r["bytes_per_row"].items())
          + " (archive_fts: per message)")


def summary(results: list[dict[str, Any]], staff: int) -> None:
    first = results[0]
    print("\n== how the figures grow")
    print(f"   {'cities':>6} {'URL/s/core':>11} {'mail/s/core':>12} {'ingest/s':>9} {'search p95':>11} "
          f"{'API p95':>9} {'plan/exec':>11} {'worker MB':>10} {'API MB':>7} {'DB MB':>8} {'partitions':>10}")
    for r in results:
        ing = r["ing"]["imported"] / r["ing_wall"] if r["ing_wall"] else 0.0
        print(f"   {r['cities']:>6} {r['web'] / r['web_cpu']:>11,.0f} {r['mail'] / r['mail_cpu']:>12,.0f} "
              f"{ing:>9,.0f} {r['search']['p95']:>9.1f}ms {r['api']['p95']:>7.1f}ms "
              f"{r['search']['plan_ms']:>5.1f}/{r['search']['exec_ms']:<5.1f} "
              f"{r['dec_rss']:>10,.0f} {r['api']['rss_mb']:>7,.0f} {r['db_mb']:>8,.0f} {r['partitions']:>10,}")
    last = results[-1]
    if last is not first:
        growth = ((last["web"] / last["web_cpu"]) / (first["web"] / first["web_cpu"]))
        print(f"   from {first['cities']} to {last['cities']} cities: search p95 "
              f"x{last['search']['p95'] / first['search']['p95']:.1f}, API p95 "
              f"x{last['api']['p95'] / first['api']['p95']:.1f}, URL decisions/core x{growth:.2f}")
    web_rate = last["web"] / last["web_cpu"]
    mail_rate = last["mail"] / last["mail_cpu"]
    for r in results:
        urls, mails = r["cities"] * staff * DAY_URLS, r["cities"] * staff * DAY_MAILS
        core_h = (urls / web_rate + mails / mail_rate) / 3600
        print(f"   a working day of {r['cities']} cities ({urls:,} URL requests, {mails:,} messages) is "
              f"{core_h:,.2f} core-hours of decisions ({core_h / 8:,.2f} cores over an 8-hour day; peaks run "
              f"3-4x the mean)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cities", default=None, help="city counts, ascending (default 10,100,300; --quick 2,5)")
    ap.add_argument("--staff", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="a small run: few cities, a sliver of a day each")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--web", type=int, default=None, help="URL decisions per city (default 1000; quick 100)")
    ap.add_argument("--mail", type=int, default=None, help="mail decisions per city (default 40; quick 5)")
    ap.add_argument("--archive", type=int, default=None, help="archived messages per city (default 200; quick 10)")
    ap.add_argument("--searches", type=int, default=None, help="clerk searches per city count (default 400)")
    ap.add_argument("--api", type=int, default=None, help="API calls per city count (default 400)")
    ap.add_argument("--budget", type=float, default=5400.0, help="seconds; later city counts are skipped")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    q = args.quick
    counts = [int(x) for x in (args.cities or ("2,5" if q else "10,100,300")).split(",")]
    if counts != sorted(counts) or counts[0] < 1 or counts[-1] > 999:
        sys.exit("--cities: ascending counts from 1 to 999")
    args.web = args.web if args.web is not None else (100 if q else 1000)
    args.mail = args.mail if args.mail is not None else (5 if q else 40)
    args.archive = args.archive if args.archive is not None else (10 if q else 200)
    args.searches = args.searches if args.searches is not None else (40 if q else 400)
    args.api = args.api if args.api is not None else (40 if q else 400)
    if not (CORPUS.is_file() and UT1.is_dir()):
        sys.exit(f"the shared data is not at {DATA}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="civicaup-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    home.mkdir(exist_ok=True)
    os.environ["CIVICAUP_HOME"] = str(home)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; work dir {work}")
    print(f"cities {counts}, {args.staff} staff each; per city: {args.web} URLs, {args.mail} messages, "
          f"{args.archive} archived messages; {args.workers} workers")
    started = time.perf_counter()
    try:
        run(counts, args, work, home, started)
    finally:
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(counts: list[int], args: argparse.Namespace, work: Path, home: Path, started: float) -> None:
    """The traffic, the server, then each city count."""
    import pickle

    from civicaup.channels.web.categories import CategoryIndex

    built = CategoryIndex.build([UT1], out=home / "categories.idx")
    print(f"category index: {built.domains:,} domains, {built.url_entries:,} URL entries from UT1")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        shapes = corpus_shapes(Path(tmp))
    (work / "traffic.pickle").write_bytes(pickle.dumps((ut1_sites(random.Random(11)), shapes)))
    print(f"mail shapes: {len(shapes):,} corpus messages")

    pg = start_postgres()
    url = pg.create_database("civicaup_league")
    SERVER_PID[0] = pg.proc.pid if pg.proc else 0
    os.environ["CIVICAUP_DB_URL"] = url
    results = []
    try:
        from civicaup.stores.db import open_store

        engine = open_store(url)
        st = {"engine": engine, "home": home, "work": work, "url": url, "made": 0}
        for n in counts:
            spent = time.perf_counter() - started
            if spent > args.budget:
                print(f"\n== {n} cities skipped: {spent:.0f} s spent, over the --budget of {args.budget:.0f} s")
                break
            r = stage(n, st, args)
            show(r, args.staff)
            results.append(r)
        if results:
            summary(results, args.staff)
            (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
        engine.dispose()
    finally:
        pg.stop()  # fast shutdown of the postmaster, by its PID

if __name__ == "__main__":
    main()
