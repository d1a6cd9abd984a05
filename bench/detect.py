#!/usr/bin/env python3
"""Benchmark and evaluation of every text detector (civicaup.detect) on real, held-out data.

    .venv/bin/python bench/detect.py                 # everything, by hand (a few minutes)
    .venv/bin/python bench/detect.py --sample 300    # a CI-sized run: same code, fewer rows
    .venv/bin/python bench/detect.py --json          # one JSON object instead of the tables

Prints:

* Davidson et al. tweets (MIT licence), the held-out **test** part only (split once by a
  hash of the row id, civicaup.detect.davidson; the classifier never saw it): precision,
  recall and F1 of offensive-or-hateful vs neither (any of harassment, profanity, sexual,
  threat) and of the hate class vs our ``harassment``; then the same for the lexicons
  alone (classifier off) and for each detector on its own.
* SpamAssassin ham (4,150 legitimate messages, PDDL/CC0), bodies as the mail front end
  extracts them: how many messages each category fires on (every pii/phi/solicitation/...
  hit there is a false positive).
* PII recall on generated numbers (seeded): valid SSNs (SSA rules), cards (Luhn, issuer
  ranges incl. Mastercard 2221-2720, Visa, Amex, Discover) and ABA routing numbers with an
  account number, each written in one of several usual ways and put into a real ham body.
* Each pack's mail rules over the same ham (the engine, as the milter judges a message): how many
  messages a text finding blocks or holds, per category, with evidence excerpts (``--json``).
* Throughput of the whole text-detector set, classifier included, on one core (process
  CPU time, best of ``--passes``): messages/s and MB/s on the ham bodies and on the tweets, one
  at a time (scan_text) and in one batch (scan_many, as ``civicaup check posts`` does, 512 lines
  at a time); with ``--posts``, ``civicaup check posts`` itself on all the tweets as JSON Lines.

Numbers are printed, never asserted; tests/detect/test_bench.py runs a small sample for
correctness only.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from civicaup.detect import DETECTORS, davidson, scan_all, scan_many, scan_text, select, warm_up  # noqa: E402
from civicaup.detect.pii_checks import aba_ok, card_brand, luhn_ok, ssn_ok  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SPAMASSASSIN = SHARED / "mail" / "spamassassin-public-corpus.tar.xz"
HAM_FOLDERS = ("easy-ham-1", "easy-ham-2", "hard-ham-1")
OFFENSIVE = frozenset({"harassment", "profanity", "sexual", "threat"})
PII_KINDS = ("ssn", "card", "routing")


# ---------------------------------------------------------------- scoring

def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "tp": tp, "fp": fp, "fn": fn}


class Tally:
    def __init__(self) -> None:
        self.c: Counter[str] = Counter()

    def add(self, key: str, predicted: bool, actual: bool) -> None:
        self.c[key + (":tp" if predicted and actual else ":fp" if predicted else ":fn" if actual else ":tn")] += 1

    def result(self, key: str) -> dict[str, float]:
        return prf(self.c[key + ":tp"], self.c[key + ":fp"], self.c[key + ":fn"])


def evaluate_davidson(rows: list[davidson.Tweet]) -> dict[str, object]:
    """P/R/F1 per category on labelled tweets: the full set, lexicons only, each detector alone."""
    t = Tally()
    detector_names = [d for d in DETECTORS]
    for row in rows:
        raw = scan_all(row.text, refine=False)
        full = select(scan_all(row.text))
        lex = select(raw)
        for name, hits in (("all", full), ("lexicons", lex)):
            cats = {h.category for h in hits}
            t.add(f"{name}:offensive", bool(cats & OFFENSIVE), row.offensive)
            t.add(f"{name}:harassment", "harassment" in cats, row.hate)
            for cat in ("profanity", "sexual", "threat"):
                t.add(f"{name}:{cat}", cat in cats, row.offensive)
        fired = {h.detector for h in full if h.category in OFFENSIVE}
        for d in detector_names:
            if OFFENSIVE & DETECTORS[d].categories:
                t.add(f"detector:{d}:offensive", d in fired, row.offensive)
                t.add(f"detector:{d}:hate", d in {h.detector for h in full if h.category == "harassment"}, row.hate)
    out: dict[str, object] = {"rows": len(rows), "hate_rows": sum(r.hate for r in rows),
                              "offensive_rows": sum(r.offensive for r in rows)}
    for name in ("all", "lexicons"):
        out[name] = {k: t.result(f"{name}:{k}") for k in ("offensive", "harassment", "profanity", "sexual", "threat")}
    out["detectors"] = {d: {"offensive": t.result(f"detector:{d}:offensive"), "hate": t.result(f"detector:{d}:hate")}
                        for d in detector_names if OFFENSIVE & DETECTORS[d].categories}
    return out


# ---------------------------------------------------------------- ham mail

def ham_bodies(limit: int | None = None, seed: int = 7) -> list[str]:
    """Body text (as the MIME front end extracts it) of the SpamAssassin ham messages."""
    return [m.body_text() for m in ham_messages(limit, seed)]


def ham_messages(limit: int | None = None, seed: int = 7) -> list[Any]:
    """The SpamAssassin ham messages, parsed by the MIME front end (civicaup.channels.mail.mime)."""
    from civicaup.channels.mail.mime import parse_mail

    raws: list[bytes] = []
    with tarfile.open(SPAMASSASSIN, "r:xz") as tar:
        for member in tar:
            if member.isfile() and any(f"/{folder}/" in f"/{member.name}" for folder in HAM_FOLDERS):
                f = tar.extractfile(member)
                if f is not None:
                    raws.append(f.read())
    if limit is not None and limit < len(raws):
        raws = random.Random(seed).sample(raws, limit)
    out = []
    for raw in raws:
        if raw.startswith(b"From "):
            raw = raw[raw.find(b"\n") + 1:]
        out.append(parse_mail(raw))
    return out


def evaluate_ham(bodies: list[str]) -> dict[str, object]:
    fired: Counter[str] = Counter()
    per_detector: Counter[str] = Counter()
    for body in bodies:
        hits = scan_text(body)
        for cat in {h.category for h in hits}:
            fired[cat] += 1
        for d in {h.detector for h in hits}:
            per_detector[d] += 1
    return {"messages": len(bodies), "fires_on": dict(sorted(fired.items())),
            "detectors": dict(sorted(per_detector.items()))}


#: The packs whose mail rules the ham is run through, and the categories text detectors give.
PACKS = ("kirkwood-mo", "ky-36-082", "rosemount-mn", "ste-genevieve-mo", "west-des-moines-ia")
TEXT_CATEGORIES = frozenset({"harassment", "threat", "sexual", "profanity", "solicitation", "personal-sale", "pii",
                             "phi", "confidential", "copyright", "official-statement", "defamation"})


def evaluate_packs_on_ham(mails: list[Any], packs: Iterable[str] = PACKS) -> dict[str, object]:
    """Each pack's mail rules over the ham, as the milter would judge them (a weekday at 10:00, the sender
    as the envelope gives it): how many messages a text-content finding blocks or holds, per category,
    with a few evidence excerpts for each (these are the false positives a city would see)."""
    from civicaup.channels import events
    from civicaup.engine.evaluate import evaluate
    from civicaup.engine.event import MailEvent
    from civicaup.policy.registry import get_pack

    out: dict[str, object] = {}
    for pack_id in packs:
        pack = get_pack(pack_id)
        at = events.event_time("2024-03-05T10:00", pack)
        stopped = 0
        per_category: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        for m in mails:
            sender = events.default_sender(m) or "sender@example.org"
            ev = MailEvent(actor=events.actor(sender, None), at=at, mail=m, sender=sender)
            found = [f for f in evaluate(ev, pack).findings
                     if f.action in ("block", "hold") and f.category in TEXT_CATEGORIES]
            if found:
                stopped += 1
            for cat in {f.category for f in found}:
                per_category[cat] += 1
                if len(examples.setdefault(cat, [])) < 5:
                    examples[cat].append(next(f.evidence for f in found if f.category == cat)[:100])
        out[pack_id] = {"messages": len(mails), "blocked_or_held": stopped,
                        "rate": round(stopped / len(mails), 4) if mails else 0.0,
                        "by_category": dict(sorted(per_category.items())), "examples": examples}
    return out


# ---------------------------------------------------------------- generated PII

def gen_ssn(rng: random.Random) -> str:
    while True:
        area, group, serial = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
        a, g, s = f"{area:03d}", f"{group:02d}", f"{serial:04d}"
        if ssn_ok(a, g, s):
            return a + g + s


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def gen_card(rng: random.Random) -> tuple[str, str]:
    brand = rng.choice(["visa", "mastercard", "mastercard-2", "amex", "discover"])
    while True:
        if brand == "visa":
            number = _luhn_complete("4", 16, rng)
        elif brand == "mastercard":
            number = _luhn_complete(str(rng.randint(51, 55)), 16, rng)
        elif brand == "mastercard-2":
            number = _luhn_complete(str(rng.randint(2221, 2720)), 16, rng)
        elif brand == "amex":
            number = _luhn_complete(rng.choice(["34", "37"]), 15, rng)
        else:
            number = _luhn_complete(rng.choice(["6011", "65"]), 16, rng)
        if card_brand(number) and len(set(number)) > 1:
            return number, brand


_FED_PREFIXES = [p for p in range(0, 13)] + list(range(21, 33)) + list(range(61, 73))


def gen_routing(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(_FED_PREFIXES)
        digits = f"{prefix:02d}" + "".join(str(rng.randint(0, 9)) for _ in range(6))
        for d in "0123456789":
            if aba_ok(digits + d):
                return digits + d


def _fmt_card(number: str, rng: random.Random) -> str:
    if len(number) == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i:i + 4] for i in range(0, len(number), 4)]
    return rng.choice([" ".join(groups), "-".join(groups), number])


def pii_sentence(kind: str, rng: random.Random) -> tuple[str, str]:
    """(sentence, the number as written) for one generated value."""
    if kind == "ssn":
        n = gen_ssn(rng)
        dashed = f"{n[:3]}-{n[3:5]}-{n[5:]}"
        written = rng.choice([dashed, dashed, f"{n[:3]} {n[3:5]} {n[5:]}", n])
        template = rng.choice([
            "My SSN is {v}.", "SSN: {v}", "Social Security Number {v}", "her social security no. is {v}",
            "SS# {v}", "Employee: Dana Reed, SSN {v}, start date 3/2.", "ssn {v} - please update payroll",
            "The applicant's social is {v}", "{v} is his social security number.",
        ])
        if written == n and template.startswith("{v}"):
            template = "SSN: {v}"
        return template.format(v=written), written
    if kind == "card":
        number, _brand = gen_card(rng)
        written = _fmt_card(number, rng)
        template = rng.choice([
            "Card number: {v} exp 09/27", "please charge {v} for the registration", "Visa {v}",
            "my credit card is {v}, cvv on the back", "{v}", "Pay with card {v} and send the receipt.",
            "CC# {v}", "Use the p-card {v} for the order",
        ])
        return template.format(v=written), written
    routing = gen_routing(rng)
    account = "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(8, 12)))
    template = rng.choice([
        "Routing number {r}, account number {a}", "ABA {r} / Acct # {a}", "RTN: {r}  Account: {a}",
        "Please wire it to routing {r}, checking account {a}.", "Direct deposit: routing # {r}, acct no. {a}",
        "Bank: First Federal, routing number is {r} and the account number is {a}",
        "Wire to {r}, account number {a}",
    ])
    return template.format(r=routing, a=account), routing


def evaluate_pii(bodies: list[str], n_each: int, seed: int = 11) -> dict[str, object]:
    """Recall on generated numbers put into real ham bodies (one per message), per kind."""
    rng = random.Random(seed)
    tag = {"ssn": "pii:ssn", "card": "pii:card", "routing": "bank:routing"}
    out: dict[str, object] = {}
    misses: dict[str, list[str]] = {}
    for kind in PII_KINDS:
        found = 0
        for i in range(n_each):
            body = bodies[rng.randrange(len(bodies))] if bodies else ""
            sentence, written = pii_sentence(kind, rng)
            lines = body.split("\n")
            at = rng.randint(0, len(lines))
            text = "\n".join(lines[:at] + [sentence] + lines[at:])
            start = text.index(sentence) + sentence.index(written)
            end = start + len(written)
            hits = [h for h in scan_text(text) if h.category == "pii" and tag[kind] in h.tags]
            if any(h.start < end and start < h.end for h in hits):
                found += 1
            elif len(misses.setdefault(kind, [])) < 5:
                misses[kind].append(sentence)
        out[kind] = {"generated": n_each, "found": found, "recall": round(found / n_each, 4) if n_each else 0.0}
    out["missed_examples"] = misses
    return out


# ---------------------------------------------------------------- throughput

def throughput(texts: list[str], rounds: int = 1, *, batch: bool = False, passes: int = 1) -> dict[str, float]:
    """Messages and MB per CPU-second of this process (one core) through scan_text, one text at a time,
    or (``batch``) through scan_many, which normalises, matches and scores all texts together; the best of
    ``passes`` timed passes (the machine is shared: the best is the least disturbed), with the load average."""
    size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    cpu = float("inf")
    for _ in range(max(1, passes)):
        start = time.process_time()
        for _ in range(rounds):
            if batch:
                scan_many(texts)
            else:
                for t in texts:
                    scan_text(t)
        cpu = min(cpu, max(time.process_time() - start, 1e-9))
    return {"messages": len(texts) * rounds, "mb": round(size * rounds / 1e6, 3), "cpu_seconds": round(cpu, 3),
            "messages_per_s": round(len(texts) * rounds / cpu, 1), "mb_per_s": round(size * rounds / 1e6 / cpu, 2),
            "passes": max(1, passes), "load": _load_average()}


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def check_posts_throughput(texts: list[str], policy: str = "west-des-moines-ia") -> dict[str, object]:
    """``civicaup check posts`` on the texts as JSON Lines (written to a temporary directory), run as the
    city's scripts run it, in a child process: lines and MB per CPU-second of the child (user + system),
    whole run and without start-up (a one-line run measured the same way is subtracted: loading the pack,
    the word lists, the model and the web index)."""
    import resource
    import subprocess
    import tempfile

    code = "import sys; from civicaup.interfaces.cli.app import main; sys.argv[0] = 'civicaup'; main()"

    def child_cpu(path: Path, home: Path) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        env = {**__import__("os").environ, "CIVICAUP_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
        with open(path.with_suffix(".out"), "wb") as out:
            subprocess.run([sys.executable, "-c", code, "check", "posts", str(path), "--policy", policy],
                           stdout=out, stderr=subprocess.DEVNULL, env=env, check=False, timeout=3600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    with tempfile.TemporaryDirectory(prefix="civicaup-bench-") as tmp:
        folder = Path(tmp)
        posts = folder / "posts.jsonl"
        with posts.open("w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": i, "text": t, "at": "2026-03-03T10:00"}) + "\n")
        one = folder / "one.jsonl"
        one.write_text(json.dumps({"id": 0, "text": texts[0] if texts else "", "at": "2026-03-03T10:00"}) + "\n",
                       encoding="utf-8")
        file_mb = posts.stat().st_size / 1e6
        text_mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
        startup = child_cpu(one, folder / "home")
        total = child_cpu(posts, folder / "home")
        answers = sum(1 for _ in posts.with_suffix(".out").open(encoding="utf-8"))
    steady = total - startup  # too small to tell on a small sample: start-up is then most of the run
    return {"lines": len(texts), "answers": answers, "file_mb": round(file_mb, 3), "text_mb": round(text_mb, 3),
            "cpu_seconds": round(total, 2), "startup_cpu_seconds": round(startup, 2),
            "lines_per_s": round(len(texts) / max(total, 1e-9), 1), "mb_per_s": round(file_mb / max(total, 1e-9), 3),
            "lines_per_s_after_startup": round(len(texts) / steady, 1) if steady > total / 4 else None,
            "text_mb_per_s_after_startup": round(text_mb / steady, 3) if steady > total / 4 else None,
            "load": _load_average()}


# ---------------------------------------------------------------- driver

def run(sample: int | None = None, seed: int = 7, progress: Callable[[str], None] | None = None, *,
        posts: bool = False, passes: int = 1) -> dict[str, object]:
    say = progress or (lambda _m: None)
    warm_up()
    gc.freeze()  # the loaded word lists out of the collector's way, as `civicaup check posts` and the helpers do
    try:
        return _run(sample, seed, say, posts=posts, passes=passes)
    finally:
        gc.unfreeze()


def _run(sample: int | None, seed: int, say: Callable[[str], None], *, posts: bool, passes: int) -> dict[str, object]:
    results: dict[str, object] = {"sample": sample}
    if davidson.DAVIDSON.exists():
        _, test = davidson.split()
        if sample is not None and sample < len(test):
            test = random.Random(seed).sample(test, sample)
        say(f"davidson: {len(test)} held-out tweets")
        results["davidson"] = evaluate_davidson(test)
        results["throughput_tweets"] = throughput([r.text for r in test], passes=passes)
        results["throughput_tweets_batch"] = throughput([r.text for r in test], batch=True, passes=passes)
        if posts:
            everything = [r.text for r in davidson.read()]
            if sample is not None and sample < len(everything):
                everything = random.Random(seed).sample(everything, sample)
            say(f"check posts: {len(everything)} tweets as JSON Lines")
            results["check_posts"] = check_posts_throughput(everything)
    if SPAMASSASSIN.exists():
        mails = ham_messages(sample, seed)
        bodies = [m.body_text() for m in mails]
        say(f"ham: {len(bodies)} messages")
        results["ham"] = evaluate_ham(bodies)
        results["ham_packs"] = evaluate_packs_on_ham(mails)
        results["pii"] = evaluate_pii(bodies, sample or 2000, seed)
        results["throughput_ham"] = throughput(bodies, passes=passes)
    return results


def _table(rows: Iterable[tuple[str, dict[str, float]]]) -> str:
    lines = [f"  {'':34s} {'precision':>9s} {'recall':>7s} {'F1':>6s}   tp/fp/fn"]
    for name, r in rows:
        lines.append(f"  {name:34s} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f}   "
                     f"{r['tp']}/{r['fp']}/{r['fn']}")
    return "\n".join(lines)


def report(res: dict[str, object]) -> str:
    out: list[str] = []
    d = res.get("davidson")
    if isinstance(d, dict):
        out.append(f"Davidson et al. held-out test part: {d['rows']} tweets ({d['offensive_rows']} offensive or "
                   f"hateful, {d['hate_rows']} hate)")
        out.append(_table([
            ("offensive-or-hateful vs neither", d["all"]["offensive"]),
            ("hate vs harassment", d["all"]["harassment"]),
            ("  lexicons only: offensive", d["lexicons"]["offensive"]),
            ("  lexicons only: hate/harassment", d["lexicons"]["harassment"]),
        ]))
        out.append("  each detector alone (offensive label; hate label for its harassment hits):")
        out.append(_table([(f"{k} (offensive)", v["offensive"]) for k, v in d["detectors"].items()]
                          + [(f"{k} (hate)", v["hate"]) for k, v in d["detectors"].items()
                             if v["hate"]["tp"] + v["hate"]["fp"]]))
    h = res.get("ham")
    if isinstance(h, dict):
        out.append(f"SpamAssassin ham: {h['messages']} legitimate messages; messages each category fires on:")
        out.append("  " + ", ".join(f"{k} {v}" for k, v in h["fires_on"].items()) or "  none")
    hp = res.get("ham_packs")
    if isinstance(hp, dict):
        out.append("SpamAssassin ham through each pack's mail rules: messages a text finding blocks or holds")
        for pack_id, r in hp.items():
            cats = ", ".join(f"{k} {v}" for k, v in r["by_category"].items()) or "none"
            out.append(f"  {pack_id:22s} {r['blocked_or_held']:4d} of {r['messages']} ({r['rate']:.2%}): {cats}")
    p = res.get("pii")
    if isinstance(p, dict):
        out.append("PII recall on generated numbers in real ham text:")
        for kind in PII_KINDS:
            r = p[kind]
            out.append(f"  {kind:8s} {r['found']}/{r['generated']} = {r['recall']:.3f}")
        for kind, examples in p["missed_examples"].items():
            for e in examples:
                out.append(f"  missed {kind}: {e}")
    for key, label in (("throughput_ham", "ham bodies"), ("throughput_tweets", "tweets, one at a time"),
                       ("throughput_tweets_batch", "tweets, scan_many")):
        t = res.get(key)
        if isinstance(t, dict):
            out.append(f"Throughput, {label}, one core: {t['messages_per_s']:.0f} messages/s, {t['mb_per_s']:.2f} MB/s "
                       f"({t['messages']} messages, {t['mb']} MB in {t['cpu_seconds']} CPU s, best of "
                       f"{t.get('passes', 1)}; load {t.get('load', '?')})")
    c = res.get("check_posts")
    if isinstance(c, dict):
        steady = (f"{c['lines_per_s_after_startup']:.0f} lines/s, {c['text_mb_per_s_after_startup']:.2f} MB/s of text"
                  if c["lines_per_s_after_startup"] else "too few lines to tell")
        out.append(f"civicaup check posts, {c['lines']} tweets as JSON Lines ({c['file_mb']} MB): "
                   f"{c['lines_per_s']:.0f} lines/s, {c['mb_per_s']:.2f} MB/s of file in {c['cpu_seconds']} CPU s; "
                   f"after start-up ({c['startup_cpu_seconds']} CPU s): {steady} (load {c['load']})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate civicaup's text detectors on held-out real data.")
    ap.add_argument("--sample", type=int, default=None, help="rows/messages to use (default: all)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--posts", action="store_true",
                    help="also time `civicaup check posts` on the Davidson tweets as JSON Lines (a child process)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes of each throughput figure (best is kept)")
    args = ap.parse_args(argv)
    res = run(args.sample, args.seed, progress=None if args.json else lambda m: print(m, file=sys.stderr),
              posts=args.posts, passes=args.passes)
    print(json.dumps(res, indent=1) if args.json else report(res))
    return 0


__all__ = ["main", "report", "run"]

if __name__ == "__main__":
    raise SystemExit(main())
