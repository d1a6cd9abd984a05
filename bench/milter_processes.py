#!/usr/bin/env python3
"""How `civicaup milter --processes N` scales: the milter alone, fed by a lean milter client instead of Postfix.

    .venv/bin/python bench/milter_processes.py [--count 2000] [--clients 8] [--processes 1 2] [--rounds 2]

bench/mail.py measures the milter behind a real Postfix, which on a 2-core machine takes most of a core itself, so
a second milter process has no core to run on there. This benchmark leaves Postfix out: `--clients` threads of this
process speak the MTA side of the milter protocol (tests/mail/miltertools.py, one connection a message as Postfix
opens one an SMTP session) with the SpamAssassin ham (../shared/data/mail, unpacked into a temporary directory) to
a `civicaup milter --processes N` on a unix socket, and print for each N: messages/second, the milter's CPU time a
message (user + system of all its processes, from /proc), the client's own CPU a message, the speed-up over one
process, and the milter's proportional memory (Pss). Runs alternate (1, 2, 1, 2 ...) and the best of each is kept.
Not run in CI.
"""
from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from mail import CIVICAUP, CORPUS, cpu_seconds, descendants, load_ham, proportional_memory_mb  # noqa: E402

from tests.mail.miltertools import FakeMTA  # noqa: E402

Message = tuple[str, list[tuple[str, str]], bytes]
#: the milter's answers to end of message
ANSWERS = {"c": "continue", "y": "reply code (reject)", "d": "discard (held)", "t": "tempfail", "a": "accept",
           "r": "reject"}


def split(sender: str, raw: bytes) -> Message:
    """(sender, headers, body) as the MTA hands them to a milter (unfolded header values, CRLF body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").split("\r\n"):
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\r\n" + line)
        elif ":" in line:
            name, value = line.split(":", 1)
            headers.append((name, value.lstrip(" ")))
    return sender, headers, body


def send_all(sock: str, corpus: list[Message], clients: int) -> tuple[float, dict[str, int]]:
    """Every message once, `clients` at a time; wall seconds and the answers by kind."""
    todo = iter(range(len(corpus)))
    lock = threading.Lock()
    answers: dict[str, int] = {}

    def client() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            sender, headers, body = corpus[i]
            mta = FakeMTA(sock)
            try:
                cmd = mta.message(sender, ["dana.reed@kirkwoodmo.org"], headers, body)[-1][0]
            finally:
                mta.close()
            name = ANSWERS.get(cmd.decode("latin-1"), repr(cmd))
            with lock:
                answers[name] = answers.get(name, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, answers


def run(processes: int, corpus: list[Message], clients: int, work: Path, env: dict[str, str]) -> dict[str, float]:
    sock = work / f"milter-{processes}.sock"
    milter = subprocess.Popen([CIVICAUP, "milter", "--policy", "kirkwood-mo", "--listen", f"unix:{sock}",
                               "--processes", str(processes), "--log-level", "warning"], env=env,
                              stdout=subprocess.PIPE, stderr=open(work / "milter.log", "ab"),
                              stdin=subprocess.DEVNULL)
    try:
        assert milter.stdout is not None
        ready, _, _ = select.select([milter.stdout], [], [], 60)
        if not ready or b"listening" not in milter.stdout.readline():
            raise RuntimeError("milter did not start: " + (work / "milter.log").read_text()[-2000:])
        send_all(str(sock), corpus[:200], clients)  # warm up every process
        procs = descendants(milter.pid)
        cpu_before, client_before = cpu_seconds(procs), time.process_time()
        wall, answers = send_all(str(sock), corpus, clients)
        milter_cpu = cpu_seconds(descendants(milter.pid)) - cpu_before
        client_cpu = time.process_time() - client_before
        pss = sum(proportional_memory_mb(p) for p in descendants(milter.pid))
        return {"rate": len(corpus) / wall, "milter_ms": 1000 * milter_cpu / len(corpus),
                "client_ms": 1000 * client_cpu / len(corpus), "pss": pss,
                **{f"answer {k}": v for k, v in answers.items()}}
    finally:
        if milter.poll() is None:
            os.kill(milter.pid, signal.SIGTERM)
            try:
                milter.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(milter.pid, signal.SIGKILL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not CORPUS.is_file():
        print(f"bench/milter_processes.py: corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="civicaup-bench-milter-"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "CIVICAUP_DB_URL"}
        env["CIVICAUP_HOME"] = str(work / "home")
        subprocess.run([CIVICAUP, "directory", "import", str(ROOT / "src/civicaup/policy/packs/kirkwood-mo/"
                                                               "directory.csv"), "--policy", "kirkwood-mo"],
                       env=env, check=True, capture_output=True)
        corpus = [split(s, r) for s, r in load_ham(args.count, work)]
        print(f"corpus: {len(corpus)} ham messages, {args.clients} concurrent milter clients, policy kirkwood-mo, "
              f"unix socket; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
        best: dict[int, dict[str, float]] = {}
        for _ in range(args.rounds):
            for n in args.processes:
                r = run(n, corpus, args.clients, work, env)
                if n not in best or r["rate"] > best[n]["rate"]:
                    best[n] = r
        base = best[args.processes[0]]["rate"]
        for n in args.processes:
            r = best[n]
            answers = ", ".join(f"{k[7:]} {int(v)}" for k, v in r.items() if k.startswith("answer "))
            print(f"--processes {n}: {r['rate']:7.1f} msg/s ({r['rate'] / base:.2f}x), milter {r['milter_ms']:.2f} "
                  f"CPU-ms a message, client {r['client_ms']:.2f}, milter memory {r['pss']:.0f} MB Pss; "
                  f"answers {answers}")
        print(f"load average  : {os.getloadavg()[0]:.1f} at the end")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
