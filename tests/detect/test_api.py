"""The public API: Hit, scan_text, normalise, DETECTORS."""

from __future__ import annotations

import dataclasses
import random

import pytest

import civicaup.detect as detect
from civicaup.detect import CATEGORIES, DETECTORS, Hit, normalise, scan_text

SAMPLE = (
    "Hi team, the sales tax report is attached. Vote for Jane Smith for city council on Tuesday! "
    "Also you f*cking idiot, all mexicans are lazy. SSN 123-45-6789, card 4111 1111 1111 1111. "
    "The patient was diagnosed with diabetes. Privileged and confidential. Anyone have a keygen? "
    "On behalf of the City, I believe this is wrong. The mayor is a crook. I will kill you. "
    "Selling my 2012 Honda Civic, $4,500 OBO. Incident report: the suspect stated he was angry. Send nudes. "
    "Photos at bit.ly/3xCivic"
)


def test_the_package_exports_the_documented_names() -> None:
    for name in ("Hit", "scan_text", "normalise", "DETECTORS", "has_disclaimer"):
        assert hasattr(detect, name)


def test_hit_is_a_frozen_dataclass_with_the_documented_fields() -> None:
    fields = [f.name for f in dataclasses.fields(Hit)]
    assert fields == ["category", "detector", "evidence", "start", "end", "confidence", "tags"]
    hit = scan_text("you idiot")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.category = "x"  # type: ignore[misc]


def test_every_detector_has_a_kebab_case_name_and_known_categories() -> None:
    assert len(DETECTORS) >= 15
    for name, det in DETECTORS.items():
        assert det.name == name and name == name.lower() and " " not in name and "_" not in name
        assert det.categories and det.categories <= CATEGORIES


def test_a_mixed_text_yields_every_category_with_sane_hits() -> None:
    found = scan_text(SAMPLE)
    cats = {h.category for h in found}
    assert cats == CATEGORIES - {"malware"}
    for h in found:
        assert h.category in DETECTORS[h.detector].categories
        assert 0 <= h.start < h.end <= len(SAMPLE)
        assert len(h.evidence) <= 80 and "\n" not in h.evidence
        assert 0.0 <= h.confidence <= 1.0
        assert isinstance(h.tags, frozenset)
    assert found == sorted(found, key=lambda h: (h.start, h.end, h.category, h.detector))


def test_hits_point_into_the_original_text() -> None:
    text = "Ｈｅｌｌｏ\u200b   you   f**king    idiot"
    (hit,) = [h for h in scan_text(text) if h.category == "profanity"]
    assert text[hit.start : hit.end] == "you   f**king    idiot"


def test_scan_text_accepts_where_and_gives_the_same_hits_everywhere() -> None:
    assert scan_text(SAMPLE, where="subject") == scan_text(SAMPLE, where="body") == scan_text(SAMPLE, where="anything")


def test_normalise_returns_the_text_and_an_offset_map() -> None:
    norm, offsets = normalise("Hello  World")
    assert norm == "hello world" and offsets == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]


def test_scan_text_never_raises_on_random_strings() -> None:
    rng = random.Random(1234)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 @$!*#.-_'\"\n\t\u200b\u00ad\u0430\u0441\u03bf\u2019ßﬁ🖕\ud800é"
    )
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        for h in scan_text(text):
            assert 0 <= h.start <= h.end <= len(text)


def test_scan_text_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        scan_text(b"bytes")  # type: ignore[arg-type]


def test_a_long_message_is_scanned_whole_and_hits_stay_bounded() -> None:
    text = (SAMPLE + " Regular text about budgets, parks and permits 2024-05-01. ") * 200  # ~100 kB
    found = scan_text(text)
    assert {h.category for h in found} == CATEGORIES - {"malware"}
    assert all(0 <= h.start < h.end <= len(text) for h in found)
    per_detector: dict[str, int] = {}
    for h in found:
        per_detector[h.detector] = per_detector.get(h.detector, 0) + 1
    assert max(per_detector.values()) <= 50  # MAX_HITS_PER_DETECTOR


def test_scan_many_gives_each_text_what_scan_text_gives() -> None:
    texts = [SAMPLE, "", "lol my nigga thats funny", "those muslims with their damn noise every night",
             "Loved the festival!", "you f*cking idiot", "I am going to shoot up city hall tomorrow"] * 3
    assert detect.scan_many(texts) == [scan_text(t) for t in texts]
    loose = {"harassment": detect.Setting(min_confidence=0.0)}
    assert detect.scan_many(texts, detection=loose) == [scan_text(t, detection=loose) for t in texts]
    assert detect.scan_many([]) == []
    with pytest.raises(TypeError):
        detect.scan_many(["ok", b"bytes"])  # type: ignore[list-item]
