"""The engine: severity order, exemptions downgrade and keep, windows in the city's zone, approvals by role."""
from __future__ import annotations

from datetime import datetime, timezone

from civicaup.engine.decision import Decision, Finding
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import AccessEvent, Actor, HardwareEvent, SoftwareEvent
from civicaup.engine.windows import is_work_time
from civicaup.policy.registry import get_pack

KIRKWOOD = get_pack("kirkwood-mo")
KY = get_pack("ky-36-082")
TUESDAY_10 = datetime(2026, 3, 3, 10, 0, tzinfo=KIRKWOOD.tz)


def _f(action: str) -> Finding:
    return Finding(rule=f"r-{action}", clause="x", category="c", action=action, evidence="e")


def test_most_severe_finding_wins() -> None:
    d = Decision.of([_f("log"), _f("block"), _f("hold"), _f("flag")], policy="p", channel="mail")
    assert d.action == "block" and [f.action for f in d.findings] == ["block", "hold", "flag", "log"]


def test_no_findings_means_allow() -> None:
    assert Decision.of([], policy="p", channel="web").action == "allow"


def test_exemption_downgrades_to_log_and_keeps_finding() -> None:
    f = _f("block").downgraded("law-enforcement")
    assert (f.action, f.exempted_by, f.rule) == ("log", "law-enforcement", "r-block")


def test_work_time_is_judged_in_the_city_time_zone() -> None:
    hours = KIRKWOOD.pack.city.hours
    assert is_work_time(datetime(2026, 3, 3, 16, 30, tzinfo=timezone.utc), hours, KIRKWOOD.tz)  # 10:30 CST
    assert not is_work_time(datetime(2026, 3, 3, 18, 30, tzinfo=timezone.utc), hours, KIRKWOOD.tz)  # 12:30 lunch
    assert not is_work_time(datetime(2026, 3, 3, 23, 30, tzinfo=timezone.utc), hours, KIRKWOOD.tz)  # 17:30


def test_kentucky_software_needs_both_mayor_and_police_chief() -> None:
    ev = SoftwareEvent(actor=Actor(), at=TUESDAY_10, name="Adobe Acrobat Reader DC")
    d = evaluate(ev, KY)
    holds = [f for f in d.findings if f.action == "hold" and f.approvers_needed == "all"]
    assert d.action == "hold" and any(set(f.approvers) >= {"mayor", "police-chief"} for f in holds)


def test_one_of_two_required_approvals_is_not_enough() -> None:
    ev = HardwareEvent(actor=Actor(), at=TUESDAY_10, name="Kingston USB flash drive",
                       approved_roles=frozenset({"mayor"}))
    assert evaluate(ev, KY).action == "hold"


def test_both_required_approvals_release_the_hold_and_keep_the_finding() -> None:
    ev = HardwareEvent(actor=Actor(), at=TUESDAY_10, name="Kingston USB flash drive",
                       approved_roles=frozenset({"mayor", "police-chief"}))
    d = evaluate(ev, KY)
    assert d.action == "log" and all(f.exempted_by and f.exempted_by.startswith("approved:") for f in d.findings)


def test_personal_grant_downgrades_only_its_rule() -> None:
    ev = SoftwareEvent(actor=Actor(), at=TUESDAY_10, name="Spotify",
                       granted_exemptions=frozenset({"software-streaming-audio"}))
    d = evaluate(ev, KIRKWOOD)
    by_rule = {f.rule: f for f in d.findings}
    assert by_rule["software-streaming-audio"].action == "log"
    assert by_rule["software-no-downloads"].action == "hold"


def test_access_by_employee_to_another_mailbox_is_blocked() -> None:
    ev = AccessEvent(actor=Actor(email="pat.jones@kirkwoodmo.org"), at=TUESDAY_10, kind="read-mail",
                     subject="lee.chan@kirkwoodmo.org")
    assert evaluate(ev, KIRKWOOD).action == "block"
