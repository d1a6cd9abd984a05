#!/usr/bin/env python3
"""Benchmark: civicaup category look-ups on the UT1 lists, and squidGuard on the same lists if installed.

    .venv/bin/python bench/bench_url_lookup.py [--n 200000] [--ut1 ../shared/data/ut1]

Builds the index into a temp folder, looks up N URLs (half listed: an entry, www.+entry, a deep
subdomain or a path under a url entry; half unlisted) on one core and prints look-ups/s and RSS.
With ``squidGuard`` on PATH (Debian package ``squidguard``), it compiles the same lists, pipes the
same URLs through it, and prints its rate and how many listed URLs each side missed.

UT1 blacklists: Université Toulouse 1 Capitole, CC BY-SA 4.0.
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.url import NormalURL, normalise_url
from civicaup.errors import BadURLError

ROOT = Path(__file__).resolve().parents[1]
MAX_N = 2_000_000


def rss_mb() -> float:
    """Resident set size of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(ut1: Path, n: int, rng: random.Random) -> tuple[list[str], list[bool]]:
    """N URLs, about half of them listed (in some domain or url list), with the expected verdicts."""
    domains: list[str] = []
    urls: list[str] = []
    for folder in sorted(p for p in ut1.iterdir() if p.is_dir()):
        for name, bucket in (("domains", domains), ("urls", urls)):
            if (folder / name).is_file():
                bucket.extend(s.strip() for s in (folder / name).read_text(errors="replace").splitlines()
                              if s.strip() and not s.startswith("#"))
    out: list[str] = []
    listed: list[bool] = []
    for i in range(n):
        if i % 2:
            out.append(f"http://host{rng.randrange(10**9)}.unlisted-{rng.randrange(1000)}.example/p/{i}")
            listed.append(False)
            continue
        kind = rng.randrange(4)
        if kind == 3 and urls:
            out.append("http://" + rng.choice(urls))
        else:
            d = rng.choice(domains)
            host = d if d.rsplit(".", 1)[-1].isdigit() else (d, "www." + d, "a.b.c." + d)[kind % 3]  # IPs as is
            out.append(f"http://{host}/some/page?x=1")
        listed.append(True)
    return out, listed


def bench_civicaup(ut1: Path, tmp: Path, urls: list[str]) -> list[bool]:
    """Build, load and look up; prints the numbers; returns the verdict (listed or not) per URL."""
    report = CategoryIndex.build([ut1], out=tmp / "categories.idx")
    size = report.path.stat().st_size
    print(f"civicaup build: {report.domains:,} domains + {report.url_entries:,} url entries "
          f"in {report.seconds:.2f} s, file {size / 1e6:.1f} MB, skipped {report.skipped}")
    before = rss_mb()
    index = CategoryIndex.load(report.path)
    print(f"civicaup load: RSS +{rss_mb() - before:.1f} MB (file pages, mmap)")
    parsed: list[NormalURL | None] = []
    started = time.perf_counter()
    for u in urls:
        try:
            parsed.append(normalise_url(u))
        except BadURLError:
            parsed.append(None)
    t_norm = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = [bool(index.lookup(p)) if p is not None else False for p in parsed]
    t_look = time.perf_counter() - started
    n = len(urls)
    print(f"civicaup: normalise {n / t_norm:,.0f}/s, lookup {n / t_look:,.0f}/s, "
          f"normalise+lookup {n / (t_norm + t_look):,.0f}/s per core; RSS {rss_mb():.0f} MB")
    return verdicts


def bench_squidguard(ut1: Path, tmp: Path, urls: list[str]) -> list[bool] | None:
    """Compile the same lists for squidGuard, pipe the URLs through it; None if it is not installed."""
    exe = shutil.which("squidGuard")
    if exe is None:
        print("squidGuard: not on PATH (Debian package 'squidguard'); skipped")
        return None
    db, logdir = tmp / "sgdb", tmp / "sglog"
    logdir.mkdir()
    dests = []
    for folder in sorted(p for p in ut1.iterdir() if p.is_dir()):
        lines = [f"dest {folder.name.replace('-', '_')} {{"]
        for name, kind in (("domains", "domainlist"), ("urls", "urllist")):
            if (folder / name).is_file():
                (db / folder.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(folder / name, db / folder.name / name)
                lines.append(f"  {kind} {folder.name}/{name}")
        if len(lines) > 1:
            dests.append((folder.name.replace("-", "_"), "\n".join(lines + ["}"])))
    conf = tmp / "squidGuard.conf"
    conf.write_text(f"dbhome {db}\nlogdir {logdir}\n" + "\n".join(d for _, d in dests)
                    + "\nacl {\n default {\n  pass " + " ".join(f"!{n}" for n, _ in dests)
                    + " all\n  redirect http://blocked.invalid/\n }\n}\n")
    feed = "".join(f"{u} 10.0.0.1/- - GET\n" for u in urls).encode()
    try:
        started = time.perf_counter()
        subprocess.run([exe, "-c", str(conf), "-C", "all"], check=True, capture_output=True)
        print(f"squidGuard compile: {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        res = subprocess.run([exe, "-c", str(conf)], input=feed, capture_output=True, check=True)
        elapsed = time.perf_counter() - started
    except subprocess.CalledProcessError as e:
        print(f"squidGuard failed (exit {e.returncode}): {e.stderr.decode(errors='replace').strip()[:200]}")
        return None
    answers = res.stdout.decode().splitlines()
    print(f"squidGuard: {len(urls) / elapsed:,.0f} look-ups/s (one process, incl. start-up and db open)")
    return [a.startswith("OK") for a in answers]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help=f"look-ups (at most {MAX_N:,})")
    ap.add_argument("--ut1", type=Path, default=ROOT.parent / "shared" / "data" / "ut1")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not args.ut1.is_dir():
        print(f"no UT1 lists at {args.ut1}", file=sys.stderr)
        return 2
    urls, listed = sample(args.ut1, min(args.n, MAX_N), random.Random(args.seed))
    with tempfile.TemporaryDirectory(prefix="civicaup-bench-") as tmp:
        ours = bench_civicaup(args.ut1, Path(tmp), urls)
        theirs = bench_squidguard(args.ut1, Path(tmp), urls)
    expected = sum(listed)
    ours_missed = sum(e and not o for e, o in zip(listed, ours, strict=True))
    print(f"listed URLs in sample: {expected:,}; civicaup missed {ours_missed:,}")
    if theirs is not None and len(theirs) == len(urls):
        missed = sum(e and not t for e, t in zip(listed, theirs, strict=True))
        print(f"squidGuard missed {missed:,} ({missed / max(expected, 1):.1%}); "
              f"blocked-but-unlisted: civicaup {sum(o and not e for e, o in zip(listed, ours, strict=True)):,}, "
              f"squidGuard {sum(t and not e for e, t in zip(listed, theirs, strict=True)):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
