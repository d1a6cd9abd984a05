"""The approval workflow: requests are engine decisions with hold findings; approvers come from the pack and the
directory (department heads and supervisors of the requester's department; all_of needs every role; nobody
approves their own request); partial approvals, denial, expiry, reminders, exemptions the engine honours, and
an audit entry for every step."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, update

from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import WebEvent
from civicaup.channels.web.url import normalise_url
from civicaup.governance import approvals, asks
from civicaup.governance.errors import ConflictError, ForbiddenError
from civicaup.governance.people import actor_of, person
from civicaup.policy.registry import get_pack
from civicaup.stores import audit
from civicaup.stores.governance_tables import approval_requests

NOW = datetime.now(timezone.utc)


def ask(store: Engine, policy: str, email: str, build, *args, reason: str = "", until=None):  # type: ignore[no-untyped-def]
    pack = get_pack(policy)
    who = person(store, policy, email)
    return approvals.submit(store, pack, build(pack, actor_of(who), NOW, *args), who, reason=reason,
                            valid_until=until)


def test_software_request_needs_every_held_finding_and_records_who_when_which_clause(store: Engine) -> None:
    out = ask(store, "kirkwood-mo", "pat.jones@kirkwoodmo.org", asks.software, "Spotify")
    assert out.decision.action == "hold" and out.request is not None
    rid = out.request.id
    assert [(s["rule"], s["clause"], s["roles"]) for s in out.request.approvers] == [
        ("software-no-downloads", "b", ["it"]), ("software-streaming-audio", "b", ["city-administrator"])]
    pack = get_pack("kirkwood-mo")
    with pytest.raises(ForbiddenError, match="may not approve"):  # a department head is not IT
        approvals.approve(store, pack, rid, "dana.reed@kirkwoodmo.org")
    first = approvals.approve(store, pack, rid, "lee.chan@kirkwoodmo.org", note="business need confirmed")
    assert first.request.status == "pending" and "still pending" in first.message
    assert first.request.missing() == ["software-streaming-audio (clause b) needs city-administrator"]
    with pytest.raises(ConflictError, match="already approved"):
        approvals.approve(store, pack, rid, "lee.chan@kirkwoodmo.org")
    done = approvals.approve(store, pack, rid, "sam.ortiz@kirkwoodmo.org")
    assert done.request.status == "approved"
    votes = [(v.approver, v.role, v.rule, v.clause, v.verdict) for v in done.request.votes]
    assert votes == [("lee.chan@kirkwoodmo.org", "it", "software-no-downloads", "b", "approve"),
                     ("sam.ortiz@kirkwoodmo.org", "city-administrator", "software-streaming-audio", "b", "approve")]
    assert all(v.at is not None for v in done.request.votes)
    assert [e["action"] for e in approvals.history(store, approvals.get(store, rid))] == [
        "approval-request", "approval-approve", "approval-approve", "approval-grant"]
    assert approvals.granted(store, "kirkwood-mo", "software", "spotify", "pat.jones@kirkwoodmo.org") is not None
    assert audit.verify(store)[1] is None


def test_requester_cannot_approve_own_request(store: Engine) -> None:
    out = ask(store, "kirkwood-mo", "lee.chan@kirkwoodmo.org", asks.software, "Notepad++")
    assert out.request is not None
    with pytest.raises(ForbiddenError, match="may not approve"):
        approvals.approve(store, get_pack("kirkwood-mo"), out.request.id, "lee.chan@kirkwoodmo.org")


def test_all_of_needs_both_and_supervisor_must_be_of_the_requesters_department(store: Engine) -> None:
    pack = get_pack("ky-36-082")
    rid = ask(store, "ky-36-082", "jesse.nolan@kycity.gov", asks.software, "Notepad++").request.id
    approvals.approve(store, pack, rid, "linda.carver@kycity.gov")  # the Mayor: partial
    req = approvals.get(store, rid)
    assert req.status == "pending"
    assert "software-load-approval (clause (C)) needs police-chief" in req.missing()
    with pytest.raises(ForbiddenError):  # a Police sergeant supervises Police, not Public Works
        approvals.approve(store, pack, rid, "kara.lind@kycity.gov")
    approvals.approve(store, pack, rid, "ray.dobbs@kycity.gov")  # the Police Chief
    assert approvals.get(store, rid).status == "pending"
    out = approvals.approve(store, pack, rid, "owen.price@kycity.gov")  # Public Works' street supervisor
    assert out.request.status == "approved"


def test_a_block_makes_no_request_and_says_which_clause(store: Engine) -> None:
    out = ask(store, "kirkwood-mo", "pat.jones@kirkwoodmo.org", asks.software, "Skype")
    assert out.request is None and out.decision.action == "block"
    assert "software-instant-messaging (clause b)" in out.message
    assert [e.action for e in audit.entries(store)][-1] == "request-block"


def test_one_denial_ends_the_request(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    rid = ask(store, "kirkwood-mo", "pat.jones@kirkwoodmo.org", asks.hardware, "SanDisk USB flash drive").request.id
    out = approvals.deny(store, pack, rid, "lee.chan@kirkwoodmo.org", note="use the shared drive")
    assert out.request.status == "denied" and "hardware-personal-device (clause b)" in out.message
    with pytest.raises(ConflictError, match="denied"):
        approvals.approve(store, pack, rid, "lee.chan@kirkwoodmo.org")


def test_pending_requests_expire_and_overdue_ones_are_listed_with_who_can_act(store: Engine) -> None:
    pack = get_pack("ky-36-082")
    rid = ask(store, "ky-36-082", "jesse.nolan@kycity.gov", asks.software, "Notepad++").request.id
    assert approvals.overdue(store, pack) == []
    later = approvals.overdue(store, pack, at=datetime.now(timezone.utc) + timedelta(days=4, minutes=1))
    [o] = later
    assert o.ref == str(rid) and o.waiting_days == 4
    assert o.approvers == ["linda.carver@kycity.gov", "marcus.webb@kycity.gov", "owen.price@kycity.gov",
                           "ray.dobbs@kycity.gov"]
    with store.begin() as conn:
        conn.execute(update(approval_requests).where(approval_requests.c.id == rid)
                     .values(expires_at=NOW - timedelta(seconds=1)))
    assert approvals.expire_overdue(store, "ky-36-082") == [rid]
    assert approvals.get(store, rid).status == "expired"
    with pytest.raises(ConflictError, match="expired"):
        approvals.approve(store, pack, rid, "linda.carver@kycity.gov")
    assert "approval-expire" in [e["action"] for e in approvals.history(store, approvals.get(store, rid))]


def test_exemption_is_time_bounded_needs_department_head_and_administrator_and_downgrades_in_the_engine(
        store: Engine) -> None:
    pack = get_pack("ste-genevieve-mo")
    end = NOW + timedelta(days=30)
    out = ask(store, "ste-genevieve-mo", "amy.rhodes@stegenevieve.org", asks.exemption, "web-purchases-sales", end,
              until=end)
    rid = out.request.id
    assert out.request.approvers[0]["clause"] == "E"  # Ste. Genevieve E: department head and City Administrator
    assert out.request.approvers[0]["needed"] == "all"
    with pytest.raises(ForbiddenError):  # Public Works' director is not Amy's department head (Finance)
        approvals.approve(store, pack, rid, "renee.bauman@stegenevieve.org")
    approvals.approve(store, pack, rid, "joan.vogt@stegenevieve.org")
    assert approvals.granted_exemptions(store, pack.id, "amy.rhodes@stegenevieve.org", {"employee"}) == frozenset()
    approvals.approve(store, pack, rid, "ellen.morrow@stegenevieve.org")
    grants = approvals.granted_exemptions(store, pack.id, "amy.rhodes@stegenevieve.org", {"employee"})
    assert grants == {"web-purchases-sales"}
    amy = actor_of(person(store, pack.id, "amy.rhodes@stegenevieve.org"))
    ev = WebEvent(actor=amy, at=NOW, url=normalise_url("https://www.amazon.com/cart"), granted_exemptions=grants)
    d = evaluate(ev, pack)
    assert d.action == "log" and d.findings[0].exempted_by == "grant:web-purchases-sales"
    assert approvals.granted_exemptions(store, pack.id, "amy.rhodes@stegenevieve.org", {"employee"},
                                        at=end + timedelta(seconds=1)) == frozenset()
    assert approvals.granted_exemptions(store, pack.id, "carl.okafor@stegenevieve.org", {"employee"}) == frozenset()


def test_role_exemption_applies_to_everyone_with_the_role(store: Engine) -> None:
    pack = get_pack("west-des-moines-ia")
    end = NOW + timedelta(days=7)
    rid = ask(store, pack.id, "taylor.nguyen@wdm.iowa.gov", lambda p, a, t: asks.exemption(
        p, a, t, "mail-large-files", end, "law-enforcement"), until=end).request.id
    assert approvals.get(store, rid).approvers[0]["roles"] == ["it"]  # WDM Software Usage ¶15: the IT Director
    approvals.approve(store, pack, rid, "jordan.miller@wdm.iowa.gov")
    assert approvals.granted_exemptions(store, pack.id, "drew.peterson@wdm.iowa.gov",
                                        {"employee", "law-enforcement"}) == {"mail-large-files"}


def test_access_request_needs_the_city_administrator_and_every_use_is_audited(store: Engine) -> None:
    pack = get_pack("ste-genevieve-mo")
    out = ask(store, pack.id, "renee.bauman@stegenevieve.org",
              lambda p, a, t: asks.access(p, a, t, "read-mail", "carl.okafor@stegenevieve.org", "complaint"),
              reason="complaint")
    rid = out.request.id
    assert out.request.approvers[0]["rule"] == "access-monitor-mail" and out.request.approvers[0]["clause"] == "C.3"
    with pytest.raises(ForbiddenError):
        approvals.use_access(store, pack, rid, "renee.bauman@stegenevieve.org")  # not granted yet
    approvals.approve(store, pack, rid, "ellen.morrow@stegenevieve.org")
    req = approvals.get(store, rid)
    assert req.valid_until is not None  # the city's access term applies
    approvals.use_access(store, pack, rid, "renee.bauman@stegenevieve.org", what="inbox, March")
    with pytest.raises(ForbiddenError):
        approvals.use_access(store, pack, rid, "joan.vogt@stegenevieve.org")
    uses = [e for e in approvals.history(store, approvals.get(store, rid)) if e["action"] == "access-use"]
    assert uses and uses[0]["detail"]["of"] == "carl.okafor@stegenevieve.org"


def test_kentucky_forbids_using_a_coworkers_password(store: Engine) -> None:
    out = ask(store, "ky-36-082", "jesse.nolan@kycity.gov",
              lambda p, a, t: asks.access(p, a, t, "use-password", "sam.ruiz@kycity.gov", "cover a shift"))
    assert out.request is None and "access-coworker-password (clause (D))" in out.message


def test_purchase_and_social_authorisation(store: Engine) -> None:
    out = ask(store, "ste-genevieve-mo", "carl.okafor@stegenevieve.org", asks.purchase, "https://www.amazon.com/cart")
    assert out.request.approvers[0]["rule"] == "web-purchases-sales"
    assert out.request.approvers[0]["roles"] == ["city-administrator"]
    soc = ask(store, "west-des-moines-ia", "taylor.nguyen@wdm.iowa.gov", asks.social, "Public Works Facebook page")
    assert soc.request.approvers[0]["clause"] == "Personal Use of Social Media ¶7"
    out2 = approvals.approve(store, get_pack("west-des-moines-ia"), soc.request.id, "morgan.ellis@wdm.iowa.gov")
    assert out2.request.status == "approved"
    from civicaup.errors import InputError
    with pytest.raises(InputError, match="names no authorisation"):
        ask(store, "kirkwood-mo", "pat.jones@kirkwoodmo.org", asks.social, "facebook")


def test_visibility(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    rid = ask(store, "kirkwood-mo", "pat.jones@kirkwoodmo.org", asks.software, "Spotify").request.id
    req = approvals.get(store, rid)
    see = {e: approvals.may_see(req, person(store, pack.id, e)) for e in (
        "pat.jones@kirkwoodmo.org", "lee.chan@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", "kim.nguyen@kirkwoodmo.org",
        "alex.brown@kirkwoodmo.org")}
    assert see == {"pat.jones@kirkwoodmo.org": True, "lee.chan@kirkwoodmo.org": True,
                   "dana.reed@kirkwoodmo.org": True,  # Pat's department head
                   "kim.nguyen@kirkwoodmo.org": False, "alex.brown@kirkwoodmo.org": False}
    assert approvals.get(store, rid, policy="kirkwood-mo").id == rid
    from civicaup.governance.errors import NotFoundError
    with pytest.raises(NotFoundError):
        approvals.get(store, rid, policy="ky-36-082")
