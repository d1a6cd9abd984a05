#!/usr/bin/env python3
"""Train the offensive-language classifier shipped as src/civicaup/detect/models/offensive.npz.

    .venv/bin/pip install -e '.[train]'          # scikit-learn, scipy: training only
    .venv/bin/python training/train_offensive.py [--data ../shared/data/davidson/labeled_data.csv]

Data: Davidson, Warmsley, Macy and Weber, "Automated Hate Speech Detection and the
Problem of Offensive Language", ICWSM 2017 - 24,783 labelled tweets, MIT licence
(github t-davidson/hate-speech-and-offensive-language). The file is read where it
lies; nothing of it is copied into the repository, and the model file holds only
hashed-feature weights.

What it does, all seeded and deterministic:

1. splits the rows once by a hash of the row id (civicaup.detect.davidson): the test
   part is never read here;
2. turns each training tweet into hashed n-gram features with the same code the
   package runs (civicaup.detect.features, on the text as civicaup.detect.normalise
   normalises it);
3. picks the regularisation of each head (offensive-or-hateful vs neither; hate vs
   the rest) by 5-fold cross-validated F1 on the training part;
4. tunes the thresholds that combine the classifier with the lexicons
   (civicaup.detect.classifier) on the out-of-fold predictions, running the real
   combination code over the lexicon hits of every training tweet;
5. fits both heads on the whole training part and writes the weights (float16),
   biases, thresholds and a record of the run (data hash, counts, cross-validated
   figures) to the model file.

bench/detect.py measures the result on the held-out test part.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from civicaup.detect import classifier, davidson, features  # noqa: E402
from civicaup.detect.normalise import normalise_text  # noqa: E402
from civicaup.detect.registry import protected_groups, scan_all, select  # noqa: E402

OUT = ROOT / "src" / "civicaup" / "detect" / "models" / classifier.MODEL_FILE
OFFENSIVE = {"harassment", "profanity", "sexual", "threat"}
C_GRID = {"offensive": (1.0, 4.0), "hate": (0.5, 1.0, 2.0)}
THRESHOLD_GRID = {
    "weak_slur": tuple(np.round(np.arange(0.10, 0.71, 0.05), 2)),
    "group": tuple(np.round(np.arange(0.10, 0.91, 0.05), 2)),
}


def matrix(texts: list[str]) -> sp.csr_matrix:
    """One row per text: the hashed features exactly as civicaup.detect.features scores them at run time
    (features.Batch: each n-gram occurrence weighs 1/sqrt(n-grams of its kind in the text))."""
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    step = 2000
    for i in range(0, len(texts), step):
        batch = features.Batch(texts[i : i + step])
        sc, sw = batch.scale()
        rows += [batch.char_seg + i, batch.word_seg + i]
        cols += [batch.char_slots.astype(np.int64), batch.word_slots.astype(np.int64)]
        vals += [sc[batch.char_seg], sw[batch.word_seg]]
    x = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(texts), features.DIM)).tocsr()
    x.sum_duplicates()
    return x


def fit(x: sp.csr_matrix, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, solver="liblinear", max_iter=5000, random_state=0).fit(x, y)


def out_of_fold(x: sp.csr_matrix, y: np.ndarray, folds: np.ndarray, c: float) -> np.ndarray:
    p = np.zeros(len(y))
    for k in range(davidson.FOLDS):
        test = folds == k
        p[test] = fit(x[~test], y[~test], c).predict_proba(x[test])[:, 1]
    return p


def f1(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    tp = int((predicted & actual).sum())
    fp = int((predicted & ~actual).sum())
    fn = int((~predicted & actual).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_threshold_f1(p: np.ndarray, y: np.ndarray) -> float:
    return max(f1(p >= t, y)[2] for t in np.arange(0.05, 0.95, 0.01))


def combined(prepared: list[tuple], oof: np.ndarray, thresholds: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Run the package's combination code with out-of-fold probabilities: (offensive, harassment) per tweet."""
    off = np.zeros(len(prepared), dtype=bool)
    hate = np.zeros(len(prepared), dtype=bool)
    for i, (text, norm, hits, groups) in enumerate(prepared):
        probs = (float(oof[i, 0]), float(oof[i, 1]))
        refined = classifier.OFFENSIVE_CLASSIFIER.refine(text, norm, hits, groups, probabilities=lambda _s, p=probs: p,
                                                         thresholds=thresholds)
        cats = {h.category for h in select(refined)}
        off[i] = bool(cats & OFFENSIVE)
        hate[i] = "harassment" in cats
    return off, hate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=davidson.DAVIDSON)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    started = time.time()
    train, test = davidson.split(args.data)
    print(f"rows: {len(train)} train, {len(test)} test (not read further)")
    norms = [normalise_text(t.text) for t in train]
    x = matrix([features.prepare(n.text) for n in norms])
    y = {"offensive": np.array([t.offensive for t in train]), "hate": np.array([t.hate for t in train])}
    folds = np.array([davidson.fold(t.id) for t in train])
    print(f"features: {x.shape[1]} slots, {x.nnz} non-zero ({time.time() - started:.0f} s)")

    chosen: dict[str, float] = {}
    oof: dict[str, np.ndarray] = {}
    cv: dict[str, dict[str, float]] = {}
    for head in ("offensive", "hate"):
        scores = []
        for c in C_GRID[head]:
            p = out_of_fold(x, y[head], folds, c)
            scores.append((best_threshold_f1(p, y[head]), c, p))
            print(f"  {head:9s} C={c:<4g} out-of-fold best F1 {scores[-1][0]:.3f}")
        best, c, p = max(scores, key=lambda s: (s[0], -s[1]))
        chosen[head], oof[head] = c, p
        cv[head] = {"C": c, "classifier_f1": round(best, 4)}
    probs = np.stack([oof["offensive"], oof["hate"]], axis=1)

    print("tuning the combination with the lexicons on the out-of-fold predictions ...")
    prepared = []
    for t, n in zip(train, norms, strict=True):
        prepared.append((t.text, n, scan_all(t.text, refine=False), protected_groups(n)))
    best_h: tuple[float, dict[str, float]] = (-1.0, {})
    for ws, g in itertools.product(THRESHOLD_GRID["weak_slur"], THRESHOLD_GRID["group"]):
        th = {"weak_slur": float(ws), "group": float(g)}
        _, hate = combined(prepared, probs, th)
        score = f1(hate, y["hate"])[2]
        if score > best_h[0]:
            best_h = (score, th)
    thresholds = dict(best_h[1])
    off, hate = combined(prepared, probs, thresholds)
    lex_off, lex_hate = combined(prepared, np.zeros_like(probs), {"weak_slur": 0.0, "group": 2.0})
    cv["combined"] = {
        "offensive_prf": [round(v, 4) for v in f1(off, y["offensive"])],
        "harassment_prf": [round(v, 4) for v in f1(hate, y["hate"])],
        "lexicons_only_offensive_prf": [round(v, 4) for v in f1(lex_off, y["offensive"])],
        "lexicons_only_harassment_prf": [round(v, 4) for v in f1(lex_hate, y["hate"])],
    }
    print(f"thresholds {thresholds}; out-of-fold combined: {cv['combined']}")

    weights = np.zeros((features.DIM, features.HEADS), dtype=np.float32)
    bias = np.zeros(features.HEADS)
    for k, head in enumerate(("offensive", "hate")):
        model = fit(x, y[head], chosen[head])
        weights[:, k] = model.coef_[0]
        bias[k] = model.intercept_[0]
    digest = hashlib.sha256(args.data.read_bytes()).hexdigest()
    meta = {
        "version": 1,
        "heads": ["offensive", "hate"],
        "bits": features.BITS,
        "ngrams": list(features.NGRAMS),
        "thresholds": thresholds,
        "training": {
            "data": "Davidson et al. 2017, labeled_data.csv (MIT licence)",
            "data_sha256": digest,
            "split": f"{davidson.SEED}: test = id % 4 != 0 and bucket < {davidson.TEST_BUCKETS}",
            "rows": len(train),
            "hate_rows": int(y["hate"].sum()),
            "offensive_rows": int(y["offensive"].sum()),
            "cross_validation": cv,
            "solver": f"scikit-learn {sklearn.__version__} LogisticRegression(liblinear, random_state=0)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, weights=weights.astype(np.float16), bias=bias, meta=np.array(json.dumps(meta)))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
