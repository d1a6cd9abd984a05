"""The directory: CSV import maps the city's titles to roles; leavers lose access at once."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store
from civicaup.stores.directory import find_person, import_people, list_people

KY = get_pack("ky-36-082")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _csv(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "people.csv"
    p.write_text(body, encoding="utf-8")
    return p


def test_titles_map_to_roles_and_extra_roles_are_added(store: Engine, tmp_path: Path) -> None:
    f = _csv(tmp_path, "email,name,department,title,roles\nA.Mayor@kycity.gov,Ann Mayor,Administration,Mayor,\n"
                       "pc@kycity.gov,Pat Chief,Police,Police Chief,hr\n")
    assert import_people(store, KY, f).imported == 2
    mayor = find_person(store, "ky-36-082", "a.mayor@kycity.gov")
    assert mayor and "mayor" in mayor.roles and "employee" in mayor.roles
    assert [p.email for p in list_people(store, "ky-36-082", role="police-chief")] == ["pc@kycity.gov"]
    assert "hr" in (find_person(store, "ky-36-082", "pc@kycity.gov") or mayor).roles


def test_reimport_updates_and_leavers_lose_access(store: Engine, tmp_path: Path) -> None:
    import_people(store, KY, _csv(tmp_path, "email,name,department,title\na@kycity.gov,A,X,Clerk\nb@kycity.gov,B,X,Clerk\n"))
    report = import_people(store, KY, _csv(tmp_path, "email,name,department,title\na@kycity.gov,A,Y,City Clerk\n"),
                           leavers=True)
    assert report.deactivated == 1
    assert [p.email for p in list_people(store, "ky-36-082")] == ["a@kycity.gov"]
    assert (find_person(store, "ky-36-082", "b@kycity.gov") or None).active is False  # type: ignore[union-attr]


@pytest.mark.parametrize("body, message", [
    ("email,name\nx@y.gov,X\n", "missing column"),
    ("email,name,department,title\nnot-an-address,X,Y,Z\n", "not an e-mail address"),
    ("email,name,department,title,roles\nx@y.gov,X,Y,Z,wizard\n", "unknown role"),
])
def test_bad_rows_give_one_line_errors(store: Engine, tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        import_people(store, KY, _csv(tmp_path, body))
