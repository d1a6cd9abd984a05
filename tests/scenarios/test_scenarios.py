"""Every scenario of every pack gives the expected decision; every rule is triggered and has a near miss."""
from __future__ import annotations

import pytest

from civicaup.policy.registry import get_pack, pack_ids
from tests.scenarios.runner import Scenario, check, load_all, run

SCENARIOS = load_all()


@pytest.fixture(autouse=True)
def _empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))  # the starter category index, no city state


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario_gives_expected_decision(scenario: Scenario) -> None:
    errors = check(scenario, run(scenario))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("pack_id", pack_ids())
def test_every_rule_is_triggered_by_a_scenario_and_has_a_near_miss(pack_id: str) -> None:
    mine = [s for s in SCENARIOS if s.pack == pack_id]
    triggered = {f["rule"] for s in mine for f in s.spec.get("expect", {}).get("findings", []) if "rule" in f}
    missed = {r for s in mine for r in s.spec.get("expect", {}).get("absent", [])}
    rules = {r.id for r in get_pack(pack_id).pack.rules}
    assert not rules - triggered, f"rules no scenario triggers: {sorted(rules - triggered)}"
    assert not rules - missed, f"rules with no near-miss scenario: {sorted(rules - missed)}"
