"""Confidential and privileged information; pirated software and copyright."""

from __future__ import annotations

import pytest

from .helpers import categories, tags


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("ATTORNEY-CLIENT PRIVILEGED: draft settlement terms", "confidential:privileged"),
        ("Privileged and Confidential - prepared at the request of counsel", "confidential:privileged"),
        ("This is a confidential personnel matter.", "confidential:personnel"),
        ("Attached is the performance improvement plan for Sam.", "confidential:personnel"),
        ("We are starting disciplinary action against Officer Brown.", "confidential:personnel"),
        ("Re: termination of John Smith effective Friday", "confidential:personnel"),
        ("Termination of Officer Garcia is on the agenda", "confidential:personnel"),
        ("CONFIDENTIAL - please do not forward this message.", "confidential:marked"),
    ],
)
def test_privileged_and_sensitive_personnel_material_fires(text: str, tag: str) -> None:
    assert tag in tags(text, "confidential")


@pytest.mark.parametrize(
    "text",
    [
        "Termination of the contract takes effect in June.",
        "See section 4, Termination of Service, of the agreement.",
        "Please do not forward chain letters.",
        "The confidential hotline number is on the poster.",
        "Our attorney will attend the public meeting.",
    ],
)
def test_ordinary_contract_and_meeting_language_is_not_confidential(text: str) -> None:
    assert "confidential" not in categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "Anyone have a keygen for Photoshop?",
        "I found a serial crack for Office",
        "grab the cracked version from the usual site",
        "old warez forum",
        "it's a nulled plugin but works",
        "is there an activation bypass for Windows 10",
        "need a license crack for AutoCAD",
        "there's a torrent of the new Marvel movie",
    ],
)
def test_pirated_software_language_fires_as_copyright(text: str) -> None:
    assert "copyright" in categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "The sidewalk is cracked near Elm St.",
        "Detectives cracked the case.",
        "We received a torrent of complaints about the noise.",
        "Use ssh-keygen to create a key pair.",
        "The software license renewal is due.",
    ],
)
def test_ordinary_uses_of_crack_torrent_and_license_do_not_fire(text: str) -> None:
    assert "copyright" not in categories(text)
