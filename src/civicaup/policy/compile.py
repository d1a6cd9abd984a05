"""Pack -> CompiledPack: rules indexed by channel, exemptions by id, titles to roles, the time zone loaded."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from civicaup.errors import PackError
from civicaup.policy.schema import Exemption, Pack, Rule


@dataclass(frozen=True)
class CompiledPack:
    pack: Pack
    folder: Path
    tz: ZoneInfo
    rules_by_channel: dict[str, tuple[Rule, ...]] = field(repr=False)
    exemptions: dict[str, Exemption] = field(repr=False)
    title_roles: dict[str, frozenset[str]] = field(repr=False)

    @property
    def id(self) -> str:
        return self.pack.id

    def rules_for(self, channel: str) -> tuple[Rule, ...]:
        return self.rules_by_channel.get(channel, ())

    def roles_for_title(self, title: str) -> frozenset[str]:
        """Roles of a person with this job title (case-insensitive; unknown titles are plain employees)."""
        return self.title_roles.get(title.strip().casefold(), frozenset()) | {"employee"}

    @cached_property
    def source_text(self) -> str:
        return (self.folder / self.pack.source.file).read_text(encoding="utf-8")

    @cached_property
    def broadcast(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.pack.city.broadcast)


def compile_pack(pack: Pack, folder: Path) -> CompiledPack:
    """Index a validated pack for the engine."""
    try:
        tz = ZoneInfo(pack.city.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PackError(f"unknown time zone {pack.city.time_zone!r}", file=str(folder / "pack.yaml"),
                        field="city.time_zone") from None
    by_channel: dict[str, list[Rule]] = {}
    for rule in pack.rules:
        for ch in rule.channels:
            by_channel.setdefault(ch, []).append(rule)
    return CompiledPack(
        pack=pack, folder=folder, tz=tz,
        rules_by_channel={k: tuple(v) for k, v in by_channel.items()},
        exemptions={e.id: e for e in pack.exemptions},
        title_roles={t.casefold(): frozenset(r) for t, r in pack.titles.items()},
    )
