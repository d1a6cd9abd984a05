"""Reports and cases: routed by the pack (Kirkwood j.: the supervisor; West Des Moines: department director and IT
Director, informing the City Manager); HR-only visibility beyond those routed to; flags become cases; every view
is audited."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.governance import cases
from civicaup.governance.errors import ConflictError, ForbiddenError
from civicaup.governance.people import person
from civicaup.policy.registry import get_pack
from civicaup.stores import audit

from .helpers import hold_mail


def test_kirkwood_report_goes_to_the_supervisor_else_department_head(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    c = cases.report(store, pack, "pat.jones@kirkwoodmo.org", "A coworker streams radio all day",
                     about="kim.nguyen@kirkwoodmo.org", evidence=["audit:1", "https://intranet.example/ticket/9"])
    # Public Works has no Supervisor in the directory: its Director gets it
    assert c.routed_to == [{"email": "dana.reed@kirkwoodmo.org", "role": "department-head", "as": "to"}]
    assert c.clause == "j"
    assert cases.may_see(c, person(store, pack.id, "morgan.lee@kirkwoodmo.org"))  # HR (Personnel Director)
    for other in ("pat.jones@kirkwoodmo.org", "kim.nguyen@kirkwoodmo.org", "lee.chan@kirkwoodmo.org"):
        with pytest.raises(ForbiddenError):
            cases.show(store, pack, c.id, other)
    seen = cases.show(store, pack, c.id, "dana.reed@kirkwoodmo.org")
    assert seen.summary.startswith("A coworker")
    assert [e.action for e in audit.entries(store) if e.subject == f"case {c.id}"] == ["case-open", "case-view"]
    with pytest.raises(InputError, match="not a link"):
        cases.report(store, pack, "pat.jones@kirkwoodmo.org", "x", evidence=["file:///etc/passwd"])


def test_west_des_moines_report_goes_to_director_and_it_and_informs_the_city_manager(store: Engine) -> None:
    pack = get_pack("west-des-moines-ia")
    c = cases.report(store, pack, "taylor.nguyen@wdm.iowa.gov", "Someone shared a password")
    assert {(r["email"], r["role"], r["as"]) for r in c.routed_to} == {
        ("morgan.ellis@wdm.iowa.gov", "department-head", "to"), ("jordan.miller@wdm.iowa.gov", "it", "to"),
        ("casey.larson@wdm.iowa.gov", "city-administrator", "inform")}
    assert c.clause == "Software Usage ¶5"
    closed = cases.close(store, pack, c.id, "casey.larson@wdm.iowa.gov", decision="Password reset; reminder sent",
                         outcome="counselling")
    assert closed.status == "closed" and closed.outcome == "counselling"
    with pytest.raises(ConflictError):
        cases.close(store, pack, c.id, "casey.larson@wdm.iowa.gov", decision="again", outcome="none")


def test_it_may_see_but_not_close_and_outcome_must_be_known(store: Engine) -> None:
    pack = get_pack("west-des-moines-ia")
    c = cases.report(store, pack, "taylor.nguyen@wdm.iowa.gov", "Misrouted messages")
    with pytest.raises(ForbiddenError):
        cases.close(store, pack, c.id, "jordan.miller@wdm.iowa.gov", decision="ok", outcome="none")
    with pytest.raises(InputError, match="outcome"):
        cases.close(store, pack, c.id, "morgan.ellis@wdm.iowa.gov", decision="ok", outcome="flogging")


def test_flagged_mail_becomes_one_case(store: Engine) -> None:
    pack = get_pack("rosemount-mn")
    raw = (Path(__file__).parents[1] / "scenarios" / "rosemount-mn" / "official-policy-to-newspaper.eml").read_bytes()
    from civicaup.channels.mail.gateway import Envelope, MailGateway
    from civicaup.channels.mail.spool import Spool
    import asyncio
    gw = MailGateway(pack.id, store=store)
    with Spool() as spool:
        spool.write(raw)
        verdict = asyncio.run(gw.handle(Envelope(mail_from="alex.berg@rosemountmn.gov",
                                                 rcpt_to=["press@startribune.com"]), spool))
    gw.close()
    assert verdict.quarantine_id is not None, verdict
    made = cases.sweep(store, pack)
    assert len(made) == 1 and made[0].findings and made[0].findings[0]["action"] == "flag"
    assert made[0].evidence == [f"quarantine:{verdict.quarantine_id}"]
    assert cases.sweep(store, pack) == []


def test_held_broadcast_is_not_a_case(store: Engine) -> None:
    from .helpers import KIRKWOOD_BROADCAST
    hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    assert cases.sweep(store, get_pack("kirkwood-mo")) == []
