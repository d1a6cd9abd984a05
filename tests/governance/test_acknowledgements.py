"""Acknowledgements of the current pack version (on hire and when the policy changes) and training (Kirkwood j.)."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.governance import acknowledgements as acks
from civicaup.governance.errors import NotFoundError
from civicaup.policy.registry import get_pack


def test_everyone_must_acknowledge_the_current_version_again_when_it_changes(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    assert acks.missing(store, pack)["missing"] == 8
    acks.record(store, pack, "pat.jones@kirkwoodmo.org", by="morgan.lee@kirkwoodmo.org")
    assert "already" in acks.record(store, pack, "pat.jones@kirkwoodmo.org")
    out = acks.missing(store, pack)
    assert out["missing"] == 7 and out["version"] == pack.pack.version
    assert "pat.jones@kirkwoodmo.org" not in [p["email"] for ps in out["departments"].values() for p in ps]
    assert [p["email"] for p in out["departments"]["Public Works"]] == ["dana.reed@kirkwoodmo.org"]
    with pytest.raises(InputError, match="not the current policy"):
        acks.record(store, pack, "dana.reed@kirkwoodmo.org", version="1999")
    changed = dataclasses.replace(pack, pack=pack.pack.model_copy(update={"version": "2026-01-01"}))
    again = acks.missing(store, changed)
    assert again["missing"] == 8
    pat = [p for p in again["departments"]["Public Works"] if p["email"] == "pat.jones@kirkwoodmo.org"]
    assert pat[0]["last_version"] == pack.pack.version


def test_groupwise_course_assigned_completed_and_missing_by_department(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    report = acks.training_missing(store, pack)
    [course] = report["courses"]
    assert course["course"] == "groupwise-intro" and course["clause"] == "j" and course["missing"] == 8
    assert acks.assign(store, pack, "groupwise-intro", [], by="lee.chan@kirkwoodmo.org") == 8
    acks.complete(store, pack, "groupwise-intro", "pat.jones@kirkwoodmo.org")
    after = acks.training_missing(store, pack, department="Public Works")["courses"][0]
    assert [p["email"] for p in after["departments"]["Public Works"]] == ["dana.reed@kirkwoodmo.org"]
    with pytest.raises(NotFoundError, match="no course"):
        acks.assign(store, pack, "basket-weaving", [])
    assert acks.training_missing(store, get_pack("ky-36-082"))["courses"] == []
