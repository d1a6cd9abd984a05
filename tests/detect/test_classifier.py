"""The offensive-language classifier: shipped model, numpy-only inference, how it refines the lexicons."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from civicaup.detect import classifier, features, normalise_text, scan_all, scan_text
from civicaup.detect.registry import protected_groups

ALWAYS = {"weak_slur": 0.0, "group": 0.0}
NEVER = {"weak_slur": 1.1, "group": 1.1}


def _refine(text: str, p_offensive: float, p_hate: float, thresholds: dict[str, float]):  # type: ignore[no-untyped-def]
    norm = normalise_text(text)
    return classifier.OFFENSIVE_CLASSIFIER.refine(
        text, norm, scan_all(text, refine=False), protected_groups(norm),
        probabilities=lambda _s: (p_offensive, p_hate), thresholds=thresholds)


def test_the_shipped_model_loads_once_and_matches_the_feature_code() -> None:
    model = classifier.load_model()
    assert model is not None, "src/civicaup/detect/models/offensive.npz is missing: run training/train_offensive.py"
    assert classifier.load_model() is model
    assert model.table.shape == (features.DIM, features.HEADS) and model.table.dtype == np.float32
    assert set(model.thresholds) == {"weak_slur", "group"}
    assert model.meta["bits"] == features.BITS and model.meta["ngrams"] == list(features.NGRAMS)
    training = model.meta["training"]
    assert isinstance(training, dict) and "MIT" in str(training["data"])


def test_probabilities_separate_obvious_cases() -> None:
    model = classifier.load_model()
    assert model is not None
    off_bad, hate_bad = model.probabilities(features.prepare(normalise_text("you are a stupid bitch").text))
    off_ok, hate_ok = model.probabilities(features.prepare(normalise_text("the council meets on tuesday").text))
    assert off_bad > 0.8 > off_ok and hate_ok < 0.2
    assert 0.0 <= hate_bad <= 1.0


def test_features_are_deterministic_and_blocks_add_up() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 30
    a, b = features.Grams(text), features.Grams(text)
    assert [np.array_equal(x[0], y[0]) for x, y in zip(a.char_parts, b.char_parts, strict=True)] == [True] * 4
    table = np.random.default_rng(0).standard_normal((features.DIM, 2)).astype(np.float32)
    grams = features.Grams(text, block=100)
    chars, words = grams.slots()
    assert grams.n_blocks == -(-len(text) // 100)
    total = table[chars].sum(axis=0) + table[words].sum(axis=0)
    per_block = sum(features._block_sums(p, table, grams.n_blocks).sum(axis=0)
                    for p in (grams.char_parts, grams.word_parts))
    assert np.allclose(total, per_block, rtol=1e-4)
    assert int(grams.char_count.sum()) == len(chars) and int(grams.word_count.sum()) == len(words)
    one = features.Grams(text, block=10**9)
    fast_chars, fast_words = features.single_slots(text)
    assert np.array_equal(one.slots()[0], fast_chars) and np.array_equal(one.slots()[1], fast_words)
    assert np.allclose(features.scores(table, np.zeros(2), one)[0], features.score_single(table, np.zeros(2), text))


def test_inference_needs_numpy_only() -> None:
    code = ("import sys; from civicaup.detect import scan_text, classifier; classifier.load_model(); "
            "scan_text('all mexicans are lazy'); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_weak_slur_the_classifier_does_not_confirm_becomes_profanity() -> None:
    hits = _refine("lol my nigga thats funny", 0.9, 0.01, {"weak_slur": 0.5, "group": 0.5})
    slur = [h for h in hits if h.detector == "lexicon-slur"]
    assert slur and slur[0].confidence <= classifier.VETOED_CONFIDENCE and "classifier:vetoed" in slur[0].tags
    assert any(h.category == "profanity" and h.detector == classifier.NAME for h in hits)


def test_a_weak_slur_the_classifier_confirms_stays_harassment() -> None:
    hits = _refine("lol my nigga thats funny", 0.9, 0.9, {"weak_slur": 0.5, "group": 0.5})
    slur = [h for h in hits if h.detector == "lexicon-slur"]
    assert slur[0].confidence >= 0.6 and "classifier:confirmed" in slur[0].tags


def test_strong_slurs_and_patterns_are_kept_whatever_the_classifier_says() -> None:
    for text in ("he is a nigger", "all mexicans are lazy"):
        hits = _refine(text, 0.0, 0.0, NEVER)
        assert any(h.category == "harassment" and h.confidence >= 0.45 for h in hits), text


def test_a_protected_group_in_a_hateful_text_is_harassment_only_with_the_classifier() -> None:
    text = "those muslims with their damn noise every night on my street"
    hits = _refine(text, 0.9, 0.9, ALWAYS)
    found = [h for h in hits if h.category == "harassment" and h.detector == classifier.NAME]
    assert found and "protected:religion" in found[0].tags
    assert not [h for h in _refine(text, 0.9, 0.05, {"weak_slur": 0.5, "group": 0.5}) if h.category == "harassment"]


def test_a_protected_group_without_a_rude_word_nearby_is_not_harassment() -> None:
    text = "most regular attendants are women, and women run most of the committees"
    assert not [h for h in _refine(text, 0.9, 0.99, ALWAYS) if h.category == "harassment"]


def test_without_a_protected_class_the_classifier_adds_no_harassment() -> None:
    hits = _refine("you are the worst neighbor ever, get lost", 1.0, 1.0, ALWAYS)
    assert not [h for h in hits if h.category == "harassment"]


def test_a_missing_model_leaves_the_lexicon_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifier, "_MODEL", [None])
    text = "lol my nigga thats funny"
    assert scan_text(text) == [h for h in scan_all(text, refine=False)]


def test_long_texts_are_read_in_windows_around_the_words() -> None:
    filler = "The council approved the budget for the new fire station on Tuesday. " * 40
    text = filler + "those muslims ruin every neighborhood they move into. " + filler
    seen: list[str] = []
    norm = normalise_text(text)

    def spy(window: str) -> tuple[float, float]:
        seen.append(window)
        return 0.1, 0.1

    classifier.OFFENSIVE_CLASSIFIER.refine(text, norm, scan_all(text, refine=False), protected_groups(norm),
                                           probabilities=spy, thresholds=ALWAYS)
    assert len(seen) == 1 and "muslims" in seen[0] and len(seen[0]) <= 2 * classifier.WINDOW + 1


def test_check_posts_loads_the_model_once_for_the_whole_batch(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    from civicaup.interfaces.cli.app import main

    loads: list[int] = []
    real = classifier._from_npz

    def counting(npz):  # type: ignore[no-untyped-def]
        loads.append(1)
        return real(npz)

    monkeypatch.setattr(classifier, "_from_npz", counting)
    monkeypatch.setattr(classifier, "_MODEL", [])
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(
        ["lol my nigga thats funny", "those muslims ruin every damn neighborhood", "Loved the festival!"] * 5)]
    monkeypatch.setattr(sys, "argv", ["civicaup", "check", "posts", "-", "--policy", "west-des-moines-ia"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == list(range(15))
    assert loads == [1]


def test_a_batch_scores_each_text_exactly_as_alone() -> None:
    texts = ["you are a stupid bitch", "", "é ü 😀 x", "the council meets on tuesday " * 20, "a"]
    batch = features.Batch(texts)
    for i, text in enumerate(texts):
        alone = features.Grams(text, block=10**9)
        chars, words = alone.slots()
        assert np.array_equal(batch.char_slots[batch.char_seg == i], chars)
        assert np.array_equal(batch.word_slots[batch.word_seg == i], words)
    model = classifier.load_model()
    assert model is not None
    together = model.probabilities_many(texts)
    assert together == [model.probabilities(t) for t in texts]  # bit for bit: the sums run in the same order


def test_scan_many_equals_scan_text_on_held_out_tweets() -> None:
    from civicaup.detect import davidson, scan_many

    if not davidson.DAVIDSON.exists():
        pytest.skip("the shared data sets are not beside the repository")
    _, test = davidson.split()
    texts = [t.text for t in test[:400]]
    assert scan_many(texts) == [scan_text(t) for t in texts]
