"""Checks turn an event into signals (categories with evidence); rules in the pack decide what they mean."""
from __future__ import annotations

from collections.abc import Callable

from civicaup.engine.event import Event, Signal
from civicaup.policy.compile import CompiledPack


def signals_for(event: Event, pack: CompiledPack) -> list[Signal]:
    """All signals for one event, by the check registered for its channel."""
    from civicaup.engine.checks import access, device, mail, post, software, web

    table: dict[str, Callable[[Event, CompiledPack], list[Signal]]] = {
        "mail": mail.signals, "web": web.signals, "software": software.signals,
        "hardware": device.signals, "social": post.signals, "access": access.signals,
    }
    check = table.get(event.channel)
    return check(event, pack) if check else []
