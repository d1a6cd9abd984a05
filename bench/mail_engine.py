"""In-process profile of the milter's end-of-message decision: CPU-ms per message by stage, and peak memory.

    .venv/bin/python bench/mail_engine.py [--count 2000] [--policy kirkwood-mo] [--rounds 3] [--profile N]

Feeds the ham of the Apache SpamAssassin public corpus (../shared/data/mail, unpacked into a temporary directory)
through the code the milter runs at end of message, in this process, without Postfix or sockets: the message as
the milter spools it (CRLF) -> `gateway.decide` (MIME parsing, signals, rules). Each message is decided once
through `decide` (the total, what the milter pays), then once more stage by stage (parse, text detectors,
attachment/recipient/identity checks, rules) to show where the time goes. Times are CPU time of this process
(time.process_time), so other work on the machine changes them little; the best of `--rounds` rounds is printed.
`--compare` also decides every message through the reference path (the feed parser and getaddresses for every
message, as before the lean MIME path), in the same run. `--profile N` prints the N costliest functions of one
cProfile'd round. Not run in CI.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.mail import load_ham  # noqa: E402
from civicaup.channels.mail.gateway import decide, identity, Envelope  # noqa: E402
from civicaup.channels.mail.mime import parse_mail  # noqa: E402
from civicaup.engine.checks import mail as mail_checks  # noqa: E402
from civicaup.engine.evaluate import _decide  # noqa: E402
from civicaup.engine.event import Actor, MailEvent  # noqa: E402
from civicaup.policy.registry import get_pack  # noqa: E402

RCPT = "dana.reed@kirkwoodmo.org"


def whole(pack, corpus) -> tuple[float, dict[str, int]]:
    """CPU seconds for deciding every message through `decide`, and the actions taken."""
    actions: dict[str, int] = {}
    start = time.process_time()
    for sender, raw in corpus:
        d = decide(pack.id, raw, Actor(email=sender), sender, (RCPT,), frozenset(), None, frozenset(), pack)
        actions[d.action] = actions.get(d.action, 0) + 1
    return time.process_time() - start, actions


def staged(pack, corpus) -> dict[str, float]:
    """CPU seconds per stage over the corpus (the same work as `decide`, split)."""
    t = dict.fromkeys(("parse", "text detectors", "other checks", "rules"), 0.0)
    clock = time.process_time
    for sender, raw in corpus:
        a = clock()
        mail = parse_mail(raw)
        b = clock()
        event = MailEvent(actor=Actor(email=sender), at=datetime.now(timezone.utc).astimezone(pack.tz), mail=mail,
                          sender=sender, recipients=(RCPT,))
        mail_checks.text_signals(mail.body_text(), where="mail", pack=pack)
        c = clock()
        mail_checks.attachment_signals(mail, pack)
        mail_checks.recipient_signals(event, pack)
        mail_checks.identity_signals(event, pack)
        d = clock()
        _decide(event, pack)  # all of it again: rules = this minus the signals measured above
        e = clock()
        t["parse"] += b - a
        t["text detectors"] += c - b
        t["other checks"] += d - c
        t["rules"] += max(0.0, (e - d) - (d - b))
    return t


def gateway_round(gw, corpus) -> float:
    """CPU seconds (every thread of this process) for `MailGateway.handle` of every message, as the milter calls
    it at end of message: directory, grants, decision in the gateway's thread pool, journal, answer."""
    import asyncio

    from civicaup.channels.mail.spool import Spool

    async def run() -> None:
        for sender, raw in corpus:
            spool = Spool()
            spool.write(raw)
            await gw.handle(Envelope(mail_from=sender, rcpt_to=[RCPT]), spool)

    start = time.process_time()
    asyncio.run(run())
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--policy", default="kirkwood-mo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    ap.add_argument("--compare", action="store_true", help="also time the reference (feed parser) path")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicaup-mail-engine-") as tmp:
        corpus = load_ham(args.count, Path(tmp))
    n = len(corpus)
    pack = get_pack(args.policy)
    identity(Envelope(), pack.pack.city.mail_domain)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    decide(pack.id, corpus[0][1], Actor(), "", (RCPT,), frozenset(), None, frozenset(), pack)  # warm up
    print(f"{n} ham messages, {sum(len(r) for _, r in corpus) / n / 1024:.1f} KiB on average, policy {pack.id}, "
          f"load average {open('/proc/loadavg').read().split()[0]}")
    best = None
    actions: dict[str, int] = {}
    for _ in range(args.rounds):
        cpu, actions = whole(pack, corpus)
        best = cpu if best is None else min(best, cpu)
    print(f"decide (what the milter pays): {best * 1000 / n:.3f} CPU-ms a message, best of {args.rounds}; "
          f"decisions {dict(sorted(actions.items()))}")
    if args.compare:
        from civicaup.channels.mail import mime
        lean, simple = mime._lean_message, mime._simple_addresses
        mime._lean_message, mime._simple_addresses = (lambda raw, ctx, depth: None), (lambda text: None)
        try:
            ref, ref_actions = min((whole(pack, corpus) for _ in range(args.rounds)), key=lambda r: r[0])
        finally:
            mime._lean_message, mime._simple_addresses = lean, simple
        print(f"  reference path (feed parser for every message): {ref * 1000 / n:.3f} CPU-ms a message; "
              f"decisions {dict(sorted(ref_actions.items()))}")
    stages = None
    for _ in range(args.rounds):
        t = staged(pack, corpus)
        stages = t if stages is None else {k: min(v, t[k]) for k, v in stages.items()}
    assert stages is not None
    for name, sec in stages.items():
        print(f"  {name:15} {sec * 1000 / n:.3f} CPU-ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory (maxrss) {peak / 1024:.0f} MB (after loading corpus and detectors {base_rss / 1024:.0f} MB); "
          f"load average {open('/proc/loadavg').read().split()[0]}")
    best_gw = None
    with tempfile.TemporaryDirectory(prefix="civicaup-mail-engine-home-") as home:
        os.environ["CIVICAUP_HOME"] = home
        os.environ.pop("CIVICAUP_DB_URL", None)
        from civicaup import settings
        from civicaup.channels.mail.gateway import MailGateway
        from civicaup.channels.mail.journal import MaildirJournal
        from civicaup.stores.db import open_store
        settings.reload()
        gw = MailGateway(pack.id, store=open_store(), journal=MaildirJournal(Path(home) / "journal"))
        try:
            for _ in range(args.rounds):
                cpu = gateway_round(gw, corpus)
                best_gw = cpu if best_gw is None else min(best_gw, cpu)
        finally:
            gw.close()
    print(f"MailGateway.handle with the journal (the milter's end of message, no protocol): "
          f"{best_gw * 1000 / n:.3f} CPU-ms a message, best of {args.rounds}")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        whole(pack, corpus)
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    os.environ.setdefault("CIVICAUP_LOG_LEVEL", "WARNING")
    main()
