"""What the filters write: the decision header, the reject reply, the sender identity."""
from __future__ import annotations

from civicaup.channels.mail.gateway import Envelope, ascii_safe, header_value, identity, reject_reply
from civicaup.engine.decision import Decision, Finding


def finding(rule: str, clause: str, action: str, quote: str = "Sending large files is discouraged.") -> Finding:
    return Finding(rule=rule, clause=clause, category="x", action=action, evidence="e", quote=quote)


def test_header_names_rules_and_clauses_in_ascii() -> None:
    d = Decision.of([finding("mail-large-files", "Software Usage ¶15", "log"), finding("b", "(C)", "flag")],
                    policy="p", channel="mail")
    assert header_value(d) == "flag; b (clause (C)), mail-large-files (clause Software Usage para 15)"
    assert header_value(Decision.of([], policy="p", channel="mail")) == "allow"


def test_reject_reply_quotes_the_blocking_clause() -> None:
    quote = "Sending or receiving of large files (larger than 50 megabytes) \u2014 100% \u201cdiscouraged\u201d" * 3
    d = Decision.of([finding("a", "e", "hold"), finding("mail-large-files", "Software Usage ¶15", "block", quote)],
                    policy="p", channel="mail")
    reply = reject_reply(d)
    assert reply.startswith("550 5.7.1 mail-large-files clause Software Usage para 15: Sending or receiving")
    assert reply.isascii() and "%" not in reply and len(reply) < 300 and reply.endswith("...")
    assert ascii_safe("Caf\u00e9 \u00a7 3") == "Cafe sec. 3"


def test_identity_is_the_login_else_the_envelope_sender() -> None:
    assert identity(Envelope("x@gmail.com", [], auth_user="Pat.Jones"), "kirkwoodmo.org") == "pat.jones@kirkwoodmo.org"
    assert identity(Envelope("x@gmail.com", [], auth_user="dana@kirkwoodmo.org"), "k.org") == "dana@kirkwoodmo.org"
    assert identity(Envelope("X@Gmail.com", []), "kirkwoodmo.org") == "x@gmail.com"
