"""The software and device catalogue: names and the categories they fall in, kept as YAML data.

A city extends it with $CIVICAUP_HOME/catalogue/<kind>.yaml, merged over the shipped file.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from civicaup.config import home

_SHIPPED = Path(__file__).parent / "catalogue"


@lru_cache(maxsize=4)
def _patterns(kind: str) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    table: dict[str, list[str]] = {}
    for path in (_SHIPPED / f"{kind}.yaml", home() / "catalogue" / f"{kind}.yaml"):
        if path.is_file():
            for category, names in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
                table.setdefault(category, []).extend(names or [])
    out = []
    for category, names in table.items():
        for name in names:
            words = r"[\s_.-]*".join(re.escape(w) for w in re.split(r"[\s_.-]+", name.casefold()) if w)
            out.append((category, name, re.compile(rf"(?<![a-z0-9]){words}(?![a-z0-9])")))
    return tuple(out)


def classify(kind: str, name: str) -> list[tuple[str, str]]:
    """(category, catalogue entry) for each category whose entries occur in the name as whole words."""
    folded = name.casefold()
    seen: dict[str, str] = {}
    for category, entry, pattern in _patterns(kind):
        if category not in seen and pattern.search(folded):
            seen[category] = entry
    return list(seen.items())
