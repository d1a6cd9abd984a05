"""Several processes serving one listening socket: how the milter and the relay use more than one core.

A Python filter decides under one interpreter lock, so one process tops out at one core whatever the server
has. ``--processes N`` makes the command a small supervisor instead: it binds the socket, loads the pack and
warms up once, then forks N children that each run the ordinary asyncio server on that same socket (the
kernel hands each new MTA connection to one of them; every message of a connection stays in its process, so
nothing is shipped between processes). The children share the loaded word lists and model copy-on-write.

The supervisor itself never decides anything. It waits for signals synchronously (blocked, then
``sigtimedwait``), so there is no handler racing the loop:

* SIGTERM / SIGINT: passed to every child, which stops accepting, answers the messages it is deciding and
  exits; children still running ``grace`` seconds later are killed (the MTA keeps their messages: a dropped
  milter connection is a tempfail). Then the socket is removed and the command exits 0.
* SIGHUP: the supervisor reloads the configuration and the pack itself (so that a child started later forks
  from the new pack) and passes the signal on; each child reloads as a single process would.
* A child that dies unexpectedly (killed, crashed) is logged and started again; more than ``MAX_RESTARTS``
  deaths within ``RESTART_WINDOW`` seconds mean something is wrong beyond one message (the store is gone,
  memory is short): the supervisor stops the rest and exits 1 rather than fork in a loop.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from civicaup.channels.socket_activation import notify

log = logging.getLogger("civicaup.prefork")

MAX_RESTARTS = 10
RESTART_WINDOW = 60.0
RESTART_DELAY = 0.5  # between a child's death and its replacement: a crash loop does not spin
_SIGNALS = frozenset({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


@dataclass
class Prefork:
    """Run ``child(sock)`` in ``processes`` forked processes until SIGTERM (see the module docstring).

    ``child`` runs in the forked process and returns its exit status; ``reload`` is called in the supervisor
    on SIGHUP before the children are told; ``cleanup`` runs once, in the supervisor, after the last child.
    """

    name: str
    processes: int
    child: Callable[[socket.socket], int]
    grace: float = 30.0
    reload: Callable[[], object] | None = None
    cleanup: Callable[[], None] | None = None
    children: dict[int, int] = field(default_factory=dict, init=False)  # pid -> slot
    deaths: list[float] = field(default_factory=list, init=False)

    def run(self, sock: socket.socket, banner: str, *, status: str = "") -> int:
        """Fork the children, print ``banner``, supervise until stopped; the command's exit status. The
        supervisor is systemd's main PID: it says READY (with ``status``) and STOPPING, its children nothing."""
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in range(self.processes):
                self._spawn(slot, sock)
            print(banner, flush=True)
            notify("READY=1", *([f"STATUS={status}"] if status else []))
            return self._supervise(sock)
        except BaseException:  # a fork that failed, a bug: the children must not outlive their supervisor
            self._signal_all(signal.SIGTERM)
            raise
        finally:
            if self.cleanup is not None:
                self.cleanup()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    # -- the supervisor

    def _supervise(self, sock: socket.socket) -> int:
        status = 0
        stopping_since: float | None = None
        killed = False
        respawn: list[tuple[float, int]] = []  # (when, slot)
        while True:
            for slot in self._reap(stopping_since is not None):
                now = time.monotonic()
                self.deaths = [t for t in self.deaths if t > now - RESTART_WINDOW] + [now]
                if len(self.deaths) > MAX_RESTARTS:
                    log.error("%s: %d processes died within %.0f s; stopping the rest", self.name,
                              len(self.deaths), RESTART_WINDOW)
                    status, stopping_since = 1, now
                    notify("STOPPING=1")
                    self._signal_all(signal.SIGTERM)
                    respawn.clear()
                else:
                    respawn.append((now + RESTART_DELAY, slot))
            if stopping_since is not None:
                if not self.children:
                    return status
                waited = time.monotonic() - stopping_since
                if waited > self.grace and not killed:
                    log.warning("%s: %d processes still running %.0f s after SIGTERM; killing them", self.name,
                                len(self.children), self.grace)
                    self._signal_all(signal.SIGKILL)
                    killed = True
                elif waited > self.grace + 5.0:
                    log.error("%s: processes %s did not exit", self.name, sorted(self.children))
                    return status or 1
            now = time.monotonic()
            for when, slot in [r for r in respawn if r[0] <= now]:
                respawn.remove((when, slot))
                self._spawn(slot, sock)
            timeout = 1.0
            if respawn:
                timeout = max(0.01, min(w for w, _ in respawn) - now)
            info = signal.sigtimedwait(_SIGNALS, timeout)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                if stopping_since is None:
                    stopping_since = time.monotonic()
                    respawn.clear()
                    notify("STOPPING=1")
                    self._signal_all(signal.SIGTERM)
            elif info.si_signo == signal.SIGHUP and stopping_since is None:
                if self.reload is not None:
                    self.reload()
                self._signal_all(signal.SIGHUP)

    def _reap(self, stopping: bool) -> list[int]:
        """Collect exited children; the slots of those that died while they should have been running."""
        lost: list[int] = []
        while self.children:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid == 0:
                break
            slot = self.children.pop(pid, None)
            if slot is None:
                continue  # not one of ours (a helper some library started)
            if not stopping:
                log.warning("%s: process %d (pid %d) %s; starting another", self.name, slot, pid,
                            _describe(wait_status))
                lost.append(slot)
            elif os.waitstatus_to_exitcode(wait_status) not in (0, -signal.SIGTERM):
                log.warning("%s: process %d (pid %d) %s while stopping", self.name, slot, pid,
                            _describe(wait_status))
        return lost

    def _signal_all(self, signo: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signo)
            except ProcessLookupError:
                pass

    def _spawn(self, slot: int, sock: socket.socket) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.children[pid] = slot
            return
        code = 70  # EX_SOFTWARE, if the child fails before it can say
        try:
            # a SIGHUP before the child's loop installs its reload handler must not end it (the default)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signo, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            os.environ.pop("NOTIFY_SOCKET", None)  # only the supervisor, systemd's main PID, tells it anything
            code = self.child(sock)
        except BaseException:  # noqa: BLE001 - whatever it was, the child must not return into the supervisor
            log.exception("%s: process %d failed", self.name, slot)
        finally:
            from civicaup.operations import metrics
            metrics.exit_child()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _describe(wait_status: int) -> str:
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
