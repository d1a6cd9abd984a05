"""Quarantine and approvals: who may release (a department head of the *sender's* department; all_of needs every
role, a first approval is partial), byte-identical release to the next hop, rejection notices, the audit trail."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import Engine

from civicaup.channels.mail import quarantine
from civicaup.channels.mail.gateway import Envelope, MailGateway
from civicaup.channels.mail.spool import Spool
from civicaup.stores import audit

from .conftest import Sink

KIRKWOOD_BROADCAST = (b"Received: from client by mx.kirkwoodmo.org\r\nFrom: Pat Jones <pat.jones@kirkwoodmo.org>\r\n"
                      b"To: all-users@kirkwoodmo.org\r\nSubject: Annual picnic\r\nMessage-ID: <p1@kirkwoodmo.org>\r\n"
                      b"\r\nThe picnic is Saturday.\r\n.leading dot line\r\nno newline at the end")
WDM_BROADCAST = (b"From: Taylor Nguyen <taylor.nguyen@wdm.iowa.gov>\r\nTo: all-city@wdm.iowa.gov\r\n"
                 b"Subject: Wellness fair\r\n\r\nThe wellness fair is on Friday in the atrium.\r\n")


def hold(store: Engine, policy: str, raw: bytes, mail_from: str, rcpts: list[str], hop: str = "") -> int:
    gw = MailGateway(policy, store=store, next_hop=hop)
    with Spool(memory_limit=64) as spool:  # on disk, as a large message would be
        spool.write(raw)
        verdict = asyncio.run(gw.handle(Envelope(mail_from=mail_from, rcpt_to=rcpts, queue_id="Q1"), spool))
    gw.close()
    assert verdict.kind == "discard", verdict
    assert verdict.quarantine_id is not None
    return verdict.quarantine_id


def test_department_head_of_the_senders_department_releases_byte_identical(store: Engine,
                                                                             sink: tuple[Sink, int]) -> None:
    s, port = sink
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"],
               hop=f"127.0.0.1:{port}")
    held = quarantine.get(store, qid)
    assert held.sha256 == hashlib.sha256(KIRKWOOD_BROADCAST).hexdigest()
    assert [(a["rule"], a["roles"], a["needed"]) for a in held.approvers] == [("mail-all-users", ["department-head"],
                                                                               "any")]
    # the Chief of Police is a department head, but of Police: not Pat's department
    with pytest.raises(quarantine.NotPermitted):
        quarantine.release(store, qid, "alex.brown@kirkwoodmo.org")
    with pytest.raises(quarantine.NotPermitted):  # the MIS Director is no department head
        quarantine.release(store, qid, "lee.chan@kirkwoodmo.org")
    with pytest.raises(quarantine.NotPermitted):  # not in the directory
        quarantine.release(store, qid, "someone@example.org")
    assert s.messages == []
    out = quarantine.release(store, qid, "dana.reed@kirkwoodmo.org")
    assert out.delivered and quarantine.get(store, qid).status == "released"
    [(mail_from, rcpts, data)] = s.wait(1)
    assert mail_from == "pat.jones@kirkwoodmo.org" and rcpts == ["all-users@kirkwoodmo.org"]
    assert data == KIRKWOOD_BROADCAST + b"\r\n"  # SMTP ends the last line; nothing else changes
    entries = [e for e in audit.entries(store) if e.subject == f"quarantine {qid}"]
    assert [e.action for e in entries] == ["mail-hold", "mail-approve", "mail-release"]
    release = entries[-1].to_json()
    assert release["actor"] == "dana.reed@kirkwoodmo.org"
    assert release["detail"]["under"] == ["mail-all-users (clause d)"]
    assert audit.verify(store)[1] is None
    with pytest.raises(Exception, match="already released"):
        quarantine.release(store, qid, "dana.reed@kirkwoodmo.org")


def test_sender_may_not_approve_own_message(store: Engine) -> None:
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST.replace(b"Pat Jones <pat.jones", b"Dana Reed <dana.reed"),
               "dana.reed@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    with pytest.raises(quarantine.NotPermitted, match="sent message"):
        quarantine.release(store, qid, "dana.reed@kirkwoodmo.org")


def test_all_of_needs_every_role_first_approval_is_partial(store: Engine, sink: tuple[Sink, int]) -> None:
    s, port = sink
    qid = hold(store, "west-des-moines-ia", WDM_BROADCAST, "taylor.nguyen@wdm.iowa.gov", ["all-city@wdm.iowa.gov"])
    held = quarantine.get(store, qid)
    assert held.approvers[0]["needed"] == "all"
    assert set(held.approvers[0]["roles"]) == {"department-head", "communications"}
    out = quarantine.release(store, qid, "morgan.ellis@wdm.iowa.gov", next_hop=f"127.0.0.1:{port}")
    assert not out.delivered and "still held" in out.message and "communications" in out.message
    assert quarantine.get(store, qid).status == "held"
    with pytest.raises(Exception, match="already approved"):
        quarantine.release(store, qid, "morgan.ellis@wdm.iowa.gov", next_hop=f"127.0.0.1:{port}")
    assert s.wait(1, timeout=0.5) == []
    out = quarantine.release(store, qid, "riley.thompson@wdm.iowa.gov", next_hop=f"127.0.0.1:{port}")
    assert out.delivered
    [(_, _, data)] = s.wait(1)
    assert data == WDM_BROADCAST
    approvals = quarantine.get(store, qid).approvals
    assert {(a["approver"], a["role"]) for a in approvals} == {("morgan.ellis@wdm.iowa.gov", "department-head"),
                                                              ("riley.thompson@wdm.iowa.gov", "communications")}


def test_reject_notifies_the_sender_with_the_clause(store: Engine, sink: tuple[Sink, int]) -> None:
    s, port = sink
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"],
               hop=f"127.0.0.1:{port}")
    with pytest.raises(quarantine.NotPermitted):
        quarantine.reject(store, qid, "jo.smith@kirkwoodmo.org")
    out = quarantine.reject(store, qid, "dana.reed@kirkwoodmo.org")
    assert "notice sent to pat.jones@kirkwoodmo.org" in out.message
    [(mail_from, rcpts, data)] = s.wait(1)
    assert mail_from == "" and rcpts == ["pat.jones@kirkwoodmo.org"]
    assert b"Clause: d" in data and b"mail-all-users" in data and b"dana.reed@kirkwoodmo.org" in data
    assert quarantine.get(store, qid).status == "rejected"
    with pytest.raises(Exception, match="rejected"):
        quarantine.release(store, qid, "dana.reed@kirkwoodmo.org")


def test_next_hop_down_keeps_the_message_approved(store: Engine) -> None:
    from civicaup.channels.mail import delivery
    from .postfix_instance import free_port
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    with pytest.raises(delivery.DeliveryError):
        quarantine.release(store, qid, "dana.reed@kirkwoodmo.org", next_hop=f"127.0.0.1:{free_port()}")
    assert quarantine.get(store, qid).status == "approved"


def test_tampered_bytes_are_refused(store: Engine) -> None:
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    held = quarantine.get(store, qid)
    quarantine.blob_path(held.sha256).write_bytes(KIRKWOOD_BROADCAST.replace(b"Saturday", b"Sunday"))
    with pytest.raises(Exception, match="does not match its hash"):
        quarantine.release(store, qid, "dana.reed@kirkwoodmo.org", next_hop="127.0.0.1:1")


def test_held_messages_survive_a_restart(store: Engine) -> None:
    qid = hold(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"])
    from sqlalchemy import create_engine
    store.dispose()
    again = create_engine(store.url)  # a new process opens the store afresh
    assert [h.id for h in quarantine.list_held(again, "kirkwood-mo")] == [qid]
    assert quarantine.raw_bytes(quarantine.get(again, qid)) == KIRKWOOD_BROADCAST


def test_unknown_id(store: Engine) -> None:
    with pytest.raises(quarantine.NotFound):
        quarantine.release(store, 999, "dana.reed@kirkwoodmo.org")


def test_flagged_mail_is_delivered_and_queued_for_review(store: Engine, tmp_path: pytest.TempPathFactory) -> None:
    from civicaup.channels.mail.journal import MaildirJournal
    journal = MaildirJournal(tmp_path / "journal")  # type: ignore[operator]
    gw = MailGateway("ste-genevieve-mo", store=store, journal=journal)
    rcpts = [f"person{i}@stegenevieve.org" for i in range(60)]
    raw = b"From: clerk@stegenevieve.org\r\nTo: undisclosed-recipients:;\r\nSubject: Newsletter\r\n\r\nNews.\r\n"
    with Spool() as spool:
        spool.write(raw)
        verdict = asyncio.run(gw.handle(Envelope(mail_from="clerk@stegenevieve.org", rcpt_to=rcpts), spool))
    gw.close()
    assert verdict.kind == "accept" and verdict.header.startswith("flag; mail-spamming (clause ")
    [row] = quarantine.list_held(store, "ste-genevieve-mo")
    assert row.status == "flagged" and row.rule == "mail-spamming" and len(row.recipients) == 60
    assert quarantine.raw_bytes(row) == raw
    [(record, _)] = list(journal)
    assert record["decision"]["action"] == "flag"
    with pytest.raises(Exception, match="flagged for review"):
        quarantine.release(store, row.id, "clerk@stegenevieve.org")


def test_nothing_is_held_when_the_mta_gave_up(store: Engine) -> None:
    gw = MailGateway("kirkwood-mo", store=store)
    with Spool() as spool:
        spool.write(KIRKWOOD_BROADCAST)
        verdict = asyncio.run(gw.handle(Envelope("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"]), spool,
                                        alive=lambda: False))
    gw.close()
    assert verdict.kind == "tempfail" and quarantine.list_held(store) == []
