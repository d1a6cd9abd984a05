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


def test_every_shipped_pack_validates_without_a_detection_map() -> None:
    for pack_id in ("kirkwood-mo", "ste-genevieve-mo", "ky-36-082", "west-des-moines-ia", "rosemount-mn"):
        assert get_pack(pack_id).pack.detection == {}


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
