"""A small program run by tests/mail/test_prefork.py: civicaup.channels.prefork.Prefork supervising children
that serve a TCP socket (each answers a connection with its pid and a count of the SIGHUPs it saw).

    python prefork_program.py DIR PROCESSES [crash]

Writes DIR/port once listening; the supervisor's reload appends a line to DIR/reloads and its cleanup writes
DIR/cleaned. With ``crash`` every child exits with status 3 at once (a crash loop).
"""
from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from civicaup.channels.prefork import Prefork


def main() -> int:
    where, processes = Path(sys.argv[1]), int(sys.argv[2])
    crash = sys.argv[3:] == ["crash"]
    sock = socket.create_server(("127.0.0.1", 0))

    def child(sock: socket.socket) -> int:
        if crash:
            return 3
        hups = [0]
        stop = [False]

        def on_hup(*_: object) -> None:
            hups[0] += 1

        def on_term(*_: object) -> None:
            stop[0] = True

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_term)
        sock.settimeout(0.1)
        while not stop[0]:
            try:
                conn, _ = sock.accept()
            except (TimeoutError, BlockingIOError, InterruptedError):
                continue
            with conn:
                conn.sendall(f"{__import__('os').getpid()} {hups[0]}\n".encode())
        return 0

    (where / "port").write_text(str(sock.getsockname()[1]))
    return Prefork("test", processes, child, grace=5.0,
                   reload=lambda: (where / "reloads").open("a").write("reload\n"),
                   cleanup=lambda: (where / "cleaned").write_text("yes")).run(sock, "test: listening")


if __name__ == "__main__":
    sys.exit(main())
