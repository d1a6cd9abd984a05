#!/usr/bin/env python3
"""Benchmark: archive ingest and clerk searches at city scale, on SQLite and on PostgreSQL.

    .venv/bin/python bench/archive.py [--count 1000000] [--jobs N] [--pg URL | --pg-local] [--no-sqlite]
                                      [--workdir DIR] [--keep] [--baseline CHECKOUT [--rounds N]]

Generates an mbox of COUNT messages that reuse the shapes of the real SpamAssassin corpus (its bodies,
MIME structures and subjects, sampled with a fixed seed) with city headers: 200 staff and 3,000 outside
correspondents, dates spread over ten years, some attachments, and a few words clerks search for. Then it
imports the mbox through `civicaup archive import`'s code path (parse in worker processes, originals
appended to segment files, batched inserts) in a child process and prints messages/second (wall, and per
CPU-second of all processes, with the importing process's own share: the serial part), the database and
originals size per message, and p50/p95 latency of ten typical clerk searches (each run with several
parameter values). With --pg URL (or --pg-local, which starts Debian's PostgreSQL on a free loopback port)
the same is measured on PostgreSQL.

--baseline CHECKOUT imports the same mbox with another checkout's code too (e.g. `git worktree add
/tmp/base <commit>`), alternating the two for --rounds rounds, and prints both and their ratio: on a shared
machine only figures from the same run compare. Not run in CI.

Peer figures (DESIGN.md, same kind of machine): notmuch/Xapian and naive Python + SQLite FTS5 or
PostgreSQL ingest about 260-340 messages per CPU-second; "newest 50 of a common word" projects past
200 ms at 1,000,000 for naive SQL.

Apache SpamAssassin public corpus: PDDL 1.0 / CC0.
"""
from __future__ import annotations

import argparse
import email
import glob
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from email import policy as email_policy
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.pg_instance import PgInstance, PostgresUnavailable  # noqa: E402 - the tests' PostgreSQL starter

CORPUS = ROOT.parent / "shared" / "data" / "mail" / "spamassassin-public-corpus.tar.xz"
POLICY = "kirkwood-mo"
DOMAIN = "kirkwoodmo.org"
WORDS = ["lobbyist", "lobbyists", "subpoena", "zoning variance", "city council", "budget amendment", "contract",
         "sidewalk", "annexation", "tax increment financing"]


# ---------------------------------------------------------------- the generated archive

def corpus_shapes(tmp: Path) -> list[tuple[str, bytes, str]]:
    """(content headers, body bytes, subject) of every corpus message: real MIME structures and texts."""
    with tarfile.open(CORPUS) as tf:
        tf.extractall(tmp, filter="data")
    shapes = []
    for f in sorted(tmp.rglob("*")):
        if not f.is_file():
            continue
        raw = f.read_bytes()
        if raw.startswith(b"From "):
            raw = raw[raw.find(b"\n") + 1:]
        head, sep, body = raw.partition(b"\n\n")
        if not sep:
            continue
        msg = email.message_from_bytes(head + b"\n\n", policy=email_policy.compat32)
        keep = "".join(f"{k}: {v}\n" for k, v in msg.items()
                       if k.lower() in ("content-type", "content-transfer-encoding", "mime-version"))
        subject = " ".join(str(msg.get("subject", "")).split())[:120]
        shapes.append((keep, body.replace(b"\nFrom ", b"\n>From "), subject))
    return shapes


def generate(path: Path, count: int, seed: int) -> float:
    """Write COUNT messages to an mbox; returns the mean message size."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        shapes = corpus_shapes(Path(tmp))
    first = ["pat", "dana", "lee", "sam", "kim", "alex", "jo", "morgan", "chris", "taylor", "jordan", "casey"]
    last = ["jones", "reed", "chan", "ortiz", "nguyen", "brown", "smith", "lee", "garcia", "miller", "davis"]
    staff = sorted({f"{rng.choice(first)}.{rng.choice(last)}{rng.randint(1, 30)}@{DOMAIN}" for _ in range(400)})[:200]
    outside_domains = [f"{w}{i}.example.{tld}" for i, w in enumerate(["acme", "county", "state", "vendor", "news",
                                                                       "law", "bank", "school"] * 25)
                       for tld in ("com",)]
    outside = [f"{rng.choice(first)}{i}@{rng.choice(outside_domains)}" for i in range(3000)]
    start = datetime(2016, 1, 1, tzinfo=timezone.utc)
    span = int((datetime(2026, 1, 1, tzinfo=timezone.utc) - start).total_seconds())
    total = 0
    with open(path, "wb") as out:
        for n in range(count):
            ctype, body, subject = rng.choice(shapes)
            sender = rng.choice(staff) if rng.random() < 0.6 else rng.choice(outside)
            to = rng.sample(staff, rng.choice((1, 1, 1, 2, 3)))
            cc = rng.sample(staff + outside, rng.choice((0, 0, 0, 1, 2)))
            when = start + timedelta(seconds=rng.randrange(span))
            if rng.random() < 0.05:
                subject = f"{rng.choice(WORDS).title()}: {subject}"
            extra = f"\n\nRe: {rng.choice(WORDS)} (case {n})\n".encode() if rng.random() < 0.05 else b""
            head = (f"From: {sender}\nTo: {', '.join(to)}\n" + (f"Cc: {', '.join(cc)}\n" if cc else "") +
                    f"Subject: {subject}\nDate: {format_datetime(when)}\nMessage-ID: <bench.{seed}.{n}@{DOMAIN}>\n")
            if rng.random() < 0.03:  # a message with a named attachment
                name = rng.choice(["Budget-FY{y}.xlsx", "minutes-{y}.pdf", "contract-{y}.docx", "site-plan-{y}.pdf"])
                name = name.format(y=when.year)
                msg = (head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n"
                       "Content-Type: text/plain; charset=us-ascii\n\nSee attached.\n--b1\nContent-Type: "
                       f"application/octet-stream; name=\"{name}\"\nContent-Disposition: attachment; "
                       f"filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\nUEsDBAoAAAAAAA==\n--b1--\n"
                       ).encode() + extra
            else:
                msg = (head + ctype).encode("utf-8", "replace") + b"\n" + body + extra
            out.write(b"From bench@" + DOMAIN.encode() + b" Thu Jan  1 00:00:00 2026\n" + msg + b"\n")
            total += len(msg)
    return total / max(count, 1)


# ---------------------------------------------------------------- stores

def start_postgres() -> PgInstance:
    """Debian's PostgreSQL on a free loopback port with bulk-load settings (tests/pg_instance.py)."""
    try:
        return PgInstance(settings={"shared_buffers": "1GB", "work_mem": "64MB", "maintenance_work_mem": "512MB",
                                    "synchronous_commit": "off", "max_wal_size": "4GB"},
                          prefix="civicaup-bench-pg-").start()
    except PostgresUnavailable as exc:
        sys.exit(str(exc))


def db_bytes(engine) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            path = Path(engine.url.database)
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------- the measurements

def server_cpu() -> float:
    """CPU seconds used so far by PostgreSQL server processes on this machine (0 where there are none)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        name, rest = text[text.find("(") + 1:text.rfind(")")], text[text.rfind(")") + 2:].split()
        if name.startswith("postgres"):
            total += (int(rest[11]) + int(rest[12])) / tick
    return total


def ingest(url: str, mbox: Path, jobs: int | None) -> dict[str, float]:
    """In this process (the child): import the mbox, return counts and CPU seconds."""
    from civicaup.policy.registry import get_pack
    from civicaup.records.archive import import_paths
    from civicaup.stores.db import open_store
    from civicaup.stores.directory import import_people

    engine = open_store(url)
    import_people(engine, get_pack(POLICY), ROOT / "src" / "civicaup" / "policy" / "packs" / POLICY / "directory.csv")
    s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    last = [time.perf_counter()]

    def progress(rep) -> None:  # type: ignore[no-untyped-def]
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"    ... {rep.imported + rep.duplicate:,} messages", file=sys.stderr, flush=True)

    pg0 = server_cpu() if engine.dialect.name == "postgresql" else 0.0
    report = import_paths(engine, [mbox], policy=POLICY, jobs=jobs, progress=progress)
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    pg = server_cpu() - pg0 if engine.dialect.name == "postgresql" else 0.0  # while its backends still live
    own = s1.ru_utime - s0.ru_utime + s1.ru_stime - s0.ru_stime
    return {"imported": report.imported, "failed": report.failed, "seconds": report.seconds,
            "cpu": own + c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime, "main_cpu": own, "server_cpu": pg}


def ingest_child(code: Path, url: str, mbox: Path, home: Path, jobs: int | None) -> dict[str, float]:
    """Run `ingest` in a child process with `code`'s civicaup (this checkout, or a baseline's)."""
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "CIVICAUP_HOME": str(home)}
    env.pop("CIVICAUP_DB_URL", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ingest-child", url, str(mbox), str(home)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def searches(rng: random.Random, staff: list[str]) -> list[tuple[str, list[dict[str, object]]]]:
    """Ten typical clerk searches, each with five parameter values."""
    def day(y: int, m: int) -> date:
        return date(y, m, 1)

    years = list(range(2016, 2026))
    return [
        ("rare word, newest 50", [{"text": w} for w in ("lobbyist", "subpoena", "annexation", "variance", "sidewalk")]),
        ("common word, newest 50", [{"text": w} for w in ("the", "list", "free", "time", "please")]),
        ("phrase", [{"text": f'"{p}"'} for p in ("city council", "budget amendment", "zoning variance",
                                                 "tax increment financing", "mailing list")]),
        ("sender", [{"from_": rng.choice(staff)} for _ in range(5)]),
        ("recipient", [{"to": rng.choice(staff)} for _ in range(5)]),
        ("one month", [{"since": day(y, 3), "until": day(y, 3) + timedelta(days=30)} for y in rng.sample(years, 5)]),
        ("word + year", [{"text": w, "since": day(y, 1), "until": day(y, 12) + timedelta(days=30)}
                         for w, y in zip(("contract", "budget", "meeting", "lobbyist", "report"),
                                         rng.sample(years, 5))]),
        ("word + sender", [{"text": w, "from_": rng.choice(staff)} for w in ("the", "budget", "list", "free", "a")]),
        ("attachment name", [{"attachment": a} for a in ("budget-fy", "minutes-2019", "contract", "site-plan", ".pdf")]),
        ("OR + exclusion, counted", [{"text": q, "count": True} for q in (
            "lobbyist OR subpoena", "sidewalk OR annexation -budget", "contract -renewal", "zoning OR variance",
            "budget OR amendment")]),
    ]


def run_searches(engine, staff: list[str], seed: int) -> None:  # type: ignore[no-untyped-def]
    from civicaup.records.search import Filters, search

    tz = ZoneInfo("America/Chicago")
    all_ms: list[float] = []
    print(f"    {'search':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  results (first value)")
    for name, variants in searches(random.Random(seed), staff):
        times, first = [], None
        for _ in range(3):
            for v in variants:
                kw = dict(v)
                count = bool(kw.pop("count", False))
                t = time.perf_counter()
                res = search(engine, POLICY, Filters(**kw), tz=tz, limit=50, count=count)  # type: ignore[arg-type]
                times.append((time.perf_counter() - t) * 1000)
                if first is None:
                    first = (res.count if count else len(res.records), res.plan)
        all_ms += times
        q = statistics.quantiles(times, n=20)
        print(f"    {name:28} {statistics.median(times):8.1f} {q[18]:8.1f} {max(times):8.1f}  {first}")
    q = statistics.quantiles(all_ms, n=20)
    print(f"    {'all searches':28} {statistics.median(all_ms):8.1f} {q[18]:8.1f} {max(all_ms):8.1f}")


def staff_of(engine) -> list[str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT address FROM archive_addresses WHERE kind = 'from' AND address LIKE :d GROUP BY address "
            "ORDER BY address LIMIT 200"), {"d": f"%@{DOMAIN}"})]


def rates(stats: dict[str, float]) -> str:
    n = stats["imported"]
    return (f"{n / stats['seconds']:,.0f} messages/s wall ({stats['seconds']:.0f} s), "
            f"{n / max(stats['cpu'], 1e-9):,.0f} per CPU-second of civicaup's processes (importing process "
            f"{stats['main_cpu'] * 1000 / max(n, 1):.3f} CPU-ms a message, workers "
            f"{(stats['cpu'] - stats['main_cpu']) * 1000 / max(n, 1):.3f})"
            + (f", {n / max(stats['cpu'] + stats['server_cpu'], 1e-9):,.0f} counting the database server's CPU too"
               if stats["server_cpu"] else ""))


def report(label: str, engine, runs: list[dict[str, float]],  # type: ignore[no-untyped-def]
           base: list[dict[str, float]], home: Path, n: int, mean_size: float, seed: int) -> None:
    db, originals = db_bytes(engine), dir_bytes(home / "archive")
    stats = runs[-1]
    print(f"\n== {label}: {stats['imported']:,} messages imported ({stats['failed']} failed)")
    for r in runs:
        print(f"    ingest: {rates(r)}")
    for r in base:
        print(f"    baseline ingest: {rates(r)}")
    if base:
        wall = statistics.median(r["imported"] / r["seconds"] for r in runs) / statistics.median(
            r["imported"] / r["seconds"] for r in base)
        cpu = statistics.median(r["imported"] / r["cpu"] for r in runs) / statistics.median(
            r["imported"] / r["cpu"] for r in base)
        print(f"    this checkout / baseline (medians of {len(runs)} alternating rounds): {wall:.2f}x messages/s, "
              f"{cpu:.2f}x messages per CPU-second")
    print(f"    database: {db / n:,.0f} bytes/message ({db / 2**20:,.0f} MiB); originals (segments, Zstandard): "
          f"{originals / n:,.0f} bytes/message; mean message {mean_size:,.0f} bytes")
    run_searches(engine, staff_of(engine), seed)


def measure(label: str, url_for, args, mbox: Path, work: Path, mean: float) -> None:  # type: ignore[no-untyped-def]
    """Import with this checkout (and the baseline, alternating), then time the searches on this checkout's."""
    from civicaup.stores.db import open_store

    runs: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    kept: tuple[str, Path] | None = None  # this checkout's newest import: the one searched
    for r in range(args.rounds if args.baseline else 1):
        order = [("this", ROOT), ("baseline", args.baseline)] if args.baseline else [("this", ROOT)]
        for name, code in (order if r % 2 == 0 else order[::-1]):
            home = work / f"{label}-{name}-{r}"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            url = url_for(f"{name}_{r}", home)
            stats = ingest_child(code, url, mbox, home, args.jobs)
            print(f"    {name}: {rates(stats)}; load average {os.getloadavg()[0]:.1f}", flush=True)
            (runs if name == "this" else base).append(stats)
            if name == "this":
                if kept is not None:
                    shutil.rmtree(kept[1], ignore_errors=True)
                kept = (url, home)
            else:
                shutil.rmtree(home, ignore_errors=True)
    assert kept is not None
    os.environ["CIVICAUP_HOME"] = str(kept[1])
    engine = open_store(kept[0])
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    report("SQLite (FTS5, Porter stemmer)" if engine.dialect.name == "sqlite" else
           "PostgreSQL (tsvector, english, GIN)", engine, runs, base, kept[1], args.count, mean, args.seed)


def synthetic(url: str, count: int, seed: int) -> tuple[object, dict[str, float]]:
    """Search scale without the ingest wait: every corpus message parsed once, then COUNT rows made from them
    (new hash, date, sender, recipients; the same bodies, so the text index has the same shape) and inserted
    through the archive's own batch insert. No originals are written: searches only read the index."""
    import hashlib

    from civicaup.policy.registry import get_pack
    from civicaup.records import ingest
    from civicaup.records.extract import extract
    from civicaup.stores.db import open_store

    engine = open_store(url)
    assigner = ingest.assigner_for(engine, POLICY)
    keep = engine.dialect.name == "sqlite"
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tf_root = Path(tmp)
        with tarfile.open(CORPUS) as tf:
            tf.extractall(tf_root, filter="data")
        bases = []
        for f in sorted(tf_root.rglob("*")):
            if f.is_file():
                raw = f.read_bytes()
                raw = raw[raw.find(b"\n") + 1:] if raw.startswith(b"From ") else raw
                bases.append(ingest.prepare(extract(raw), "bench", assigner, keep))
    staff = [f"staff{i}@{DOMAIN}" for i in range(200)]
    outside = [f"person{i}@org{i % 97}.example.com" for i in range(3000)]
    start = datetime(2016, 1, 1, tzinfo=timezone.utc)
    span = int((datetime(2026, 1, 1, tzinfo=timezone.utc) - start).total_seconds())
    t, c = time.perf_counter(), time.process_time()
    batch = []
    for n in range(count):
        b = rng.choice(bases)
        sender = rng.choice(staff) if rng.random() < 0.6 else rng.choice(outside)
        to = rng.sample(staff, rng.choice((1, 1, 2, 3)))
        addrs = tuple([("from", sender, ingest._rdomain(sender))] + [("to", a, ingest._rdomain(a)) for a in to])
        subject = f"{rng.choice(WORDS).title()}: {b.subject}" if rng.random() < 0.05 else b.subject
        atts = (f"budget-fy{rng.randrange(2016, 2026)}.xlsx",) if rng.random() < 0.03 else b.attachment_names
        batch.append(b._replace(sha256=hashlib.sha256(f"{seed}-{n}".encode()).hexdigest(),
                                date=start + timedelta(seconds=rng.randrange(span)), from_addr=sender,
                                to=", ".join(to), subject=subject, addresses=addrs, attachment_names=atts,
                                message_id=f"<synthetic.{n}@{DOMAIN}>"))
        if len(batch) == 2000:
            with engine.begin() as conn:
                ingest.insert_batch(conn, POLICY, batch)
            batch = []
            if n % 100_000 < 2000:
                print(f"    ... {n + 1:,} rows", flush=True)
    if batch:
        with engine.begin() as conn:
            ingest.insert_batch(conn, POLICY, batch)
    get_pack(POLICY)
    return engine, {"imported": count, "failed": 0, "seconds": time.perf_counter() - t,
                    "cpu": time.process_time() - c, "server_cpu": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=None, help="parser processes (default: one a CPU)")
    ap.add_argument("--pg", help="a PostgreSQL URL (postgresql+psycopg://...) to measure too")
    ap.add_argument("--pg-local", action="store_true", help="start Debian's PostgreSQL on loopback and measure it")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--search-scale", action="store_true",
                    help="skip generation and ingest: build COUNT index rows from the parsed corpus, time searches")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout (e.g. a git worktree of an earlier commit) to import the same mbox with")
    ap.add_argument("--rounds", type=int, default=1, help="with --baseline: alternating rounds (default 1)")
    ap.add_argument("--ingest-child", nargs=3, metavar=("URL", "MBOX", "HOME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ingest_child:
        url, mbox_path, _ = args.ingest_child
        print(json.dumps(ingest(url, Path(mbox_path), args.jobs)))
        return
    if not CORPUS.is_file():
        sys.exit(f"the SpamAssassin corpus is not at {CORPUS}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="civicaup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    mbox = work / "archive.mbox"
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; work dir {work}")
    if args.search_scale:
        home = work / "scale-home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["CIVICAUP_HOME"] = str(home)
        url, pg = args.pg, None
        if args.pg_local and not url:
            pg = start_postgres()
            url = pg.create_database("civicaup_bench")
        try:
            engine, stats = synthetic(url or f"sqlite:///{home / 'civicaup.db'}", args.count, args.seed)
        except BaseException:
            if pg is not None:
                pg.stop()
            raise
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        print(f"\n== {engine.dialect.name}: {args.count:,} index rows built from parsed corpus messages in "
              f"{stats['seconds']:.0f} s (rows only: {args.count / stats['seconds']:,.0f}/s, no parsing, no originals)")
        print(f"    database: {db_bytes(engine) / args.count:,.0f} bytes/message")
        run_searches(engine, staff_of(engine), args.seed)
        if pg is not None:
            engine.dispose()
            pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    t = time.perf_counter()
    mean = generate(mbox, args.count, args.seed)
    print(f"generated {args.count:,} messages ({mbox.stat().st_size / 2**20:,.0f} MiB) in "
          f"{time.perf_counter() - t:.0f} s")
    pg = None
    try:
        if not args.no_sqlite:
            measure("sqlite", lambda name, home: f"sqlite:///{home / 'civicaup.db'}", args, mbox, work, mean)
        url = args.pg
        if args.pg_local and not url:
            pg = start_postgres()
            url = pg.create_database("civicaup_bench")
        if url:
            measure("pg", lambda name, home: pg_database(url, f"bench_{name}"), args, mbox, work, mean)
    finally:
        if pg is not None:
            pg.stop()  # fast shutdown of the postmaster, by its PID
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def pg_database(url: str, name: str) -> str:
    """A fresh database on the server of `url` for one import (each run starts empty)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
