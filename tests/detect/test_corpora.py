"""Measurements on real public data (slow): Davidson et al. tweets and SpamAssassin ham.

* Davidson et al., "Automated Hate Speech Detection and the Problem of Offensive
  Language", ICWSM 2017 (MIT licence): 24,783 tweets, class 0 hate, 1 offensive,
  2 neither. The floors are asserted on the held-out **test** part of the one fixed
  split (civicaup.detect.davidson): the classifier was trained on the other rows, the
  word lists were tuned on rows whose id is a multiple of 4, which the test part leaves out.
* Apache SpamAssassin public corpus (PDDL 1.0 / CC0): the 4,150 legitimate ham
  messages, for false positives and throughput.

Run with ``pytest tests/detect -q -s -m slow`` to see the printed numbers; bench/detect.py
prints the full table.
"""

from __future__ import annotations

import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from civicaup.detect import davidson, scan_text

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SPAMASSASSIN = SHARED / "mail" / "spamassassin-public-corpus.tar.xz"
OFFENSIVE = {"harassment", "profanity", "sexual", "threat"}
HAM_FOLDERS = ("easy-ham-1", "easy-ham-2", "hard-ham-1")


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _score(rows: list[davidson.Tweet]) -> dict[str, tuple[float, float, float]]:
    counts: Counter[str] = Counter()
    for row in rows:
        cats = {h.category for h in scan_text(row.text)}
        for key, predicted, actual in (
            ("offensive", bool(cats & OFFENSIVE), row.offensive),
            ("hate", "harassment" in cats, row.hate),
        ):
            counts[key + (":tp" if predicted and actual else ":fp" if predicted else ":fn" if actual else ":tn")] += 1
    return {k: _prf(counts[k + ":tp"], counts[k + ":fp"], counts[k + ":fn"]) for k in ("offensive", "hate")}


def test_the_split_is_fixed_and_keeps_the_word_list_rows_out_of_the_test_part() -> None:
    assert [davidson.bucket(i) for i in (0, 1, 2, 3)] == [davidson.bucket(i) for i in (0, 1, 2, 3)]
    assert not any(davidson.is_test(i) for i in range(0, 4000, 4))
    share = sum(davidson.is_test(i) for i in range(24783)) / 24783
    assert 0.20 < share < 0.25


@pytest.mark.slow
def test_davidson_offensive_and_hate_precision_recall_on_the_held_out_part() -> None:
    if not davidson.DAVIDSON.exists():
        pytest.skip(f"{davidson.DAVIDSON} not present")
    _, test = davidson.split()
    scores = _score(test)
    for key, (p, r, f1) in scores.items():
        print(f"davidson test {key:9s} (n={len(test)}) precision={p:.3f} recall={r:.3f} f1={f1:.3f}")
    p, r, f1 = scores["offensive"]
    assert p >= 0.95 and r >= 0.93 and f1 >= 0.93  # the goal: F1 >= 0.93
    p, r, f1 = scores["hate"]
    assert p >= 0.35 and r >= 0.5 and f1 >= 0.45  # what the shipped model reaches (goal 0.55: not met)


@pytest.fixture(scope="module")
def ham(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    if not SPAMASSASSIN.exists():
        pytest.skip(f"{SPAMASSASSIN} not present")
    target = tmp_path_factory.mktemp("spamassassin")
    with tarfile.open(SPAMASSASSIN, "r:xz") as tar:
        tar.extractall(target, filter="data")
    messages: list[tuple[str, str]] = []
    for folder in HAM_FOLDERS:
        (path,) = list(target.rglob(folder))
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            raw = file.read_bytes().decode("utf-8", errors="replace")
            messages.append((f"{folder}/{file.name}", raw.split("\n\n", 1)[1] if "\n\n" in raw else ""))
    assert len(messages) == 4150
    return messages


@pytest.mark.slow
def test_spamassassin_ham_false_positives_and_throughput(ham: list[tuple[str, str]]) -> None:
    scan_text("warm up the word lists")
    size = sum(len(body.encode("utf-8")) for _, body in ham)
    fired: Counter[str] = Counter()
    start = time.perf_counter()
    for _, body in ham:
        for category in {h.category for h in scan_text(body)}:
            fired[category] += 1
    elapsed = time.perf_counter() - start
    rate = size / 1e6 / elapsed
    print(f"ham: {len(ham)} messages, {size / 1e6:.1f} MB in {elapsed:.2f} s = {rate:.1f} MB/s")
    for category in ("pii", "phi", "solicitation", "harassment"):
        print(f"ham: {category:12s} fires on {fired[category]:4d} of {len(ham)} ({fired[category] / len(ham):.2%})")
    print("ham: all categories", dict(sorted(fired.items())))
    assert fired["pii"] == 0  # issue 4: no false positive (Presidio: 1,586 of 4,150)
    assert fired["phi"] < 0.02 * len(ham)
    assert fired["solicitation"] < 0.02 * len(ham)
    assert fired["harassment"] < 0.02 * len(ham)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kirkwood_rules_over_the_ham_stop_few_legitimate_messages() -> None:
    """Each pack's mail rules over the 4,150 ham messages (bench/detect.py's table): Kirkwood blocked or
    held 9.9% of them before its `detection:` thresholds, the severity tiers and the link rule."""
    import importlib.util

    if not SPAMASSASSIN.exists():
        pytest.skip(f"{SPAMASSASSIN} not present")
    spec = importlib.util.spec_from_file_location("bench_detect", Path(__file__).resolve().parents[2] / "bench" / "detect.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.evaluate_packs_on_ham(bench.ham_messages(), packs=("kirkwood-mo",))["kirkwood-mo"]
    print("kirkwood-mo over the ham:", result["blocked_or_held"], result["by_category"])
    assert result["messages"] == 4150
    assert result["rate"] < 0.05
    offensive = result["by_category"].get("profanity", 0) + result["by_category"].get("sexual", 0)
    assert offensive < 0.035 * 4150
    assert result["by_category"].get("pii", 0) == 0
