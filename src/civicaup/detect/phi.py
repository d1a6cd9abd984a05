"""Protected health information: health facts about an identifiable person.

Two signals must be close together: a medical term (diagnosis, condition,
prescription, treatment, test) and a person signal (patient, he/she, "my wife",
an employee, a date of birth) or a medical record identifier. A medical record
keyword ("MRN", "medical record number") followed by a number is enough alone.
A person's full name ("Robert Hanley", "Mrs. Ortiz") written in the original text
right next to the medical term counts as a person signal too, with a lower confidence.
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, hits_from_spans
from .matcher import Match, PhraseIndex
from .normalise import Normalised

_WINDOW = 80
_NUMBER_AFTER = re.compile(r"[\s:#.=]*(?:is |was |of )?[a-z]{0,3}\d{4,}")
_NAME_WINDOW = 50
_FULL_NAME = re.compile(
    r"\b(?:(?:Mr|Mrs|Ms|Miss|Dr|Officer|Ofc|Sgt|Sergeant|Lt|Lieutenant|Capt|Captain|Chief|Det|Detective|Deputy|Mayor"
    r"|Councilman|Councilwoman|Councilmember|Commissioner|Judge|Director|Inspector)\.? [A-Z][a-z'\-]+"
    r"|[A-Z][a-z'\-]+(?: [A-Z]\.)? [A-Z][a-z'\-]{2,})\b"
)
#: between a name and a medical term: the words that state the person's health ("Officer Peterson is HIV
#: positive", "Robert Hanley was treated for", "Smith has been diagnosed with")
_DISCLOSES = re.compile(
    r"(?:^|'s|\s)(?:is|was|has|had|have|got|gets|getting|tested|tests|been|became|caught|contracted|suffers|suffered"
    r"|suffering|lives with|living with|diagnosed|treated|takes|taking|went|checked|came back|battling|fighting"
    r"|dying of|died of|died from|recovering from|struggles with|struggling with|underwent|undergoing|started"
    r"|starts|needs|needed|on)(?:\s|$)",
    re.IGNORECASE,
)
#: the medical term as a subject: followed by these ("HIV prevention", "cancer screenings") ...
_TOPIC_AFTER = re.compile(
    r" (?:prevention|awareness|research|education|educator|month|week|day|walk|run|ride|fundraiser|gala|screening"
    r"|screenings|testing event|test site|clinic|clinics|program|programs|training|trainings|seminar|talk|talks"
    r"|webinar|vaccine|vaccines|vaccination|vaccinations|shot|shots|policy|policies|support group|support groups"
    r"|foundation|society|association|center|centre|unit|ward|services|resources|information|info|facts"
    r"|statistics|rates|outbreak|outbreaks|specialist|specialists|drive|benefit|benefits|insurance|coverage|plan"
    r"|plans|hotline|helpline|charity|charities|survivors|research fund|task force|coalition|initiative)\b"
)
#: ... or preceded by these ("a talk on HIV", "training about diabetes")
_TOPIC_BEFORE = re.compile(
    r"\b(?:talk|talks|lecture|seminar|training|presentation|class|course|webinar|event|session|information|awareness"
    r"|workshop|article|study|studies|research|report|panel|brochure|flyer|fundraiser|campaign|walk|speech|film"
    r"|documentary|book|guide|video|podcast|questions|facts) (?:on|about|regarding|for|of|against|to end|to fight"
    r"|to beat|to prevent)(?: the)? $"
)
_NOT_NAMES = frozenset(
    "The This That These Those Our Your Their City County State Health Medical Hospital Clinic Center Centre Department "
    "Public Fire Police Insurance Dental Vision Care General Memorial Regional University Community Mental Family "
    "Employee Assistance Program Human Resources Cancer Heart Lung Kidney American National Society Association Foundation "
    "Research Institute Awareness Month Week Day Walk Run Relay Drive Blood Flu Shot Shots Clinic North South East West "
    "New Des Moines Saint St January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Dear Hi Hello Thanks Please".split()
)


class PhiDetector:
    """``phi-context``: medical term near a person or record signal."""

    name = "phi-context"
    categories = frozenset({"phi"})

    def __init__(self) -> None:
        # medical terms and record keywords are rare: they go in the shared pass;
        # person words (he, she, patient) are common: looked up near medical terms only
        self.index = PhraseIndex(lambda: [e for e in data.load("phi") if "role:person" not in e.tags], confidence=0.7)
        self.people = PhraseIndex(lambda: [e for e in data.load("phi") if "role:person" in e.tags], shared=False)
        self.needs = (self.index,)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        matches = self.index.find(norm)
        if not matches:
            return []
        medical = [m for m in matches if "role:medical" in m.tags]
        records = [m for m in matches if "role:record" in m.tags]
        s = norm.text
        spans: list[tuple[int, int, float, set[str]]] = []
        for rec in records:
            num = _NUMBER_AFTER.match(s, rec.end)
            if num is not None:
                spans.append((rec.start, num.end(), 0.9, {"phi:record-number"}))
        for med in medical:
            if _is_topic(s, med):
                continue  # "a talk on HIV prevention", "cancer screenings": the subject, not a person's health
            people = records + self.people.find_window(norm, med.start - _WINDOW - 20, med.end + _WINDOW + 20)
            partner = _nearest(med, people)
            if partner is None:
                named = _name_near(norm, med)
                if named is not None:
                    tags = {t for t in med.tags if t.startswith("phi:")} | {"phi:named-person"}
                    spans.append((min(med.start, named[0]), max(med.end, named[1]), 0.6, tags))
                continue
            conf = 0.85 if "role:record" in partner.tags else med.confidence
            tags = {t for t in med.tags if t.startswith("phi:")}
            spans.append((min(med.start, partner.start), max(med.end, partner.end), conf, tags))
        return hits_from_spans(norm, self.name, "phi", spans)


def _is_topic(s: str, med: Match) -> bool:
    """The medical term names a subject (a talk, a campaign, a service), not someone's condition."""
    return _TOPIC_AFTER.match(s, med.end) is not None or _TOPIC_BEFORE.search(s, max(0, med.start - 40),
                                                                               med.start) is not None


def _name_near(norm: Normalised, med: Match) -> tuple[int, int] | None:
    """A capitalised full name (or a title and a surname) whose health the text states: the name, then a
    verb that discloses ("is", "has", "tested", "was diagnosed", "is being treated"), then the term
    within ``_NAME_WINDOW`` characters - or the term right before the name, as in a list ("HIV: J. Smith")."""
    ostart, oend = norm.span(med.start, med.end)
    text = norm.original
    lo = max(0, ostart - _NAME_WINDOW)
    for m in _FULL_NAME.finditer(text, lo, min(len(text), oend + _NAME_WINDOW)):
        if m.start() < oend and ostart < m.end():
            continue
        words = m.group().replace(".", "").split()
        if any(w in _NOT_NAMES for w in words):
            continue
        between = text[m.end() : ostart] if m.end() <= ostart else text[oend : m.start()]
        if any(c in between for c in ".!?\n"):
            continue
        if m.end() <= ostart:
            if _DISCLOSES.search(between) is None:
                continue
        elif between.strip(" :,-\u2013\u2014") != "":
            continue
        return norm.from_original(m.start()), norm.from_original(m.end())
    return None


def _nearest(med: Match, people: list[Match]) -> Match | None:
    """The closest person/record signal within the window that does not overlap ``med``."""
    best: Match | None = None
    best_gap = _WINDOW + 1
    for p in people:
        if p.start < med.end and med.start < p.end:
            continue
        gap = med.start - p.end if p.end <= med.start else p.start - med.end
        if gap < best_gap:
            best, best_gap = p, gap
    return best


PHI = PhiDetector()
