"""Software to install or download, classified by the shipped catalogue (data, not code)."""
from __future__ import annotations

from civicaup.engine.event import Event, Signal, SoftwareEvent
from civicaup.policy.catalogue import classify
from civicaup.policy.compile import CompiledPack


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, SoftwareEvent)
    out = [Signal(category="software", evidence=f"software {event.name!r}")]
    for category, entry in classify("software", event.name):
        out.append(Signal(category=category, evidence=f"{event.name!r} is {category} (catalogue: {entry})"))
    return out
