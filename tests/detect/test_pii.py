"""Personal information: SSNs, cards, bank accounts, driver's licences."""

from __future__ import annotations

import pytest

from .helpers import hits


def pii_tags(text: str) -> set[str]:
    out: set[str] = set()
    for h in hits(text, "pii"):
        out |= h.tags
    return out


@pytest.mark.parametrize(
    "text",
    ["SSN: 123-45-6789", "my social is 123 45 6789, thanks", "Social Security Number 123456789", "ssn#123456789"],
)
def test_social_security_numbers_fire_masked(text: str) -> None:
    found = hits(text, "pii")
    assert len(found) == 1 and "pii:ssn" in found[0].tags
    assert found[0].evidence == "***-**-6789"
    assert "6789" in text[found[0].start : found[0].end]


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",  # invalid ranges
        "call 123456789 tomorrow",  # bare nine digits, no keyword
        "St. Louis, MO 63122-1234",  # ZIP+4
        "Phone (314) 555-1234 or 314-555-1234 or +1 314 555 1234",
        "Invoice INV-2002-123456789 and PO 987654321",
        "Meeting on 2002-08-23 at 10:30, ticket 12-345-6789",
        "Order 123-456-7890 shipped",
    ],
)
def test_numbers_that_are_not_social_security_numbers_do_not_fire(text: str) -> None:
    assert "pii:ssn" not in pii_tags(text), hits(text, "pii")


@pytest.mark.parametrize(
    ("text", "brand", "masked"),
    [
        ("card 4111 1111 1111 1111 exp 12/25", "visa", "**** **** **** 1111"),
        ("4111111111111111", "visa", "**** **** **** 1111"),
        ("MC 5555-5555-5555-4444", "mastercard", "****-****-****-4444"),
        ("new mastercard 2221 0000 0000 0009", "mastercard", "**** **** **** 0009"),
        ("amex 3782 822463 10005", "amex", "**** ****** *0005"),
        ("discover 6011 1111 1111 1117", "discover", "**** **** **** 1117"),
    ],
)
def test_luhn_valid_cards_in_real_iin_ranges_fire_masked(text: str, brand: str, masked: str) -> None:
    found = hits(text, "pii")
    assert len(found) == 1
    assert {"pii:card", f"card:{brand}"} <= found[0].tags
    assert found[0].evidence == masked


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "1234 5678 9012 3456",  # no such IIN
        "4444444444444444",  # one digit repeated
        "tracking 9400111899223817493021",  # too long
        "4111 11111 111 1111",  # not how cards are grouped
        "ref 2002082312345678",  # a timestamp-like id
        "call 1-800-555-1234 ext 5678",
    ],
)
def test_card_shaped_numbers_that_are_not_cards_do_not_fire(text: str) -> None:
    assert "pii:card" not in pii_tags(text)


def test_bank_accounts_and_routing_numbers_need_their_keyword() -> None:
    text = "Routing number 021000021, checking account number 12345678901"
    found = hits(text, "pii")
    assert [("bank:routing" in h.tags) for h in found] == [True, False]
    assert all("pii:bank-account" in h.tags for h in found)
    assert found[1].evidence.endswith("8901") and "1234567" not in found[1].evidence
    assert "pii:bank-account" not in pii_tags("Please call 12345678901 about the account.")
    assert "pii:bank-account" not in pii_tags("Routing number 123456789")  # ABA checksum fails


@pytest.mark.parametrize(
    "text", ["Driver's License: D1234567", "DL# A123-4567-8901", "driver license number 123456789", "DLN 98765432"]
)
def test_drivers_licences_fire_after_their_keyword(text: str) -> None:
    found = hits(text, "pii")
    assert len(found) == 1 and "pii:drivers-licence" in found[0].tags
    assert not any(c.isdigit() for c in found[0].evidence[:-4])


@pytest.mark.parametrize(
    "text",
    [
        "Flight D1234567 departs at 10",
        "Install the new driver from the DL page",
        "Part A1234567",
        "The license server listens on 27000",
        "download dl 12345678",
    ],
)
def test_licence_look_alikes_without_a_keyword_do_not_fire(text: str) -> None:
    assert "pii:drivers-licence" not in pii_tags(text)


def test_pii_evidence_never_contains_the_full_number() -> None:
    text = "SSN 123-45-6789 and card 4111 1111 1111 1111, acct # 99887766"
    for h in hits(text, "pii"):
        assert "123-45" not in h.evidence and "4111 1111" not in h.evidence and "9988" not in h.evidence
