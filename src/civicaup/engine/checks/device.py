"""Hardware to connect to the city's system, classified by the shipped catalogue."""
from __future__ import annotations

from civicaup.engine.event import Event, HardwareEvent, Signal
from civicaup.policy.catalogue import classify
from civicaup.policy.compile import CompiledPack


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, HardwareEvent)
    out = [Signal(category="device", evidence=f"device {event.name!r}")]
    for category, entry in classify("hardware", event.name):
        out.append(Signal(category=category, evidence=f"{event.name!r} is {category} (catalogue: {entry})"))
    return out
