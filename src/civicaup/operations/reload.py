"""SIGHUP: re-read the configuration and the packs in a running service, all or nothing.

A long-running part (``civicaup milter``, ``relay``, ``serve``) holds a :class:`Reloader`. On SIGHUP it reads
``civicaup.toml`` and every pack it serves again, off the thread that answers requests; only when all of them
load does it hand the new packs to the part (``apply``) and swap its ``packs`` attribute, so new requests are
decided by the new pack while requests already being decided finish with the one they started with. A reload
that fails (a broken pack.yaml, a configuration that does not validate) changes nothing: the old packs and
settings stay in effect and one error line says why. Success logs one line naming each pack's version and the
first 12 hex digits of its pack.yaml's SHA-256, so the operator can see which file is running.

Signals: an asyncio service calls :meth:`Reloader.install_asyncio` (``loop.add_signal_handler``); a threaded one
calls :meth:`Reloader.install_signal` from its main thread, whose handler only starts a thread. The Squid
helper has its own generation swap between blocks and uses :func:`reread_settings` and :func:`describe`.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from civicaup import settings
from civicaup.channels.socket_activation import notify
from civicaup.policy.compile import CompiledPack
from civicaup.policy import registry
from civicaup.policy.registry import get_pack

log = logging.getLogger("civicaup.reload")

Apply = Callable[[Mapping[str, CompiledPack]], None]


def describe(pack: CompiledPack) -> str:
    """``policy kirkwood-mo (pack version 2023-04-20, pack.yaml 0123456789ab)``."""
    try:
        digest = hashlib.sha256((pack.folder / "pack.yaml").read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "unreadable"
    return f"policy {pack.id} (pack version {pack.pack.version}, pack.yaml {digest})"


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:300] or type(exc).__name__


def _keep(previous: settings.Settings) -> None:
    """Keep `previous` in effect although the file or the environment changed since it was read (a failed
    reload) until the next successful reload."""
    settings.pin(previous)


def reread_settings(part: str, previous: settings.Settings | None = None) -> bool:
    """Read the configuration again; if it does not validate, log one error line, keep `previous` (or the
    settings cached before) in effect and return False."""
    try:
        before = previous or settings.pin()
    except Exception:  # noqa: BLE001 - nothing valid was in effect either: the reload below says why
        before = None
    try:
        settings.reload()
        return True
    except Exception as exc:  # noqa: BLE001 - a broken file must never stop a running service
        if before is not None:
            _keep(before)
        log.error("%s: reload failed, keeping the running configuration: %s", part, _why(exc))
        return False


class Reloader:
    """The packs a service decides with, replaced whole on a successful reload.

    ``packs`` is a read-only mapping that is swapped, never changed in place: code that took it (or a pack
    from it) for a request keeps a consistent view to the end of that request."""

    def __init__(self, policies: Iterable[str], *, part: str, apply: Apply | None = None) -> None:
        self.part = part
        self.policies = tuple(dict.fromkeys(policies))
        self.apply = apply
        self.settings = settings.pin()
        self.packs: Mapping[str, CompiledPack] = MappingProxyType({p: get_pack(p) for p in self.policies})
        registry.pin(self.packs)
        self.loaded = "; ".join(describe(p) for p in self.packs.values())  # what runs, as the log lines say it
        self.reloads = 0
        self.failures = 0
        self._lock = threading.Lock()  # reload(): one at a time across threads
        self._alock: asyncio.Lock | None = None  # reload_async(): one at a time on the loop
        self._tasks: set[asyncio.Task[Any]] = set()

    def pack(self, policy: str) -> CompiledPack:
        return self.packs[policy]

    # -- the work

    def load(self) -> tuple[settings.Settings, dict[str, CompiledPack]]:
        """Read the configuration and every pack again; raises on the first problem, leaving the settings
        that were in effect in place. Changes nothing the service uses. Safe in any thread."""
        try:
            fresh = settings.reload()
            return fresh, {p: get_pack(p, fresh=True) for p in self.policies}
        except BaseException:
            _keep(self.settings)
            raise

    def install(self, fresh: settings.Settings, packs: dict[str, CompiledPack]) -> None:
        """Hand the packs to the service, then swap them in; one log line."""
        if self.apply is not None:
            self.apply(MappingProxyType(packs))
        self.settings = fresh
        self.packs = MappingProxyType(packs)
        registry.pin(self.packs)
        self.loaded = "; ".join(describe(p) for p in packs.values())
        self.reloads += 1
        log.info("%s: reloaded %s", self.part, self.loaded)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        log.error("%s: reload failed, keeping %s: %s", self.part, self.loaded or "the running configuration",
                  _why(exc))

    def reload(self) -> bool:
        """Load and install now, in this thread (one reload at a time); False when it failed (logged)."""
        with self._lock:
            notify("RELOADING=1")
            try:
                fresh, packs = self.load()
                self.install(fresh, packs)
            except Exception as exc:  # noqa: BLE001 - the service keeps running with what it has
                self._failed(exc)
                return False
            finally:
                notify("READY=1")
            return True

    async def reload_async(self) -> bool:
        """For an asyncio service: load in a worker thread, install on the event loop (between requests)."""
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            notify("RELOADING=1")
            try:
                fresh, packs = await asyncio.get_running_loop().run_in_executor(None, self.load)
                self.install(fresh, packs)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
                return False
            finally:
                notify("READY=1")
            return True

    # -- the signal

    def install_asyncio(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """SIGHUP reloads; the handler runs on the event loop and only schedules the reload."""
        loop = loop or asyncio.get_running_loop()

        def on_hup() -> None:
            task = loop.create_task(self.reload_async())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)

    def install_signal(self) -> Callable[[int, Any], None]:
        """SIGHUP reloads in a background thread (call from the main thread); returns the handler, so a
        service that saves and restores its signal handlers can reinstall it."""
        def on_hup(_sig: int, _frame: Any) -> None:
            threading.Thread(target=self.reload, name="civicaup-reload", daemon=True).start()

        signal.signal(signal.SIGHUP, on_hup)
        return on_hup
