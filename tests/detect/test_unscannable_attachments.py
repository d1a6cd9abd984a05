"""West Des Moines flags attachments that cannot be checked for a virus (Software Usage ¶13:
"All appropriate precautions should be taken to detect for a virus and, if necessary, to prevent its
spread."), as Ste. Genevieve does under B.2.d. The fixtures are the West Des Moines scenario messages."""

from __future__ import annotations

from pathlib import Path

from civicaup.channels import events
from civicaup.engine.evaluate import evaluate
from civicaup.policy.registry import get_pack

FIXTURES = Path(__file__).resolve().parents[1] / "scenarios" / "west-des-moines-ia"


def _decide(pack_id: str, name: str):  # type: ignore[no-untyped-def]
    pack = get_pack(pack_id)
    ev = events.mail_event(str(FIXTURES / name), pack, sender="pat.jones@wdm.iowa.gov", at="2026-03-03T10:00")
    return evaluate(ev, pack)


def test_an_encrypted_zip_is_flagged_for_review_quoting_the_virus_precaution() -> None:
    decision = _decide("west-des-moines-ia", "encrypted-invoice-zip.eml")
    assert decision.action == "flag"
    (finding,) = [f for f in decision.findings if f.rule == "mail-unscannable-attachment"]
    assert finding.category == "encrypted-attachment" and finding.clause == "Software Usage ¶13"
    assert finding.quote == ("All appropriate precautions should be taken to detect for a virus and, if necessary, "
                             "to prevent its spread.")
    source = (Path(get_pack("west-des-moines-ia").folder) / "source.txt").read_text(encoding="utf-8")
    assert finding.quote in source


def test_an_ordinary_zip_is_scanned_and_passes() -> None:
    assert _decide("west-des-moines-ia", "plain-invoice-zip.eml").action == "allow"


def test_the_rule_quotes_an_enforced_sentence_of_the_text() -> None:
    pack = get_pack("west-des-moines-ia").pack
    (rule,) = [r for r in pack.rules if r.id == "mail-unscannable-attachment"]
    (clause,) = [c for c in pack.clauses if c.ref == rule.clause]
    statuses = {s.text: s.status for s in clause.sentences}
    assert statuses[rule.quote] == "enforced"
