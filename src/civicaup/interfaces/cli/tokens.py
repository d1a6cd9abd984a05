"""`civicaup token create|list|revoke` and `civicaup serve` (REST API + console)."""
from __future__ import annotations

import contextlib
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Optional

import typer

from civicaup import settings
from civicaup.errors import InputError
from civicaup.governance import tokens
from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store

app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the REST API and the console.")
POLICY = typer.Option(..., "--policy", help="pack id")


@app.command()
def create(as_email: str = typer.Option(..., "--as", help="the person the token acts as"), policy: str = POLICY,
           days: Optional[float] = typer.Option(None, "--days", help="lifetime in days (at most 366; default "
                                                                     "tokens.lifetime_days of the configuration, 30)"),
           label: str = typer.Option("", "--label", help="what the token is for"),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """A bearer token acting as this person; printed once, only its hash is stored."""
    get_pack(policy)
    if days is None:
        days = float(settings.load().tokens.lifetime_days)
    issued = tokens.create(open_store(), policy, as_email, days=days, label=label)
    if as_json:
        emit_json({"id": issued.id, "token": issued.token, "expires_at": issued.expires_at.isoformat()})
        return
    print(issued.token)
    print(f"token {issued.id} for {as_email.lower()} in {policy}, expires {issued.expires_at.isoformat()}; "
          "it is shown only now", file=sys.stderr)


@app.command("list")
def list_(policy: str = POLICY, as_json: bool = typer.Option(False, "--json")) -> None:
    """Tokens of a city (never the tokens themselves)."""
    get_pack(policy)
    rows = tokens.listing(open_store(), policy)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        print(f"{r['id']:<5} {r['email']:40} expires {r['expires_at'][:19]} {'revoked' if r['revoked'] else ''} "
              f"{r['label']}")


@app.command()
def revoke(token_id: int = typer.Argument(..., metavar="ID"), policy: str = POLICY) -> None:
    """Revoke a token at once."""
    get_pack(policy)
    tokens.revoke(open_store(), policy, token_id)
    print(f"revoked token {token_id}")


def _log_setup(level: Optional[str]) -> None:
    """The shared log format ([log] in the configuration); a bad --log-level is an input error."""
    from civicaup.operations import logs

    try:
        logs.configure(level=level)
    except ValueError as exc:
        raise InputError(f"--log-level: {exc}") from None


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise InputError(f"--listen {value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopping gracefully on SIGTERM/SIGINT and then exiting 0 (uvicorn would re-raise
        the signal, so a service manager would see the process killed rather than stopped)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            def stop(_sig: int, _frame: object) -> None:
                self.should_exit = True

            before = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, h in before.items():
                    signal.signal(s, h)

    return Server


def serve(policy: list[str] = typer.Option(..., "--policy", help="pack id; repeat to serve several cities"),
          listen: Optional[str] = typer.Option(None, "--listen", help="HOST:PORT (default listen.api, "
                                                                      "127.0.0.1:8080)"),
          log_level: Optional[str] = typer.Option(None, "--log-level",
                                                  help="debug, info, warning or error (default: [log] level)")) -> None:
    """REST API (/v1, OpenAPI at /openapi.json), web console (/console) and /metrics. Stops cleanly on SIGTERM."""
    import uvicorn

    from civicaup.interfaces.api.app import create_app
    from civicaup.operations import logs
    from civicaup.operations.reload import Reloader

    _log_setup(log_level)
    Reloader(policy, part="serve").install_signal()  # SIGHUP: the configuration and the packs, read again
    host, port = _listen(listen or settings.load().listen.api)
    engine = open_store()
    app = create_app(policies=policy, engine=engine)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"civicaup serving {', '.join(policy)} on http://{shown}:{bound}/ (API /v1, console /console)", flush=True)
    server = _server_class()(uvicorn.Config(app, log_level=logs.level_name(), access_log=False, lifespan="off",
                                            log_config=None))  # uvicorn's records go through our handler
    from civicaup.channels.socket_activation import notify
    notify("READY=1", f"STATUS=serving on {shown}:{bound}")  # connections wait in the backlog until uvicorn runs
    server.run(sockets=[sock])
    print("civicaup: stopped", flush=True)
