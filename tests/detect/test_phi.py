"""Protected health information: a person plus a medical term, close together."""

from __future__ import annotations

import pytest

from .helpers import categories, hits, tags


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("The patient was diagnosed with type 2 diabetes.", "phi:diagnosis"),
        ("John's wife has breast cancer and starts chemotherapy Monday.", "phi:condition"),
        ("She is on medication for bipolar disorder.", "phi:prescription"),
        ("Employee Jane Doe, DOB 01/02/1980, tested positive for HIV.", "phi:test"),
        ("MRN: 00451234 - please update the chart.", "phi:record-number"),
        ("Medical record number 7781234 for Mr. Jones", "phi:record-number"),
        ("He was admitted to the hospital after a heart attack.", "phi:treatment"),
    ],
)
def test_health_information_about_a_person_fires(text: str, tag: str) -> None:
    assert tag in tags(text, "phi")


@pytest.mark.parametrize(
    "text",
    [
        "Cancer screenings are free at the health fair.",
        "The water treatment plant is closed for maintenance.",
        "Diabetes awareness month: learn the risk factors.",
        "Tropical depression Nine is expected to strengthen; he said to expect rain.",
        "Please be patient while the system restarts.",
        "The stroke of midnight ends the event.",
        "The police reported a drug seizure on Main St.",
        "A false positive in the spam filter; she fixed it.",
    ],
)
def test_medical_words_without_a_person_or_generic_health_text_do_not_fire(text: str) -> None:
    assert "phi" not in categories(text)


def test_a_medical_term_next_to_a_full_name_is_phi_with_lower_confidence() -> None:
    found = hits("Robert Hanley was treated for a heart attack", "phi")
    assert found and "phi:named-person" in found[0].tags and found[0].confidence < 0.7
    assert not hits("The American Cancer Society walk is on Saturday", "phi")
