"""The newcomer's demo: sample messages and URLs checked against a seed policy, decisions with their clauses."""
from __future__ import annotations

from pathlib import Path

from civicaup.channels import events
from civicaup.engine.evaluate import evaluate
from civicaup.interfaces.cli.output import show_decision
from civicaup.policy.registry import get_pack

SAMPLES = Path(__file__).parent
URLS = [
    ("http://www.pornhub.com/", None, "2026-03-03T10:00"),
    ("https://www.bet365.com/", ["law-enforcement"], "2026-03-03T10:00"),
    ("https://www.amazon.com/", None, "2026-03-03T10:00"),
    ("https://www.amazon.com/", None, "2026-03-03T12:15"),
    ("https://www.sos.mo.gov/records/local", None, "2026-03-03T10:00"),
]
SOFTWARE = ["WhatsApp Desktop", "Spotify", "Adobe Acrobat Reader DC"]


def run_demo(policy: str) -> None:
    """Print the decision for each sample, with the clause it enforces."""
    pack = get_pack(policy)
    print(f"== {pack.pack.title}\n")
    print("-- mail")
    for eml in sorted(SAMPLES.glob("*.eml")):
        ev = events.mail_event(str(eml), pack, at="2026-03-03T10:14")
        show_decision(evaluate(ev, pack), f"{eml.name} ({ev.describe()})", as_json=False)
    print("\n-- web (Tuesday 10:00 is work time; 12:15 is lunch)")
    for url, roles, at in URLS:
        ev = events.web_event(url, pack, roles=roles, at=at)
        who = f" as {'+'.join(roles)}" if roles else ""
        show_decision(evaluate(ev, pack), f"{url} at {at[11:]}{who}", as_json=False)
    print("\n-- software")
    for name in SOFTWARE:
        show_decision(evaluate(events.software_event(name, pack), pack), name, as_json=False)
