"""bench/detect.py runs end to end on a small sample (correctness only: no speed is asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from civicaup.detect import davidson

BENCH = Path(__file__).resolve().parents[2] / "bench" / "detect.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_detect", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
def test_bench_runs_on_a_small_sample_and_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    if not davidson.DAVIDSON.exists() or not bench.SPAMASSASSIN.exists():
        pytest.skip("the shared data sets are not beside the repository")
    res = bench.run(sample=60)
    d = res["davidson"]
    assert d["rows"] == 60
    for name in ("all", "lexicons"):
        for cat in ("offensive", "harassment"):
            r = d[name][cat]
            assert 0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 and 0.0 <= r["f1"] <= 1.0
            assert r["tp"] + r["fn"] == (d["offensive_rows"] if cat == "offensive" else d["hate_rows"])
    assert "lexicon-profanity" in d["detectors"] and "classifier-offensive" in d["detectors"]
    assert res["ham"]["messages"] == 60
    for kind in ("ssn", "card", "routing"):
        assert res["pii"][kind]["generated"] == 60 and 0 <= res["pii"][kind]["found"] <= 60
    for key in ("throughput_ham", "throughput_tweets", "throughput_tweets_batch"):
        assert res[key]["messages"] == 60 and res[key]["mb_per_s"] > 0
    packs = res["ham_packs"]
    assert set(packs) == set(bench.PACKS)
    for r in packs.values():
        assert r["messages"] == 60 and 0 <= r["blocked_or_held"] <= 60
        assert set(r["by_category"]) <= bench.TEXT_CATEGORIES
    text = bench.report(res)
    for line in ("offensive-or-hateful vs neither", "hate vs harassment", "PII recall", "MB/s", "kirkwood-mo"):
        assert line in text
    assert bench.main(["--sample", "20", "--json"]) == 0
    assert '"davidson"' in capsys.readouterr().out


def test_the_bench_never_reads_training_rows() -> None:
    bench = _load()
    _, test = davidson.split()
    assert all(davidson.is_test(t.id) for t in test)
    assert bench.OFFENSIVE == {"harassment", "profanity", "sexual", "threat"}
