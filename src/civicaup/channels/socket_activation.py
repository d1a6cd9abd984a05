"""systemd's socket activation (sd_listen_fds(3)) and readiness notification (sd_notify(3)), in the standard library.

When a ``.socket`` unit starts its service, systemd passes the listening sockets as file descriptors 3, 4, ...
and sets ``LISTEN_FDS`` (how many), ``LISTEN_PID`` (the pid they are meant for) and ``LISTEN_FDNAMES`` (their
names, ``:``-separated). They are only ours when ``LISTEN_PID`` is our pid: a variable inherited from a parent
is not an invitation. The variables are removed once read, so processes we start do not take them for theirs,
and the descriptors are made close-on-exec, as sd_listen_fds() does.

A ``Type=notify`` service tells systemd when it listens (``READY=1``), reloads (``RELOADING=1``, then ``READY=1``)
and stops (``STOPPING=1``) with one datagram to ``$NOTIFY_SOCKET``; without that variable :func:`notify` does
nothing, so the same code runs under systemd, in a terminal and in tests.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from civicaup.errors import CivicaupError

LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(CivicaupError):
    """systemd said it passed sockets, but what is there is not a listening stream socket."""


@dataclass(frozen=True)
class Passed:
    """One socket systemd passed: the socket object and its name (FileDescriptorName=, or the unit's name)."""
    sock: socket.socket
    name: str

    def address(self) -> str:
        """``unix:PATH`` or ``inet:HOST:PORT``, as the milter prints where it listens."""
        where = self.sock.getsockname()
        if self.sock.family == socket.AF_UNIX:
            path = where.decode("utf-8", "replace") if isinstance(where, bytes) else where
            return f"unix:{path.lstrip(chr(0)) or '(unnamed)'}"
        host, port = where[0], where[1]
        return f"inet:[{host}]:{port}" if self.sock.family == socket.AF_INET6 else f"inet:{host}:{port}"


def listen_fds(*, unset_environment: bool = True, environ: dict[str, str] | None = None) -> list[Passed]:
    """The sockets systemd passed to this process, in order (empty when it passed none).

    Raises ActivationError when the variables are malformed or a descriptor is not a listening stream socket:
    a service started by its socket unit must not fall back to listening somewhere else without saying so."""
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    names = env.get("LISTEN_FDNAMES", "")
    if unset_environment:
        for name in _VARIABLES:
            env.pop(name, None)
    if not pid or not count:
        return []
    if not pid.isdigit() or int(pid) != os.getpid():
        return []
    if not count.isdigit() or int(count) < 1:
        raise ActivationError(f"LISTEN_FDS={count!r} is not a positive number")
    labels = names.split(":") if names else []
    passed = []
    for i in range(int(count)):
        fd = LISTEN_FDS_START + i
        try:
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)  # family and type are read from the descriptor
        except OSError as exc:
            raise ActivationError(f"descriptor {fd} from systemd is not a socket: {exc.strerror or exc}") from None
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.detach()
            raise ActivationError(f"descriptor {fd} from systemd is not a listening stream socket "
                                  "(the .socket unit needs ListenStream= and Accept=no)")
        passed.append(Passed(sock, labels[i] if i < len(labels) else "unknown"))
    return passed


def notify(*fields: str) -> bool:
    """Send ``KEY=VALUE`` lines to systemd (sd_notify); False when not run by systemd or the message was lost."""
    where = os.environ.get("NOTIFY_SOCKET", "")
    if not where or not fields:
        return False
    if where.startswith("@"):  # an abstract socket name
        where = "\0" + where[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode("utf-8", "replace"), where)
        return True
    except OSError:
        return False
