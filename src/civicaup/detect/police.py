"""Police / incident-report context ("incident report", "the suspect stated",
"according to the complainant"), from ``data/police_report.txt``.

Category "police-report" is a context, not a violation: the policy exempts
"statements of other parties" quoted as part of police reporting procedures, and
the decision engine uses these hits to apply that exemption.
"""

from __future__ import annotations

from .lexicon import LexiconDetector

POLICE_REPORT = LexiconDetector("police-report-context", "police-report", "police_report", confidence=0.75)
