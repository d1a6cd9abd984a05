#!/usr/bin/env python3
"""The record of what was tried for the hate class (issue 4), on the training part only.

    .venv/bin/python bench/hate_experiments.py [--only NAME ...]

Every variant replaces the ``hate`` head of the offensive-language classifier with a
model over the same hashed n-gram features the package computes at run time
(civicaup.detect.features), so that any variant printed here can ship as linear weights
without a new run-time dependency. For each variant it prints the 5-fold out-of-fold
figures on the **training part** of the Davidson et al. tweets (the test part is never
read here):

* ``head F1``: the head alone, at its best threshold;
* ``combined P/R/F1``: the package's real combination with the lexicons
  (civicaup.detect.classifier.refine over every tweet's lexicon hits), at the best pair of
  thresholds (weak slur, group) on a 0.01 grid.

* ``strong slurs vetoable too``: the same, were the classifier also allowed to veto a
  strong slur (lexicon confidence 0.8 and up) under a third threshold (0.05 steps) - the
  package keeps strong slurs whatever the classifier says; this shows what that would buy.

``--oracle`` adds two ceilings: a head that knew the labels, and no reading at all.
Only a variant that beats the shipped one here is worth a test-part measurement
(bench/detect.py), once. ``--cache DIR`` keeps each variant's out-of-fold scores, so a
second run only re-scores the combination.

The combination only compares the hate probability with its thresholds, so each tweet's
outcome is computed for the eight (below/above) cases once per variant and the threshold
grid is then evaluated with array operations.

Results and what was done with them: docs/detection.md ("The hate goal is not met").
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))

import train_offensive as tr  # noqa: E402

from civicaup.detect import classifier, davidson, features  # noqa: E402
from civicaup.detect.hit import Hit  # noqa: E402
from civicaup.detect.normalise import normalise_text  # noqa: E402
from civicaup.detect.registry import protected_groups, scan_all, select  # noqa: E402

GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)


class Data:
    """The training part: features, labels, folds and every tweet's lexicon hits."""

    def __init__(self) -> None:
        train, _test = davidson.split()
        self.train = train
        self.norms = [normalise_text(t.text) for t in train]
        self.x = tr.matrix([features.prepare(n.text) for n in self.norms])
        self.hate = np.array([t.hate for t in train])
        self.off = np.array([t.offensive for t in train])
        self.folds = np.array([davidson.fold(t.id) for t in train])
        self.prepared = [(t.text, n, scan_all(t.text, refine=False), protected_groups(n))
                         for t, n in zip(train, self.norms, strict=True)]
        # which rows the classifier reads at all (a weak slur or a protected-class group)
        self.windowed = np.array([bool(classifier.OFFENSIVE_CLASSIFIER.windows(n, h, g))
                                  for _t, n, h, g in self.prepared])
        # rows where a threshold decides harassment: read by the classifier, or holding a strong slur
        self.decided = self.windowed | np.array([any(_strong(h) for h in hits) for _t, _n, hits, _g in self.prepared])


def oof(d: Data, make: Callable[[sp.csr_matrix, np.ndarray], Callable[[sp.csr_matrix], np.ndarray]],
        rows: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold scores for every training row; the model of each fold is fitted on the other
    folds' rows (restricted to ``rows`` when given) with labels ``y`` (default: hate)."""
    y = d.hate if y is None else y
    rows = np.ones(len(y), dtype=bool) if rows is None else rows
    out = np.zeros(len(y))
    for k in range(davidson.FOLDS):
        test = d.folds == k
        fit_rows = ~test & rows
        predict = make(d.x[fit_rows], y[fit_rows])
        out[test] = predict(d.x[test])
    return out


def lr(c: float, weight: str | dict | None = None) -> Callable:
    def make(x: sp.csr_matrix, y: np.ndarray) -> Callable[[sp.csr_matrix], np.ndarray]:
        m = LogisticRegression(C=c, solver="liblinear", max_iter=5000, random_state=0, class_weight=weight).fit(x, y)
        return lambda z: m.predict_proba(z)[:, 1]
    return make


def svm(c: float, weight: str | dict | None = None) -> Callable:
    def make(x: sp.csr_matrix, y: np.ndarray) -> Callable[[sp.csr_matrix], np.ndarray]:
        m = LinearSVC(C=c, class_weight=weight, random_state=0, max_iter=20000).fit(x, y)
        return m.decision_function
    return make


def nbsvm(c: float, alpha: float = 1.0) -> Callable:
    """Wang & Manning 2012: features scaled by the naive-Bayes log-count ratio, then LR."""
    def make(x: sp.csr_matrix, y: np.ndarray) -> Callable[[sp.csr_matrix], np.ndarray]:
        pos = np.asarray(x[y].sum(axis=0)).ravel() + alpha
        neg = np.asarray(x[~y].sum(axis=0)).ravel() + alpha
        r = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
        scale = sp.diags(r)
        m = LogisticRegression(C=c, solver="liblinear", max_iter=5000, random_state=0).fit(x @ scale, y)
        return lambda z: m.predict_proba(z @ scale)[:, 1]
    return make


def idf_lr(c: float, weight: str | None = None) -> Callable:
    """LR over idf-weighted features (foldable into the weight table at run time)."""
    def make(x: sp.csr_matrix, y: np.ndarray) -> Callable[[sp.csr_matrix], np.ndarray]:
        df = np.bincount(x.indices, minlength=x.shape[1])
        idf = np.log((1 + x.shape[0]) / (1 + df)) + 1.0
        scale = sp.diags(idf)
        m = LogisticRegression(C=c, solver="liblinear", max_iter=5000, random_state=0,
                               class_weight=weight).fit(x @ scale, y)
        return lambda z: m.predict_proba(z @ scale)[:, 1]
    return make


def logit(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Platt-scaled log-odds of out-of-fold scores (a linear map of a linear model's score stays linear)."""
    p = np.clip(to_prob(s, y), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def mean_logit(d: Data, *makes: Callable, rows: np.ndarray | None = None) -> np.ndarray:
    """The mean of several heads' calibrated log-odds: still one linear model over the same features."""
    z = np.mean([logit(oof(d, m, rows=rows), d.hate) for m in makes], axis=0)
    return 1.0 / (1.0 + np.exp(-z))


def to_prob(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A monotone map of scores to (0, 1) (Platt scaling on the out-of-fold scores): the thresholded
    rule does not change, only the confidence an ambiguous confirmed slur receives."""
    if s.min() >= 0 and s.max() <= 1:
        return s
    m = LogisticRegression(C=1e4, solver="lbfgs").fit(s.reshape(-1, 1), y)
    return m.predict_proba(s.reshape(-1, 1))[:, 1]


def _strong(h: Hit) -> bool:
    return h.detector == "lexicon-slur" and h.confidence >= classifier.WEAK_SLUR


def _vetoed(h: Hit) -> Hit:
    """A strong slur as the classifier would leave it when vetoed: below every harassment threshold."""
    return Hit(h.category, "vetoed-strong-slur", h.evidence, h.start, h.end, classifier.VETOED_CONFIDENCE, h.tags)


def outcomes(d: Data, p_off: np.ndarray, p_hate: np.ndarray) -> np.ndarray:
    """(rows, 2, 2, 2): harassment selected when the hate probability is [below/at-or-above a strong-slur
    threshold][... the weak-slur threshold][... the group threshold]. The package keeps strong slurs as
    they are (the ``[1]`` half); the ``[0]`` half is what a classifier veto of strong slurs would give."""
    out = np.zeros((len(p_hate), 2, 2, 2), dtype=bool)
    for i, (text, norm, hits, groups) in enumerate(d.prepared):
        probs = (float(p_off[i]), float(p_hate[i]))
        strong = any(_strong(h) for h in hits)
        for s in ((0, 1) if strong else (1,)):
            shown = hits if s else [_vetoed(h) if _strong(h) else h for h in hits]
            cases = ((0, 0), (0, 1), (1, 0), (1, 1)) if d.windowed[i] else ((0, 0),)
            for a, b in cases:
                th = {"weak_slur": 0.0 if a else 2.0, "group": 0.0 if b else 2.0}
                refined = classifier.OFFENSIVE_CLASSIFIER.refine(text, norm, shown, groups,
                                                                 probabilities=lambda _s, p=probs: p, thresholds=th)
                out[i, s, a, b] = any(h.category == "harassment" for h in select(refined))
            if not d.windowed[i]:
                out[i, s] = out[i, s, 0, 0]
        if not strong:
            out[i, 0] = out[i, 1]
    return out


def prf(pred: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_combined(d: Data, p_off: np.ndarray, p_hate: np.ndarray, *, strong: bool = False,
                  o: np.ndarray | None = None) -> tuple[tuple[float, float, float], dict[str, float]]:
    """The best out-of-fold combined (P, R, F1) and its thresholds; ``strong``: also search a threshold
    under which strong slurs are vetoed (0.05 steps), else strong slurs stand as they do in the package."""
    o = outcomes(d, p_off, p_hate) if o is None else o
    flat = o.reshape(len(p_hate), 8)
    n_hate = int(d.hate.sum())
    fixed = flat.all(axis=1) | ~flat.any(axis=1)  # the same outcome whatever the thresholds
    base_tp = int(np.count_nonzero(flat[fixed, 0] & d.hate[fixed]))
    base_n = int(np.count_nonzero(flat[fixed, 0]))
    flat, hate, p_hate = flat[~fixed], d.hate[~fixed], p_hate[~fixed]
    rows = np.arange(len(p_hate))
    above = {t: (p_hate >= t).astype(np.int64) for t in GRID}
    best: tuple[tuple[float, float, float], dict[str, float]] = ((0.0, 0.0, -1.0), {})
    strong_grid = np.round(np.arange(0.0, 0.96, 0.05), 2) if strong else (0.0,)
    for st in strong_grid:
        s = (p_hate >= st).astype(np.int64) * 4
        for ws in GRID:
            sa = s + above[ws] * 2
            for g in GRID:
                pred = flat[rows, sa + above[g]]
                tp = base_tp + int(np.count_nonzero(pred & hate))
                n = base_n + int(np.count_nonzero(pred))
                f = 2 * tp / (n + n_hate) if n + n_hate else 0.0
                if f > best[0][2]:
                    best = ((tp / n if n else 0.0, tp / n_hate, f),
                            {"strong_slur": float(st), "weak_slur": float(ws), "group": float(g)})
    return best


def head_f1(p: np.ndarray, y: np.ndarray) -> float:
    qs = np.unique(np.quantile(p, np.linspace(0.01, 0.999, 200)))
    return max(prf(p >= t, y)[2] for t in qs)


def variants(d: Data) -> dict[str, Callable[[], np.ndarray]]:
    hate_or_off = d.off  # hate-vs-offensive rows: every offensive-or-hateful tweet
    return {
        "shipped: LR C=1": lambda: oof(d, lr(1.0)),
        "LR C=2": lambda: oof(d, lr(2.0)),
        "LR C=4": lambda: oof(d, lr(4.0)),
        "LR balanced C=1": lambda: oof(d, lr(1.0, "balanced")),
        "LR hate x3 C=1": lambda: oof(d, lr(1.0, {False: 1.0, True: 3.0})),
        "LR hate x3 C=4": lambda: oof(d, lr(4.0, {False: 1.0, True: 3.0})),
        "SVM C=0.1": lambda: oof(d, svm(0.1)),
        "SVM balanced C=0.05": lambda: oof(d, svm(0.05, "balanced")),
        "SVM hate x3 C=0.1": lambda: oof(d, svm(0.1, {False: 1.0, True: 3.0})),
        "NB-SVM C=1": lambda: oof(d, nbsvm(1.0)),
        "NB-SVM C=4": lambda: oof(d, nbsvm(4.0)),
        "idf LR C=1": lambda: oof(d, idf_lr(1.0)),
        "idf LR hate x3 C=1": lambda: oof(d, idf_lr(1.0, {False: 1.0, True: 3.0})),
        "hate vs offensive only, LR C=1": lambda: oof(d, lr(1.0), rows=hate_or_off),
        "hate vs offensive only, LR C=4": lambda: oof(d, lr(4.0), rows=hate_or_off),
        "hate vs offensive only, LR balanced C=1": lambda: oof(d, lr(1.0, "balanced"), rows=hate_or_off),
        "windowed rows only, LR C=1": lambda: oof(d, lr(1.0), rows=d.windowed),
        "windowed rows only, LR C=4": lambda: oof(d, lr(4.0), rows=d.windowed),
        "windowed rows only, LR balanced C=1": lambda: oof(d, lr(1.0, "balanced"), rows=d.windowed),
        "decision rows only, LR C=1": lambda: oof(d, lr(1.0), rows=d.decided),
        "decision rows only, LR C=4": lambda: oof(d, lr(4.0), rows=d.decided),
        "decision rows only, SVM C=0.1": lambda: oof(d, svm(0.1), rows=d.decided),
        "decision rows only, NB-SVM C=1": lambda: oof(d, nbsvm(1.0), rows=d.decided),
        "ensemble: LR + SVM + NB-SVM (mean logit)": lambda: mean_logit(d, lr(1.0), svm(0.1), nbsvm(1.0)),
        "ensemble, decision rows only": lambda: mean_logit(d, lr(1.0), svm(0.1), nbsvm(1.0), rows=d.decided),
    }


def report(d: Data, name: str, p_off: np.ndarray, p: np.ndarray, t: float | None) -> None:
    o = outcomes(d, p_off, p)
    (cp, cr, cf), th = best_combined(d, p_off, p, o=o)
    (sp_, sr, sf), sth = best_combined(d, p_off, p, o=o, strong=True)
    cpu = f"; {time.process_time() - t:.0f} s CPU" if t is not None else ""
    print(f"  {name:42s} head F1 {head_f1(p, d.hate):.3f} | combined P {cp:.3f} R {cr:.3f} F1 {cf:.3f} "
          f"(weak {th['weak_slur']:.2f}, group {th['group']:.2f}) | strong slurs vetoable too: P {sp_:.3f} "
          f"R {sr:.3f} F1 {sf:.3f} (strong {sth['strong_slur']:.2f}, weak {sth['weak_slur']:.2f}, "
          f"group {sth['group']:.2f}){cpu}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="names (substrings) of the variants to run")
    ap.add_argument("--oracle", action="store_true", help="also print the ceiling: a head that knows the labels")
    ap.add_argument("--cache", type=Path, help="a directory to keep each variant's out-of-fold scores in")
    args = ap.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    d = Data()
    print(f"training part: {len(d.train)} rows, {int(d.hate.sum())} hate, {int(d.windowed.sum())} read by the "
          f"classifier ({int((d.windowed & d.hate).sum())} of them hate); {time.process_time() - t0:.0f} s CPU")
    p_off = oof(d, lr(4.0), y=d.off)
    print(f"offensive head (shipped, LR C=4): out-of-fold F1 {head_f1(p_off, d.off):.3f}")
    if args.oracle:
        for name, p in (("oracle (labels as probabilities)", d.hate.astype(float)),
                        ("no classifier reading (every weak slur / group kept)", np.ones(len(d.hate)))):
            report(d, name, p_off, p, None)
    for name, run in variants(d).items():
        if args.only and not any(s in name for s in args.only):
            continue
        t = time.process_time()
        cached = args.cache / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".npy") if args.cache else None
        if cached is not None and cached.exists():
            s = np.load(cached)
        else:
            s = run()
            if cached is not None:
                np.save(cached, s)
        report(d, name, p_off, to_prob(s, d.hate), t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
