"""Display-name impersonation: another active staff member's name (or address) shown over a different address."""
from __future__ import annotations

from datetime import datetime, timezone

from civicaup.channels.mail.mime import parse_mail
from civicaup.engine.checks.mail import impersonation_signals, name_key
from civicaup.engine.event import Actor, MailEvent

STAFF = frozenset({("Dana Reed", "dana.reed@kirkwoodmo.org"), ("Sam Ortiz", "sam.ortiz@kirkwoodmo.org")})


def event(from_header: str, staff: frozenset[tuple[str, str]] = STAFF) -> MailEvent:
    mail = parse_mail(f"From: {from_header}\r\nTo: jo.smith@kirkwoodmo.org\r\nSubject: x\r\n\r\nhi\r\n".encode())
    return MailEvent(actor=Actor(), at=datetime.now(timezone.utc), mail=mail, staff_names=staff)


def test_name_of_other_staff_over_another_address() -> None:
    [s] = impersonation_signals(event('"Sam Ortiz" <sam.ortiz.cao@gmail.com>'))
    assert s.category == "spoofing" and "sam.ortiz@kirkwoodmo.org" in s.evidence


def test_variants_of_the_name_are_the_same_name() -> None:
    assert name_key("ORTIZ,  Sam") == name_key("sam ortiz") == name_key("Sam\u200b Ortiz")
    assert impersonation_signals(event('"Ortiz, Sam" <x@evil.example>'))


def test_staff_address_as_display_name() -> None:
    [s] = impersonation_signals(event('"dana.reed@kirkwoodmo.org" <x@evil.example>'))
    assert "staff address" in s.evidence


def test_own_name_own_address_and_no_directory_are_fine() -> None:
    assert impersonation_signals(event('"Sam Ortiz" <sam.ortiz@kirkwoodmo.org>')) == []
    assert impersonation_signals(event('"Pat Jones" <pat@example.org>')) == []
    assert impersonation_signals(event('"Sam Ortiz" <x@evil.example>', frozenset())) == []
