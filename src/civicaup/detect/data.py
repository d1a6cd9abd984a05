"""Loading of the lexicon files in ``detect/data``.

File format (one entry a line, UTF-8):

* ``#`` starts a comment line; blank lines are ignored.
* ``phrase<TAB>tag tag ...`` - the phrase, then optional space-separated tags.
  Columns may also be separated by two or more spaces.
* ``{a,b,}`` in a phrase expands to every alternative (an empty alternative is
  allowed), so ``fuck{,s,ing}`` is ``fuck``, ``fucks`` and ``fucking``.
* A tag ``~0.6`` sets the confidence of the entry; a tag ``@name`` marks a word
  that is also a common given name or surname (``Dick``): Title-case uses of it
  are ignored; ``@acronym`` marks a word that is also an acronym (``WOP``):
  ALL-CAPS uses of it are ignored.
* A line starting with ``!`` is an exception: a match of any entry that overlaps
  an exception phrase is dropped (``!cum laude``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_BRACES = re.compile(r"\{([^{}]*)\}")
_COLUMNS = re.compile(r"\t+| {2,}")


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One expanded line of a lexicon file, before normalisation."""

    phrase: str
    tags: tuple[str, ...]
    confidence: float | None
    name_like: bool
    exception: bool
    acronym_like: bool = False


def expand(pattern: str) -> list[str]:
    """Expand ``{a,b}`` alternatives; returns the phrases in file order."""
    parts = _BRACES.split(pattern)
    # parts alternate: literal, alternatives, literal, ...
    choices: list[list[str]] = []
    for i, part in enumerate(parts):
        choices.append(part.split(",") if i % 2 else [part])
    out: dict[str, None] = {}
    for combo in itertools.product(*choices):
        phrase = " ".join("".join(combo).split())
        if phrase:
            out.setdefault(phrase, None)
    return list(out)


def parse_lines(lines: list[str]) -> list[RawEntry]:
    """Parse the lines of a lexicon file into expanded entries."""
    entries: list[RawEntry] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        cols = _COLUMNS.split(line)
        tags: list[str] = []
        confidence: float | None = None
        name_like = False
        acronym_like = False
        for col in cols[1:]:
            for tag in col.split():
                if tag.startswith("~"):
                    confidence = float(tag[1:])
                elif tag == "@name":
                    name_like = True
                elif tag == "@acronym":
                    acronym_like = True
                else:
                    tags.append(tag)
        for phrase in expand(cols[0]):
            entries.append(RawEntry(phrase, tuple(tags), confidence, name_like, exception, acronym_like))
    return entries


@cache
def load(name: str) -> tuple[RawEntry, ...]:
    """Load ``detect/data/<name>.txt`` (cached)."""
    path = resources.files("civicaup.detect").joinpath("data", f"{name}.txt")
    return tuple(parse_lines(path.read_text(encoding="utf-8").splitlines()))


#: Lexicons whose single words may be hidden by masks (``f*ck``), in priority order.
BAD_WORD_FILES: tuple[str, ...] = ("profanity", "slurs", "sexual")


def lexicon_names() -> tuple[str, ...]:
    """The names of every lexicon file in ``detect/data``."""
    folder = resources.files("civicaup.detect").joinpath("data")
    return tuple(sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt")))


@cache
def bad_words() -> tuple[str, ...]:
    """Single-word entries of the offensive lexicons, in priority order."""
    seen: dict[str, None] = {}
    for name in BAD_WORD_FILES:
        for entry in load(name):
            word = entry.phrase.casefold()
            if not entry.exception and word.isalpha():
                seen.setdefault(word, None)
    return tuple(seen)


@cache
def known_words() -> frozenset[str]:
    """Every word of every lexicon: the only words a token repair may produce."""
    words: set[str] = set(bad_words())
    for name in lexicon_names():
        for entry in load(name):
            words.update(w for w in re.split(r"[^a-z]+", entry.phrase.casefold()) if w)
    return frozenset(words)
