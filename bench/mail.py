"""Mail filter benchmark: real ham through a private Postfix on 127.0.0.1, without and with `civicaup milter`,
in the same run.

    .venv/bin/python bench/mail.py [--count 2000] [--clients 8] [--policy kirkwood-mo] [--rounds 2]
                                   [--listen unix|inet] [--workers 0] [--processes 1] [--no-journal]

The corpus is the ham of the Apache SpamAssassin public corpus in ../shared/data/mail (unpacked into a temporary
directory, read-only source). Each message is sent with its own From address as envelope sender (as inbound mail
is) to a Kirkwood address, by `--clients` concurrent SMTP clients; Postfix delivers to `discard:` so its own cost is
receiving and queueing. Printed: messages/second without and with the milter, the ratio (DESIGN.md: a do-nothing
pymilter keeps 0.42-0.50 over TCP, 0.75 with no-reply over a unix socket; rspamd 0.25), p50/p99 of the SMTP
transaction time and the milter's added latency, the milter's CPU time a message (user + system, from /proc, so
other work on the machine changes it little), its peak memory (VmHWM) and the decisions it made.
Needs root and Debian's postfix. Not run in CI.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import email.utils
import os
import re
import select
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mail.postfix_instance import PostfixInstance, free_port, postfix_missing  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "mail" / "spamassassin-public-corpus.tar.xz"
CIVICAUP = str(Path(sys.executable).parent / "civicaup")
RCPT = "dana.reed@kirkwoodmo.org"


def load_ham(count: int, workdir: Path) -> list[tuple[str, bytes]]:
    """(envelope sender, raw CRLF bytes) of up to `count` ham messages, in a fixed order."""
    out: list[tuple[str, bytes]] = []
    target = workdir / "corpus"
    with tarfile.open(CORPUS, "r|xz") as tar:  # one pass in archive order: xz cannot seek back cheaply
        for m in tar:
            if m.isfile() and "ham" in m.name.split("/")[-2]:
                tar.extract(m, target, filter="data")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        if len(out) >= count:
            break
        raw = path.read_bytes()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
        if not raw.strip():
            continue
        head = raw.split(b"\n\n", 1)[0].decode("latin-1")
        found = re.search(r"^From:(.*(?:\n[ \t].*)*)", head, re.MULTILINE | re.IGNORECASE)
        sender = email.utils.parseaddr(found.group(1).replace("\n", " "))[1] if found else ""
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", sender or ""):
            sender = "someone@example.org"
        out.append((sender, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
    (workdir / "count").write_text(str(len(out)))
    return out


def send_all(port: int, corpus: list[tuple[str, bytes]], clients: int) -> tuple[float, list[float], dict[str, int]]:
    """Wall time, per-message SMTP transaction times, and reply classes."""
    lock = threading.Lock()
    queue = list(range(len(corpus)))
    times: list[float] = []
    outcome = {"accepted": 0, "rejected": 0, "tempfail": 0, "error": 0}

    def worker() -> None:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
        smtp.ehlo("bench.civicaup.test")
        while True:
            with lock:
                if not queue:
                    break
                i = queue.pop()
            sender, raw = corpus[i]
            t = time.perf_counter()
            kind = "accepted"
            try:
                smtp.sendmail(sender, [RCPT], raw)
            except smtplib.SMTPDataError as exc:
                kind = "rejected" if exc.smtp_code >= 500 else "tempfail"
            except smtplib.SMTPResponseException as exc:
                kind = "rejected" if exc.smtp_code >= 500 else "tempfail"
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                kind = "error"
                smtp.close()
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                smtp.ehlo("bench.civicaup.test")
            dt = time.perf_counter() - t
            with lock:
                times.append(dt)
                outcome[kind] += 1
        smtp.quit()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return time.perf_counter() - start, times, outcome


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def peak_memory_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def proportional_memory_mb(pid: int) -> float:
    """Pss now: the process's private pages plus its share of the pages it shares (a forked process's copy-on-write
    word lists count once across the processes, not once in each)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def serve_null(listen: str, policy: str) -> int:
    """The civicaup milter (protocol, spool, answers) around a decision that always allows."""
    import asyncio

    from civicaup.channels.mail.gateway import MailGateway, Verdict
    from civicaup.channels.mail.milter import serve

    class NullGateway(MailGateway):
        async def handle(self, envelope, spool, alive=None):  # type: ignore[no-untyped-def]
            return Verdict("accept", header="allow")

    asyncio.run(serve(NullGateway(policy), listen))
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (from /proc; exited ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--policy", default="kirkwood-mo")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each; the best of each is reported")
    ap.add_argument("--listen", choices=("unix", "inet"), default="unix")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--processes", type=int, default=1, help="milter processes sharing the socket")
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--null-engine", action="store_true",
                    help="the same milter with a decision that always allows: the cost of the protocol alone")
    ap.add_argument("--serve-null", metavar="LISTEN", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_null:
        return serve_null(args.serve_null, args.policy)
    why = postfix_missing()
    if why:
        print(f"bench/mail.py: {why}", file=sys.stderr)
        return 2
    if not CORPUS.is_file():
        print(f"bench/mail.py: corpus not found at {CORPUS}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="civicaup-bench-mail-"))
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CIVICAUP_DB_URL"}
    env["CIVICAUP_HOME"] = str(home)
    corpus = load_ham(args.count, work)
    size = sum(len(r) for _, r in corpus)
    print(f"corpus: {len(corpus)} ham messages, {size / 1e6:.1f} MB, {args.clients} concurrent clients, "
          f"policy {args.policy}, milter on {args.listen} socket, workers {args.workers}, processes {args.processes}, "
          f"journal {'off' if args.no_journal else 'on'}{', NULL ENGINE' if args.null_engine else ''}; "
          f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")

    subprocess.run([CIVICAUP, "directory", "import",
                    str(ROOT / "src/civicaup/policy/packs" / args.policy / "directory.csv"), "--policy", args.policy],
                   env=env, check=True, capture_output=True)
    pf = PostfixInstance(sink_port=free_port(), milters={"civicaup": ""}, transport="discard:", process_limit=100)
    sock = pf.root / "civicaup.sock"
    listen = f"unix:{sock}" if args.listen == "unix" else f"127.0.0.1:{free_port()}"
    pf.milters["civicaup"] = listen if listen.startswith("unix:") else "inet:" + listen
    cmd = [CIVICAUP, "milter", "--policy", args.policy, "--listen", listen, "--workers", str(args.workers),
           "--processes", str(args.processes), "--log-level", "warning"] + (["--no-journal"] if args.no_journal else [])
    if args.null_engine:
        cmd = [sys.executable, __file__, "--serve-null", listen, "--policy", args.policy]
    milter = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=open(work / "milter.log", "wb"))
    try:
        assert milter.stdout is not None
        ready, _, _ = select.select([milter.stdout], [], [], 60)
        if not ready or b"listening" not in milter.stdout.readline():
            print("milter did not start: " + (work / "milter.log").read_text()[-2000:], file=sys.stderr)
            return 1
        pf.start()
        # warm up both paths (process start-up, pack compile, Postfix process pools)
        send_all(pf.plain_port, corpus[:100], args.clients)
        send_all(pf.milter_port, corpus[:100], args.clients)
        best: dict[str, tuple[float, list[float], dict[str, int]]] = {}
        milter_cpu, milter_sent = 0.0, 0
        for _ in range(args.rounds):
            for name, port in (("postfix alone", pf.plain_port), ("with milter", pf.milter_port)):
                cpu_before = cpu_seconds(descendants(milter.pid))
                wall, times, outcome = send_all(port, corpus, args.clients)
                if port == pf.milter_port:
                    milter_cpu += cpu_seconds(descendants(milter.pid)) - cpu_before
                    milter_sent += len(corpus)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, times, outcome)
                deadline = time.monotonic() + 120
                while pf.queued() and time.monotonic() < deadline:  # let the queue drain between runs
                    time.sleep(0.2)
        base_wall, base_t, base_o = best["postfix alone"]
        mil_wall, mil_t, mil_o = best["with milter"]
        base_rate, mil_rate = len(corpus) / base_wall, len(corpus) / mil_wall
        print(f"postfix alone : {base_rate:8.1f} msg/s   p50 {pct(base_t, .5):6.1f} ms   p99 {pct(base_t, .99):6.1f} ms"
              f"   {base_o}")
        print(f"with milter   : {mil_rate:8.1f} msg/s   p50 {pct(mil_t, .5):6.1f} ms   p99 {pct(mil_t, .99):6.1f} ms"
              f"   {mil_o}")
        print(f"ratio         : {mil_rate / base_rate:.2f} of Postfix's own throughput (goal >= 0.70; "
              f"DESIGN.md peers: do-nothing pymilter 0.42-0.50 TCP, 0.75 no-reply+unix; rspamd 0.25)")
        print(f"added latency : p50 {pct(mil_t, .5) - pct(base_t, .5):+.1f} ms   "
              f"p99 {pct(mil_t, .99) - pct(base_t, .99):+.1f} ms   "
              f"(mean {1000 * (statistics.fmean(mil_t) - statistics.fmean(base_t)):+.1f} ms)")
        print(f"milter CPU    : {1000 * milter_cpu / max(1, milter_sent):.2f} CPU-ms a message (user + system, "
              f"its processes, over every milter round)")
        procs = descendants(milter.pid)
        total = sum(peak_memory_mb(p) for p in procs)
        pss = sum(proportional_memory_mb(p) for p in procs)
        print(f"milter memory : peak {peak_memory_mb(milter.pid):.0f} MB resident (VmHWM) in the milter, "
              f"{total:.0f} MB summed over its {len(procs)} process(es); now {pss:.0f} MB proportional (Pss, shared "
              f"pages counted once)")
        print(f"load average  : {os.getloadavg()[0]:.1f} at the end (other work on the machine skews both runs)")
        return 0
    finally:
        pf.cleanup()
        if milter.poll() is None:
            os.kill(milter.pid, signal.SIGTERM)
            try:
                milter.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(milter.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
