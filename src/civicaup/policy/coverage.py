"""Coverage: every sentence of the source text, with the rules that enforce it or why software cannot.

`gaps` lists source text that no clause entry accounts for, and `enforced` sentences that no rule cites;
a finished pack has none.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from civicaup.policy.compile import CompiledPack
from civicaup.policy.text import squash

_MARKER = re.compile(r"^\(?[A-Za-z0-9]{1,4}\)?\.?$")


@dataclass(frozen=True)
class SentenceCoverage:
    clause: str
    text: str
    status: str
    rules: tuple[str, ...]
    why: str
    handled_by: str


@dataclass(frozen=True)
class Coverage:
    policy: str
    sentences: tuple[SentenceCoverage, ...]
    gaps: tuple[str, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sentences:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = []
        for s in self.sentences:
            if not clauses or clauses[-1]["clause"] != s.clause:
                clauses.append({"clause": s.clause, "sentences": []})
            clauses[-1]["sentences"].append({"text": s.text, "status": s.status, "rules": list(s.rules),
                                             "why": s.why, "handled_by": s.handled_by})
        return {"policy": self.policy, "clauses": clauses, "counts": self.counts(), "gaps": list(self.gaps)}


def coverage(cp: CompiledPack) -> Coverage:
    """Account for every sentence of the pack's source text."""
    out: list[SentenceCoverage] = []
    gaps: list[str] = []
    for clause in cp.pack.clauses:
        for s in clause.sentences:
            text = squash(s.text)
            rules = tuple(r.id for r in cp.pack.rules if r.clause == clause.ref
                          and (squash(r.quote) in text or text in squash(r.quote)))
            if s.status == "enforced" and not rules:
                gaps.append(f"{clause.ref}: marked enforced but no rule quotes it: {text[:80]}")
            out.append(SentenceCoverage(clause.ref, text, s.status, rules, s.why, s.handled_by))
    gaps += unaccounted(cp)
    return Coverage(policy=cp.id, sentences=tuple(out), gaps=tuple(gaps))


def unaccounted(cp: CompiledPack) -> list[str]:
    """Stretches of the source text that no sentence, title or ignored line covers."""
    source = squash(cp.source_text)
    covered = [False] * len(source)
    pieces = [squash(s.text) for c in cp.pack.clauses for s in c.sentences]
    pieces += [squash(c.title) for c in cp.pack.clauses if c.title] + [squash(i) for i in cp.pack.source.ignore]
    missing = [p for p in pieces if p and p not in source]
    for piece in pieces:
        start = source.find(piece) if piece else -1
        while start >= 0:
            covered[start:start + len(piece)] = [True] * len(piece)
            start = source.find(piece, start + 1)
    gaps = [f"not in the source text: {p[:80]}" for p in missing]
    stretch: list[str] = []
    for ch, done in zip(source + " ", covered + [True]):
        if not done:
            stretch.append(ch)
        elif stretch:
            words = [w for w in "".join(stretch).split() if not _MARKER.match(w) and re.search(r"\w\w", w)]
            if words:
                gaps.append("not accounted for: " + " ".join(words)[:120])
            stretch = []
    return gaps
