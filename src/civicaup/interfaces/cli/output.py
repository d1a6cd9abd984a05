"""Printing decisions and tables, for people and as one JSON value."""
from __future__ import annotations

import json
import sys
from typing import Any

from civicaup.engine.decision import Decision


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def show_decision(decision: Decision, subject: str, *, as_json: bool) -> None:
    """The Decision as JSON, or as a few lines a person reads: action, then each finding with its clause."""
    if as_json:
        emit_json(decision.to_json())
        return
    print(f"{decision.action.upper():5}  {subject}  [{decision.policy}]")
    for f in decision.findings:
        who = ""
        if f.approvers:
            who = f"  approvers: {(' and ' if f.approvers_needed == 'all' else ' or ').join(f.approvers)}"
        ex = f"  (exempted by {f.exempted_by})" if f.exempted_by else ""
        print(f"  - {f.action:5} {f.rule} (clause {f.clause}, {f.category}): {f.evidence}{who}{ex}")
        print(f"          \"{f.quote}\"")
