"""Packs choose detectors and thresholds per category (the pack's optional ``detection:`` map)."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from civicaup.channels import events
from civicaup.detect import DEFAULT_DETECTION, Setting, scan_all, scan_text, select
from civicaup.engine.checks.content import text_signals
from civicaup.engine.evaluate import evaluate
from civicaup.policy.compile import compile_pack
from civicaup.policy.registry import get_pack
from civicaup.policy.schema import DetectionSetting, Pack

PROFANE = "Fix the damn potholes already, you useless bunch of assholes."


def _with_detection(pack_id: str, detection: dict[str, dict[str, object]]):  # type: ignore[no-untyped-def]
    compiled = get_pack(pack_id)
    data = compiled.pack.model_dump()
    data["detection"] = detection
    return compile_pack(Pack.model_validate(data), compiled.folder)


#: What each shipped pack chose (pack.yaml `detection:`), category -> min_confidence.
SHIPPED = {
    "kirkwood-mo": {"profanity": 0.75, "sexual": 0.7, "harassment": 0.2},
    "ky-36-082": {"profanity": 0.75, "sexual": 0.7, "harassment": 0.2},
    "rosemount-mn": {"profanity": 0.75, "harassment": 0.2},
    "ste-genevieve-mo": {"sexual": 0.7},
    "west-des-moines-ia": {"sexual": 0.7},
}


@pytest.mark.parametrize("pack_id", sorted(SHIPPED))
def test_every_shipped_pack_validates_with_its_detection_map(pack_id: str) -> None:
    detection = get_pack(pack_id).pack.detection
    assert {k: v.min_confidence for k, v in detection.items()} == SHIPPED[pack_id]
    assert all(v.detectors is None for v in detection.values())


MILD = "Damn, this crappy printer jammed again. Shut up about the toner, idiot."
OBSCENE = "Fuck this printer, it is a piece of shit."


def _mail_action(pack_id: str, text: str) -> str:
    pack = get_pack(pack_id)
    cats = {s.category for s in text_signals(text, where="mail", pack=pack)}
    return ",".join(sorted(cats & {"profanity", "sexual", "harassment"}))


def test_kirkwood_blocks_obscenity_but_not_mild_words() -> None:
    assert _mail_action("kirkwood-mo", MILD) == ""
    assert _mail_action("kirkwood-mo", OBSCENE) == "profanity"
    assert _mail_action("ste-genevieve-mo", MILD) == "profanity"  # "name-calling" is in its text
    assert _mail_action("kirkwood-mo", "spam for porn has dropped off this month") == ""
    assert _mail_action("kirkwood-mo", "send me your nude pics tonight") == "sexual"
    assert _mail_action("rosemount-mn", "spam for porn has dropped off this month") == "sexual"  # "sexual implications"


def test_packs_that_name_slurs_count_the_casual_ones_too() -> None:
    text = "lol my nigga thats funny"
    assert "harassment" in _mail_action("kirkwood-mo", text)
    assert "harassment" not in _mail_action("ste-genevieve-mo", text)


def test_a_detection_setting_is_validated() -> None:
    assert DetectionSetting(min_confidence=0.5).detectors is None
    with pytest.raises(ValidationError):
        DetectionSetting(min_confidence=1.5)
    with pytest.raises(ValidationError):
        DetectionSetting(min_confidence=0.5, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="unknown detector"):
        _with_detection("kirkwood-mo", {"profanity": {"detectors": ["no-such-detector"]}})
    with pytest.raises(ValidationError, match="does not emit"):
        _with_detection("kirkwood-mo", {"profanity": {"detectors": ["pii-ssn"]}})


def test_min_confidence_drops_weaker_hits_of_that_category_only() -> None:
    text = PROFANE + " SSN 412-68-3391"
    pack = _with_detection("west-des-moines-ia", {"profanity": {"min_confidence": 0.99}})
    cats = {s.category for s in text_signals(text, where="social", pack=pack)}
    assert "profanity" not in cats and "pii" in cats
    assert "profanity" in {s.category for s in text_signals(text, where="social")}


def test_detectors_list_keeps_only_those_detectors_for_the_category() -> None:
    text = "Mexicans are lazy and should go back to their country."
    pack = _with_detection("west-des-moines-ia", {"harassment": {"detectors": ["lexicon-slur"]}})
    assert not [s for s in text_signals(text, pack=pack) if s.category == "harassment"]
    assert [s for s in text_signals(text) if s.category == "harassment"]


def test_the_pack_setting_changes_the_decision() -> None:
    plain = get_pack("west-des-moines-ia")
    quiet = _with_detection("west-des-moines-ia", {"profanity": {"min_confidence": 0.99}})
    assert evaluate(events.post_event(PROFANE, plain, kind="comment"), plain).action == "block"
    assert evaluate(events.post_event(PROFANE, quiet, kind="comment"), quiet).action == "allow"


def test_default_selection_and_explicit_settings() -> None:
    raw = scan_all("you stupid nigga lol")
    assert select(raw) == scan_text("you stupid nigga lol")
    loose = select(raw, {"harassment": Setting(min_confidence=0.0)})
    assert {h.category for h in loose} >= {h.category for h in select(raw)}
    assert DEFAULT_DETECTION["harassment"].min_confidence > 0.25  # a vetoed casual slur stays below it
    assert dataclasses.is_dataclass(Setting)
