"""Issue 4's PII: SSA rules, Mastercard 2-series, routing numbers near accounts, licences of
MO/KY/IA/MN, dates of birth next to names, employees' home addresses and personal phones; and
recall on generated valid numbers embedded in text (seeded)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from civicaup.detect.pii_checks import aba_ok, card_brand, dl_states, luhn_ok, ssn_ok

from .helpers import hits


def pii_tags(text: str) -> set[str]:
    out: set[str] = set()
    for h in hits(text, "pii"):
        out |= h.tags
    return out


def _bench():  # bench/detect.py holds the seeded generators
    path = Path(__file__).resolve().parents[2] / "bench" / "detect.py"
    spec = importlib.util.spec_from_file_location("bench_detect", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ssa_rules() -> None:
    assert ssn_ok("412", "68", "3391")
    for area, group, serial in (("000", "12", "3456"), ("666", "12", "3456"), ("900", "12", "3456"),
                                ("999", "12", "3456"), ("123", "00", "4567"), ("123", "45", "0000"),
                                ("078", "05", "1120")):
        assert not ssn_ok(area, group, serial)
    assert "pii:ssn" not in pii_tags("SSN 078-05-1120 (the Woolworth wallet card)")


def test_mastercard_2_series_is_a_card_and_out_of_range_numbers_are_not() -> None:
    for prefix in ("2221", "2500", "2720"):
        number = prefix + "00000000000"
        number += next(d for d in "0123456789" if luhn_ok(number + d))
        assert card_brand(number) == "mastercard"
        assert "card:mastercard" in pii_tags(f"card {number[:4]} {number[4:8]} {number[8:12]} {number[12:]}")
    number = "2721000000000000"
    number = number[:-1] + next(d for d in "0123456789" if luhn_ok(number[:-1] + d))
    assert card_brand(number) is None


def test_routing_number_is_found_next_to_an_account_number_without_its_keyword() -> None:
    assert aba_ok("011000015") and not aba_ok("011000016")
    tags = pii_tags("Please wire the deposit to 011000015, account number 4455667788.")
    assert {"bank:routing", "pii:bank-account"} <= tags
    assert "bank:routing" not in pii_tags("Invoice 011000015 is attached.")  # no account nearby


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Missouri driver's license A123456", "mo"),
        ("MO DL# 123456789A", "mo"),
        ("Kentucky driver's license number S12345678", "ky"),
        ("Iowa driver's license 123AB4567", "ia"),
        ("driver's license (IA) 123AB4567", "ia"),
        ("Minnesota driver's license A123456789012", "mn"),
        ("MN DL A 123 456 789 012", "mn"),
    ],
)
def test_state_licence_formats_are_recognised_after_a_keyword(text: str, state: str) -> None:
    found = hits(text, "pii")
    assert len(found) == 1 and {"pii:drivers-licence", f"dl:{state}"} <= found[0].tags, found
    assert found[0].confidence >= 0.9


def test_licence_formats() -> None:
    assert dl_states("A123456") == ["MO"]
    assert dl_states("123AB4567") == ["IA"]
    assert dl_states("A123456789012") == ["MN"]
    assert set(dl_states("123456789")) == {"MO", "KY", "IA"}
    assert dl_states("AB1234") == []
    assert "pii:drivers-licence" not in pii_tags("Iowa 123AB4567")  # no keyword


@pytest.mark.parametrize(
    "text",
    [
        "patient Robert Hanley, DOB 04/17/1958, was treated",
        "Jane Doe, date of birth: March 4, 1970",
        "Officer Dana Reed (born 1971-02-03) joined in May",
        "Her date of birth is 3/4/1970.",
    ],
)
def test_a_date_of_birth_next_to_a_person_is_pii(text: str) -> None:
    found = [h for h in hits(text, "pii") if "pii:dob" in h.tags]
    assert found and not any(c.isdigit() for c in found[0].evidence)


@pytest.mark.parametrize(
    "text",
    ["Date of birth: 3/4/1970", "Born on 4/17/1958.", "The library was born on 4/17/1958 as a reading room.",
     "Please enter your date of birth (MM/DD/YYYY)."],
)
def test_a_date_of_birth_without_a_person_is_not_reported(text: str) -> None:
    assert "pii:dob" not in pii_tags(text)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("Officer Dana Reed lives at 1420 Elm Street, Apt 4.", "pii:home-address"),
        ("His home address is 55 Oak Ridge Drive", "pii:home-address"),
        ("Taylor Nguyen's cell is 515-555-0199", "pii:personal-phone"),
        ("Call Morgan Ellis on her personal cell: (515) 555-0123", "pii:personal-phone"),
        ("Chris Doe's home phone number is 515.555.0100", "pii:personal-phone"),
    ],
)
def test_home_addresses_and_personal_phones_of_named_people_are_pii(text: str, tag: str) -> None:
    found = [h for h in hits(text, "pii") if tag in h.tags]
    assert found, hits(text, "pii")
    assert not any(c.isdigit() for c in found[0].evidence[: -4])


@pytest.mark.parametrize(
    "text",
    [
        "You can reach City Hall at 515-222-3600, 4200 Mills Civic Parkway, West Des Moines, IA 50265-0320.",
        "John Smith\nCell: 515-555-0100\nPublic Works",
        "My home phone is 515-555-0100 if the line is down.",
        "Please update your home address in the HR portal.",
        "The museum lives at 100 Main Street now.",
    ],
)
def test_public_numbers_signatures_and_unnamed_addresses_are_not_pii(text: str) -> None:
    assert not pii_tags(text) & {"pii:home-address", "pii:personal-phone"}, hits(text, "pii")


def test_recall_on_generated_valid_numbers_embedded_in_text() -> None:
    bench = _bench()
    filler = ("Hi all,\nThe quarterly report is attached. Let me know if the numbers look right.\n"
              "Thanks,\nMorgan\n").split("\n")
    rng = random.Random(4)
    tag = {"ssn": "pii:ssn", "card": "pii:card", "routing": "bank:routing"}
    for kind in bench.PII_KINDS:
        found = 0
        for _ in range(150):
            sentence, written = bench.pii_sentence(kind, rng)
            lines = list(filler)
            lines.insert(rng.randint(0, len(lines)), sentence)
            text = "\n".join(lines)
            start = text.index(sentence) + sentence.index(written)
            found += any(h.start < start + len(written) and start < h.end and tag[kind] in h.tags
                         for h in hits(text, "pii"))
        assert found / 150 >= 0.98, kind


def test_generated_numbers_obey_their_rules() -> None:
    bench = _bench()
    rng = random.Random(5)
    for _ in range(200):
        n = bench.gen_ssn(rng)
        assert ssn_ok(n[:3], n[3:5], n[5:])
        card, _brand = bench.gen_card(rng)
        assert luhn_ok(card) and card_brand(card)
        assert aba_ok(bench.gen_routing(rng))
