#!/usr/bin/env python3
"""Benchmark: civicaup's Squid helper against squidGuard, through each one's helper protocol.

    .venv/bin/python bench/web.py [--n 200000] [--ut1 ../shared/data/ut1] [--synthetic 5000000] [--seed 7]

1. Builds the category index from the UT1 lists (read in place, written to a temp folder) and, in the
   same run, squidGuard's databases from the same lists (Debian package ``squidguard``:
   ``apt-get install squidguard``; skipped if it is not on PATH). Prints build time and peak memory.
2. Feeds the same seeded URL stream (listed domains, www. and deeper subdomains of listed domains, URL-path
   entries, unlisted hosts) through ``civicaup squid-helper`` (Squid's concurrent external ACL protocol,
   Kirkwood's policy, a working-hours clock so personal-use logging and the audit log are exercised) and
   through ``squidGuard`` (its redirector protocol). Prints decisions per second (wall, and per CPU-second
   of the deciding process: "per core"), peak memory, recall on listed hosts / subdomains / paths and
   false positives on unlisted hosts, and the ratios. The helper sees the stream cold (every URL new to
   its caches), then its last 50,000 URLs again (answered from its cache), then a stream where URLs
   repeat as in real traffic (Zipf-like popularity over the same URLs). It does so twice in the same run:
   with the compiled per-line path (``_fastpath``) and with ``CIVICAUP_PURE_PYTHON=1``, and says whether
   the answers were identical.
3. Builds an index from N synthetic domains (seeded) and prints build time and peak memory, file size,
   resident memory of the loaded index (total and per domain) and the look-up rate.

It asserts nothing about speed: it prints figures. UT1 blacklists: Université Toulouse 1 Capitole,
CC BY-SA 4.0 (https://dsi.ut-capitole.fr/blacklists/).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIVICAUP = str(Path(sys.executable).with_name("civicaup"))
TICK = os.sysconf("SC_CLK_TCK")
WORK_TIME = "2026-03-03T10:00"  # a Tuesday morning in Kirkwood: personal-use logging is on


# -- processes: CPU and memory ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run to completion: (wall seconds, peak RSS MB of that process, its stdout)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.read().decode(errors='replace')[-500:]}")
    return wall, usage.ru_maxrss / 1024, out.decode(errors="replace")


# -- the URL stream ---------------------------------------------------------------------------------------


@dataclass
class Stream:
    urls: list[str]
    kinds: list[str]  # listed-domain, subdomain, path, unlisted


def read_lists(ut1: Path) -> tuple[list[str], list[str]]:
    domains: list[str] = []
    urls: list[str] = []
    for folder in sorted(p for p in ut1.iterdir() if p.is_dir()):
        for name, bucket in (("domains", domains), ("urls", urls)):
            f = folder / name
            if f.is_file():
                bucket.extend(s.strip() for s in f.read_text(errors="replace").splitlines()
                              if s.strip() and not s.startswith("#") and " " not in s.strip())
    return domains, urls


def make_stream(ut1: Path, n: int, rng: random.Random) -> Stream:
    domains, urls = read_lists(ut1)
    names = [d for d in domains if not d.replace(".", "").isdigit()]
    out: list[str] = []
    kinds: list[str] = []
    for i in range(n):
        r = rng.random()
        if r < 0.25:
            d = rng.choice(domains)
            out.append(f"http://{d}/p/{i}?q={i % 97}")
            kinds.append("listed-domain")
        elif r < 0.40:
            d = rng.choice(names)
            out.append(f"http://{rng.choice(['www.', 'cdn.', 'a.b.', 'm.'])}{d}/img/{i}.png")
            kinds.append("subdomain")
        elif r < 0.50 and urls:
            u = rng.choice(urls)
            out.append("http://" + u + ("" if u.endswith("/") else "/") + f"x{i}")
            kinds.append("path")
        else:
            out.append(f"http://host{rng.randrange(10**9)}.unlisted-{rng.randrange(5000)}.example/p/{i}")
            kinds.append("unlisted")
    return Stream(out, kinds)


def zipf_stream(stream: Stream, n: int, rng: random.Random) -> Stream:
    """*n* requests drawn from the stream's URLs with a Zipf-like popularity (real traffic repeats)."""
    weights = [1.0 / (k + 1) ** 1.1 for k in range(len(stream.urls))]
    picks = rng.choices(range(len(stream.urls)), weights=weights, k=n)
    return Stream([stream.urls[k] for k in picks], [stream.kinds[k] for k in picks])


# -- driving a helper through its protocol ------------------------------------------------------------------


@dataclass
class Run:
    answers: list[bytes]
    wall: float
    cpu: float  # of the deciding process
    cpu_other: float  # of its children (civicaup's audit writer)


class Driver:
    """A helper process on pipes: send a block of lines from a thread, collect the answers."""

    def __init__(self, argv: list[str], env: dict[str, str], warmup: bytes) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.buf = b""
        self.feed(warmup, 1)  # started, loaded, answering

    def feed(self, data: bytes, n: int) -> Run:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        kids = children(self.proc.pid)
        c0 = cpu_seconds(self.proc.pid)
        k0 = sum(cpu_seconds(k) for k in kids)
        t0 = time.perf_counter()

        def write() -> None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

        writer = threading.Thread(target=write)
        writer.start()
        fd = self.proc.stdout.fileno()
        chunks = [self.buf]
        got = self.buf.count(b"\n")
        while got < n:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"helper stopped: {self.proc.stderr.read().decode(errors='replace')[-800:]}")
            chunks.append(chunk)
            got += chunk.count(b"\n")
        wall = time.perf_counter() - t0
        writer.join()
        cpu = cpu_seconds(self.proc.pid) - c0
        other = sum(cpu_seconds(k) for k in children(self.proc.pid)) - k0
        lines = b"".join(chunks).split(b"\n")
        self.buf = b"\n".join(lines[n:])
        return Run(lines[:n], wall, cpu, other)

    def peak_mb(self) -> float:
        return status_kb(self.proc.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return status_kb(self.proc.pid, "VmRSS") / 1024

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def civicaup_lines(urls: list[str]) -> bytes:
    return "".join(f"{i % 100} {u.replace('%', '%25')} user{i % 40} 10.0.{i % 7}.{i % 200} GET -\n"
                   for i, u in enumerate(urls)).encode()


def squidguard_lines(urls: list[str]) -> bytes:
    return "".join(f"{u} 10.0.{i % 7}.{i % 200}/- - GET\n" for i, u in enumerate(urls)).encode()


def civicaup_listed(answers: list[bytes], n: int) -> list[bool]:
    out = []
    for i, a in enumerate(answers):
        ch, _, rest = a.partition(b" ")
        if ch != str(i % 100).encode():
            raise RuntimeError(f"answer {i} has channel {ch!r}")
        out.append(rest.startswith(b"ERR") or b" log=" in rest)
    assert len(out) == n
    return out


def audit_count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM audit WHERE action LIKE 'web-%'").fetchone()[0])


def recall(stream: Stream, listed: list[bool]) -> dict[str, float]:
    out = {}
    for kind in ("listed-domain", "subdomain", "path", "unlisted"):
        flags = [v for k, v in zip(stream.kinds, listed, strict=True) if k == kind]
        out[kind] = sum(flags) / max(len(flags), 1)
    return out


# -- the parts --------------------------------------------------------------------------------------------


def bench_build(ut1: Path, tmp: Path) -> Path:
    out = tmp / "ut1.idx"
    wall, peak, text = run_measured([CIVICAUP, "categories", "build", str(ut1), "-o", str(out)])
    print(f"civicaup index build: {wall:.1f} s wall, peak RSS {peak:.0f} MB, file {out.stat().st_size / 1e6:.1f} MB")
    print("  " + text.splitlines()[0])
    return out


def squidguard_setup(ut1: Path, tmp: Path) -> Path | None:
    exe = shutil.which("squidGuard")
    if exe is None:
        print("squidGuard: not on PATH (Debian package 'squidguard': apt-get install squidguard); skipped")
        return None
    db, logdir = tmp / "sgdb", tmp / "sglog"
    logdir.mkdir()
    dests = []
    for folder in sorted(p for p in ut1.iterdir() if p.is_dir()):
        name = folder.name.replace("-", "_")
        lines = [f"dest {name} {{"]
        for fname, kind in (("domains", "domainlist"), ("urls", "urllist")):
            if (folder / fname).is_file():
                (db / folder.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(folder / fname, db / folder.name / fname)
                lines.append(f"  {kind} {folder.name}/{fname}")
        if len(lines) > 1:
            dests.append((name, "\n".join(lines + ["}"])))
    conf = tmp / "squidGuard.conf"
    conf.write_text(f"dbhome {db}\nlogdir {logdir}\n" + "\n".join(d for _, d in dests)
                    + "\nacl {\n default {\n  pass " + " ".join(f"!{n}" for n, _ in dests)
                    + " all\n  redirect http://blocked.invalid/\n }\n}\n")
    wall, peak, _ = run_measured([exe, "-c", str(conf), "-C", "all"])
    size = sum(p.stat().st_size for p in db.rglob("*.db"))
    print(f"squidGuard db build: {wall:.1f} s wall, peak RSS {peak:.0f} MB, databases {size / 1e6:.1f} MB")
    return conf


@dataclass
class Ours:
    """One civicaup helper run over the three streams."""

    label: str
    cold: Run
    again: Run
    real: Run
    writer_cpu: float
    entries: int
    peak: float
    rss: float
    listed: list[bool]
    answers: list[bytes]


def run_ours(index: Path, stream: Stream, zipf: Stream, home: Path, pure: bool) -> Ours:
    """civicaup squid-helper over the cold, again and Zipf streams; *pure*: CIVICAUP_PURE_PYTHON=1."""
    home.mkdir()
    env = {**os.environ, "CIVICAUP_HOME": str(home), "CIVICAUP_FAKE_NOW": WORK_TIME}
    env.pop("CIVICAUP_PURE_PYTHON", None)
    if pure:
        env["CIVICAUP_PURE_PYTHON"] = "1"
    n = len(stream.urls)
    ours = Driver([CIVICAUP, "squid-helper", "--policy", "kirkwood-mo", "--index", str(index)], env,
                  b"0 http://warm-up.example/ - 10.0.0.1 GET -\n")  # default cache size (131,072 answers)
    cold = ours.feed(civicaup_lines(stream.urls), n)
    m = min(n, 50_000)  # the most recent URLs again: within the default cache, answered from it
    again = ours.feed(civicaup_lines(stream.urls[-m:]), m)
    real = ours.feed(civicaup_lines(zipf.urls), len(zipf.urls))
    peak, rss = ours.peak_mb(), ours.rss_mb()
    time.sleep(2.5)  # the audit writer writes every second
    writer_cpu = sum(cpu_seconds(k) for k in children(ours.proc.pid))
    ours.close()
    return Ours("pure Python" if pure else "compiled", cold, again, real, writer_cpu,
                audit_count(home / "civicaup.db"), peak, rss, civicaup_listed(cold.answers, n), cold.answers)


def bench_helpers(index: Path, sg_conf: Path | None, stream: Stream, zipf: Stream, tmp: Path) -> None:
    n = len(stream.urls)
    m = min(n, 50_000)
    runs = [run_ours(index, stream, zipf, tmp / "home-compiled", pure=False),
            run_ours(index, stream, zipf, tmp / "home-pure", pure=True)]
    ours, pure = runs
    print(f"\nURL stream: {n:,} requests ({', '.join(f'{k} {stream.kinds.count(k):,}' for k in sorted(set(stream.kinds)))})")
    for r in runs:
        refused = sum(a.split(b" ", 2)[1] == b"ERR" for a in r.answers)
        print(f"civicaup squid-helper, {r.label} per-line path (Kirkwood policy, working hours; {refused:,} refused; "
              f"load average {os.getloadavg()[0]:.1f}):")
        for label, run, count in (("cold", r.cold, n), ("again", r.again, m), ("zipf", r.real, len(zipf.urls))):
            print(f"  {label:5}: {count / run.wall:>10,.0f} decisions/s wall, {count / max(run.cpu, 1e-9):>10,.0f} "
                  "per CPU-second of the helper")
        print(f"  audit: {r.entries:,} entries written (non-allow decisions, repeats within a second merged) by the "
              f"writer process in {r.writer_cpu:.1f} CPU-s")
        total = n + m + len(zipf.urls)
        print(f"  all three streams, helper and audit writer together: "
              f"{total / (r.cold.cpu + r.again.cpu + r.real.cpu + r.writer_cpu):,.0f} decisions per CPU-second")
        print(f"  memory: peak {r.peak:.0f} MB, resident at the end {r.rss:.0f} MB (index mmapped, answers cached)")
        rc = recall(stream, r.listed)
        print("  recall: " + ", ".join(f"{k} {v:.2%}" for k, v in rc.items() if k != "unlisted")
              + f"; false positives on unlisted hosts {rc['unlisted']:.2%}")
    same = ours.answers == pure.answers
    print(f"compiled / pure Python per CPU-second: cold {pure.cold.cpu / ours.cold.cpu:.2f}, again "
          f"{pure.again.cpu / ours.again.cpu:.2f}, zipf {pure.real.cpu / ours.real.cpu:.2f}; "
          f"answers {'identical' if same else 'DIFFERENT'}, audit entries {ours.entries:,} / {pure.entries:,}")
    cold, again, real, ours_peak, ours_listed = ours.cold, ours.again, ours.real, ours.peak, ours.listed
    if sg_conf is None:
        return
    sg = Driver([shutil.which("squidGuard") or "squidGuard", "-c", str(sg_conf)], dict(os.environ),
                b"http://warm-up.example/ 10.0.0.1/- - GET\n")
    theirs = sg.feed(squidguard_lines(stream.urls), n)
    sg_real = sg.feed(squidguard_lines(zipf.urls), len(zipf.urls))
    sg_peak = sg.peak_mb()
    sg.close()
    sg_listed = [a.startswith(b"OK") for a in theirs.answers]
    print("squidGuard 1.6 (one process, no concurrency):")
    print(f"  all  : {n / theirs.wall:>10,.0f} look-ups/s wall, {n / max(theirs.cpu, 1e-9):>10,.0f} per CPU-second")
    print(f"  zipf : {len(zipf.urls) / sg_real.wall:>10,.0f} look-ups/s wall, "
          f"{len(zipf.urls) / max(sg_real.cpu, 1e-9):>10,.0f} per CPU-second")
    print(f"  memory: peak {sg_peak:.0f} MB")
    rs = recall(stream, sg_listed)
    print("  recall: " + ", ".join(f"{k} {v:.2%}" for k, v in rs.items() if k != "unlisted")
          + f"; false positives on unlisted hosts {rs['unlisted']:.2%}")
    print("ratios civicaup (compiled path) / squidGuard (per CPU-second): "
          f"cold {(n / cold.cpu) / (n / theirs.cpu):.2f}, again {(m / again.cpu) / (n / theirs.cpu):.2f}, "
          f"zipf {(len(zipf.urls) / real.cpu) / (len(zipf.urls) / sg_real.cpu):.2f}; wall: cold "
          f"{theirs.wall / cold.wall:.2f}, zipf {sg_real.wall / real.wall:.2f}; peak memory {ours_peak / sg_peak:.1f}x")
    both = sum(a and not b for a, b in zip(ours_listed, sg_listed, strict=True))
    print(f"listed by civicaup but not squidGuard: {both:,}; by squidGuard but not civicaup: "
          f"{sum(b and not a for a, b in zip(ours_listed, sg_listed, strict=True)):,}")


def bench_synthetic(n: int, seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    folder = tmp / "synthetic" / "adult"
    folder.mkdir(parents=True)
    tlds = ["com", "net", "org", "info", "de", "fr", "ru", "co.uk", "io", "xyz", "online", "top", "site"]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    started = time.perf_counter()
    listed: list[str] = []
    with open(folder / "domains", "w") as f:
        for i in range(n):
            label = "".join(rng.choices(letters, k=rng.randint(5, 16)))
            d = f"{label}.{rng.choice(tlds)}"
            if rng.random() < 0.2:
                d = f"{rng.choice(['www', 'm', 'cdn', 'img'])}.{d}"
            f.write(d + "\n")
            if i % 25 == 0:
                listed.append(d)
    print(f"\nsynthetic list: {n:,} domains generated in {time.perf_counter() - started:.1f} s "
          f"({(folder / 'domains').stat().st_size / 1e6:.0f} MB)")
    out = tmp / "synthetic.idx"
    wall, peak, text = run_measured([CIVICAUP, "categories", "build", str(folder.parent), "-o", str(out)])
    print(f"civicaup index build: {wall:.1f} s wall, peak RSS {peak:.0f} MB; {text.splitlines()[0]}")
    size = out.stat().st_size
    print(f"  file {size / 1e6:.1f} MB = {size / n:.1f} bytes a domain")
    probe = tmp / "probe.py"
    probe.write_text(PROBE)
    queries = tmp / "queries.txt"
    qs = [f"http://{d}/x" for d in listed[:100_000]] + \
         [f"http://{''.join(rng.choices(letters, k=12))}.com/x" for _ in range(100_000)]
    rng.shuffle(qs)
    queries.write_text("\n".join(qs) + "\n")
    r = subprocess.run([sys.executable, str(probe), str(out), str(queries)], capture_output=True, text=True, check=True)
    base, loaded, after, rate, hits = (float(x) for x in r.stdout.split())
    print(f"  loaded: RSS +{(loaded - base) / 1024:.1f} MB = {(loaded - base) * 1024 / n:.1f} bytes a domain "
          f"(after {len(qs):,} look-ups: +{(after - base) / 1024:.1f} MB = {(after - base) * 1024 / n:.1f} bytes a domain)")
    print(f"  look-ups (normalise + lookup): {rate:,.0f}/s; {hits:,.0f} of {len(qs):,} listed")
    for pure in (False, True):  # the same queries through the helper protocol, both per-line paths
        home = tmp / f"home-synthetic-{'pure' if pure else 'compiled'}"
        home.mkdir()
        env = {**os.environ, "CIVICAUP_HOME": str(home), "CIVICAUP_FAKE_NOW": WORK_TIME}
        env.pop("CIVICAUP_PURE_PYTHON", None)
        if pure:
            env["CIVICAUP_PURE_PYTHON"] = "1"
        helper = Driver([CIVICAUP, "squid-helper", "--policy", "kirkwood-mo", "--index", str(out)], env,
                        b"0 http://warm-up.example/ - 10.0.0.1 GET -\n")
        r = helper.feed(civicaup_lines(qs), len(qs))
        peak = helper.peak_mb()
        helper.close()
        listed = sum(civicaup_listed(r.answers, len(qs)))
        print(f"  squid-helper, {'pure Python' if pure else 'compiled'} path: {len(qs) / max(r.cpu, 1e-9):,.0f} "
              f"decisions per CPU-second (load average {os.getloadavg()[0]:.1f}), {listed:,} of {len(qs):,} listed, "
              f"peak RSS {peak:.0f} MB")


PROBE = """
import sys, time
from pathlib import Path
def rss():
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.url import normalise_url
qs = Path(sys.argv[2]).read_text().split()
base = rss()
idx = CategoryIndex.load(Path(sys.argv[1]))
loaded = rss()
t = time.perf_counter()
hits = sum(1 for q in qs if idx.lookup(normalise_url(q)))
rate = len(qs) / (time.perf_counter() - t)
print(base, loaded, rss(), rate, hits)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="URLs in the stream (at most 2,000,000)")
    ap.add_argument("--ut1", type=Path, default=ROOT.parent / "shared" / "data" / "ut1")
    ap.add_argument("--synthetic", type=int, default=5_000_000, help="synthetic domains (0 to skip)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not args.ut1.is_dir():
        print(f"no UT1 lists at {args.ut1}", file=sys.stderr)
        return 2
    n = max(1000, min(args.n, 2_000_000))
    rng = random.Random(args.seed)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (figures are noisy when it is busy)")
    with tempfile.TemporaryDirectory(prefix="civicaup-bench-web-") as name:
        tmp = Path(name)
        index = bench_build(args.ut1, tmp)
        sg_conf = squidguard_setup(args.ut1, tmp)
        stream = make_stream(args.ut1, n, rng)
        bench_helpers(index, sg_conf, stream, zipf_stream(stream, n, rng), tmp)
        if args.synthetic > 0:
            bench_synthetic(min(args.synthetic, 20_000_000), args.seed, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
