"""Shared fixtures: a small UT1-shaped list folder, its index, a data directory with the Kirkwood directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from civicaup.channels.web.categories import CategoryIndex

KIRKWOOD_PEOPLE = Path(__file__).resolve().parents[2] / "src/civicaup/policy/packs/kirkwood-mo/directory.csv"
CIVICAUP = str(Path(sys.executable).with_name("civicaup"))

# Test names only (".example" is reserved); one IDN, one IP literal, URL-path entries.
LISTS = {
    "adult": {"domains": "badsite.example\nxn--bcher-xxx-q9a.example\n10.9.8.7\nwww.both.example\nboth.example\n",
              "urls": "news.example/adult-pictures/\n"},
    "gambling": {"domains": "casino.example\n"},
    "agressif": {"domains": "hate.example\n"},
    "shopping": {"domains": "shop.example\n"},
    "bank": {"domains": "bank.example\n"},
    "radio": {"domains": "radio.example\n"},
}


def make_lists(root: Path, lists: dict[str, dict[str, str]] | None = None) -> Path:
    for category, files in (lists or LISTS).items():
        (root / category).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / category / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """The index of the test lists, at tmp_path/categories.idx."""
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_lists(tmp_path / "ut1")], out=out)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$CIVICAUP_HOME with the test index at its default place and the Kirkwood demo directory imported."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("CIVICAUP_HOME", str(h))
    monkeypatch.delenv("CIVICAUP_FAKE_NOW", raising=False)
    CategoryIndex.build([make_lists(tmp_path / "ut1")], out=h / "categories.idx")
    r = subprocess.run([CIVICAUP, "directory", "import", str(KIRKWOOD_PEOPLE), "--policy", "kirkwood-mo"],
                       capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert r.returncode == 0, r.stderr
    return h
