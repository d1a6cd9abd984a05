"""Finding packs: the ones shipped in the package, and a city's own under $CIVICAUP_HOME/packs/<id>/pack.yaml."""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from civicaup import settings
from civicaup.config import home
from civicaup.errors import UnknownPolicyError
from civicaup.policy.compile import CompiledPack, compile_pack
from civicaup.policy.load import load_pack

BUILTIN = Path(__file__).parent / "packs"


def pack_dirs() -> dict[str, Path]:
    """Pack id -> its folder; a city's own folder overrides a shipped one of the same id."""
    roots = (BUILTIN, home() / "packs")
    return dict(_scan(roots, tuple(_mtime(r) for r in roots)))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=8)
def _scan(roots: tuple[Path, ...], _mtimes: tuple[float, ...]) -> tuple[tuple[str, Path], ...]:
    """The folders holding a pack.yaml, rescanned only when a root folder changes."""
    found: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "pack.yaml").is_file():
                    found[d.name] = d
    return tuple(found.items())


def pack_ids() -> list[str]:
    return sorted(pack_dirs())


@lru_cache(maxsize=32)
def _compiled(path: Path, mtime: float) -> CompiledPack:
    return compile_pack(load_pack(path / "pack.yaml"), path)


_pinned: dict[str, CompiledPack] = {}


def pin(packs: Mapping[str, CompiledPack]) -> None:
    """A long-running part keeps these packs until it pins others (its SIGHUP reload): an edit to pack.yaml,
    or a broken one, changes nothing until then."""
    _pinned.clear()
    _pinned.update(packs)


def get_pack(pack_id: str, *, fresh: bool = False) -> CompiledPack:
    """The compiled pack (the pinned one in a long-running part unless `fresh`); raises UnknownPolicyError naming
    the known ids."""
    if not fresh and pack_id in _pinned:
        return _pinned[pack_id]
    dirs = pack_dirs()
    if pack_id not in dirs:
        raise UnknownPolicyError(f"unknown policy {pack_id!r} (known: {', '.join(sorted(dirs)) or 'none'})")
    enabled = settings.load().packs
    if enabled and pack_id not in enabled:
        raise UnknownPolicyError(f"policy {pack_id!r} is not enabled in the configuration "
                                 f"(packs = {', '.join(enabled)})")
    path = dirs[pack_id]
    return _compiled(path, (path / "pack.yaml").stat().st_mtime)
