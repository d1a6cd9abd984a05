"""Access requests: a look into another person's mail, files or browsing history."""
from __future__ import annotations

from civicaup.engine.event import AccessEvent, Event, Signal
from civicaup.policy.compile import CompiledPack


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, AccessEvent)
    who = event.actor.email or "someone"
    return [Signal(category=event.kind, evidence=f"{who} asks to {event.kind} of {event.subject or 'another person'}"
                   + (f" ({event.reason[:80]})" if event.reason else ""))]
