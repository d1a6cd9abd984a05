"""The Davidson et al. labelled tweets: reading them and the one fixed train/test split.

Davidson, Warmsley, Macy and Weber, "Automated Hate Speech Detection and the Problem
of Offensive Language", ICWSM 2017 (github t-davidson/hate-speech-and-offensive-language,
MIT licence). 24,783 tweets; ``class`` 0 = hate speech, 1 = offensive language,
2 = neither. The file is read from ``../shared/data`` (never copied into the repository).

The split is decided once, by a hash of the row id, so that it is the same on every
machine and in every run, whatever the order of the file:

* **test** (held out, about 22 %): rows whose id is not a multiple of 4 (the rows
  the word lists were tuned on, id % 4 == 0, stay out of it) and whose hash bucket
  (0-99) is below 30. Only ``bench/detect.py`` and the measurement tests read it.
* **train**: every other row. ``training/train_offensive.py`` fits the classifier
  on it and tunes its thresholds on out-of-fold predictions (``fold`` 0-4), so
  nothing is ever tuned on the test part.

Only the standard library is used here: the package ships this module so that the
training script, the benchmark and the tests agree on the split.
"""

from __future__ import annotations

import csv
import hashlib
import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Where the shared data sets live, relative to the project root (``<root>/../shared/data``).
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
DAVIDSON = SHARED / "davidson" / "labeled_data.csv"
SEED = "civicaup-davidson-split-1"
TEST_BUCKETS = 30
FOLDS = 5

LABELS = ("hate", "offensive", "neither")


@dataclass(frozen=True, slots=True)
class Tweet:
    """One labelled row: ``label`` 0 hate, 1 offensive, 2 neither; ``text`` with HTML entities decoded."""

    id: int
    label: int
    text: str

    @property
    def offensive(self) -> bool:
        """Offensive or hateful (classes 0 and 1)."""
        return self.label in (0, 1)

    @property
    def hate(self) -> bool:
        return self.label == 0


def bucket(row_id: int) -> int:
    """The row's hash bucket, 0-99 (seeded, independent of the file order)."""
    digest = hashlib.sha256(f"{SEED}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def is_test(row_id: int) -> bool:
    """True for the held-out test rows."""
    return row_id % 4 != 0 and bucket(row_id) < TEST_BUCKETS


def fold(row_id: int) -> int:
    """The cross-validation fold (0 to FOLDS-1) of a training row."""
    return bucket(row_id) % FOLDS


def read(path: Path | None = None) -> Iterator[Tweet]:
    """Every row of the CSV file."""
    with (path or DAVIDSON).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            yield Tweet(int(row[""]), int(row["class"]), html.unescape(row["tweet"]))


def split(path: Path | None = None) -> tuple[list[Tweet], list[Tweet]]:
    """(train, test) rows."""
    train: list[Tweet] = []
    test: list[Tweet] = []
    for t in read(path):
        (test if is_test(t.id) else train).append(t)
    return train, test
