"""Print a `clauses:` skeleton for a pack from a plain-text policy: one entry per sentence, status to fill in.

    python scripts/pack_skeleton.py SOURCE.txt > clauses.yaml

Sentences are split at '.', '!' or '?' followed by white space and a capital letter; headings that are a
single clause marker ("a.", "(C)", "1.") start a new clause. Review the result by hand: the split is a start,
and `civicaup policy coverage` checks the finished pack against the source text.
"""
from __future__ import annotations

import re
import sys

import yaml

_MARK = re.compile(r"^\s*(\(?[A-Za-z0-9]{1,4}\)|[A-Za-z0-9]{1,4}\.)\s*$")
_INLINE_MARK = re.compile(r"^\s*(\([A-Z]\)|\([0-9]{1,2}\)|[A-Z]\.|[0-9]{1,2}\.)\s+(.*)$")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"\u201c])")


def skeleton(text: str) -> list[dict[str, object]]:
    clauses: list[dict[str, object]] = []
    ref = "preamble"
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _MARK.match(line)
        if m:
            ref = m.group(1).strip(".")
            continue
        m = _INLINE_MARK.match(line)
        if m:
            ref, line = m.group(1).strip("."), m.group(2)
        for sentence in _SPLIT.split(line.strip()):
            if not clauses or clauses[-1]["ref"] != ref:
                clauses.append({"ref": ref, "sentences": []})
            clauses[-1]["sentences"].append({"text": sentence, "status": "informs", "why": "to write: why software only informs, carries it out as workflow, or cannot act"})  # type: ignore[union-attr]
    return clauses


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(yaml.safe_dump({"clauses": skeleton(fh.read())}, sort_keys=False, allow_unicode=True, width=100))
