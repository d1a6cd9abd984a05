"""Shared fixtures for the social-media moderation tests: a fresh store with West Des Moines' directory and
the Parks and Recreation Facebook page registered as an official account."""
from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from civicaup.policy.compile import CompiledPack
from civicaup.policy.registry import get_pack
from civicaup.social.accounts import save_account
from civicaup.social.intake import Intake
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people

WDM_ID = "west-des-moines-ia"
PARKS = "facebook:wdmparks"
POLICE = "x:wdmpolice"
DAVIDSON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "davidson" / "labeled_data.csv"
_RT = re.compile(r'^(?:[!\s"]*RT @\w+:?\s*)+')


@pytest.fixture
def wdm() -> CompiledPack:
    return get_pack(WDM_ID)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: a store with the WDM directory, the Parks Facebook page and the Police X account."""
    folder = tmp_path_factory.mktemp("social-template")
    pack = get_pack(WDM_ID)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIVICAUP_HOME", str(folder))
        engine = open_store(f"sqlite:///{folder / 'store.db'}")
        import_people(engine, pack, pack.folder / "directory.csv")
        save_account(engine, pack, platform="facebook", handle="WDMParks", department="Parks and Recreation",
                     director="morgan.ellis@wdm.iowa.gov", city_email="parks@wdm.iowa.gov",
                     moderators=["jamie.olson@wdm.iowa.gov"])
        save_account(engine, pack, platform="x", handle="@WDMPolice", department="Police",
                     director="casey.larson@wdm.iowa.gov", city_email="police@wdm.iowa.gov",
                     moderators=["drew.peterson@wdm.iowa.gov"])
        engine.dispose()  # the WAL is folded into the file, so a copy is the whole store
    return folder


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _template: Path) -> Engine:
    """A fresh copy of the template store, in this test's own data directory."""
    for f in _template.iterdir():
        if f.is_file():
            shutil.copy2(f, tmp_path / f.name)
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def comment(item_id: str, text: str, *, author: str = "facebook:100001", account: str = PARKS,
            kind: str = "comment", at: str = "2026-03-03T10:00") -> dict[str, Any]:
    return {"id": item_id, "account": account, "author": author, "kind": kind, "text": text, "at": at}


def ingest(engine: Engine, pack: CompiledPack, *items: dict[str, Any], scope: str = "account") -> list[dict[str, Any]]:
    intake = Intake(engine, pack, scope=scope)
    return [intake.handle(n, i) for n, i in enumerate(items, 1)]


def davidson(*indices: int) -> dict[int, tuple[str, str]]:
    """Rows of Davidson et al. (ICWSM 2017, MIT licence) by index: (class, text as a comment would read it:
    HTML entities decoded, the retweet prefix dropped). Class 0 hate speech, 1 offensive, 2 neither.
    Skips the test when the data set is not beside the project."""
    if not DAVIDSON.exists():
        pytest.skip(f"{DAVIDSON} not present")
    wanted = set(indices)
    out: dict[int, tuple[str, str]] = {}
    with DAVIDSON.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            i = int(row[""])
            if i in wanted:
                out[i] = (row["class"], _RT.sub("", html.unescape(row["tweet"])).strip())
                if len(out) == len(wanted):
                    break
    return out
