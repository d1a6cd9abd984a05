"""The `civicaup` command: one Typer app, errors translated once in `main`."""
from __future__ import annotations

import sys

import typer

from civicaup.errors import CivicaupError
from civicaup import settings
from civicaup.interfaces.cli import audit, categories, check, directory, policy
from civicaup.interfaces.cli import config as config_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="civicaup: a city's acceptable-use policy, run as software. Every decision cites its clause.")
app.add_typer(policy.app, name="policy")
app.add_typer(check.app, name="check")
app.add_typer(categories.app, name="categories")
app.add_typer(directory.app, name="directory")
app.add_typer(audit.app, name="audit")
app.add_typer(config_cli.app, name="config")


@app.callback()
def _settings(ctx: typer.Context) -> None:
    """civicaup: a city's acceptable-use policy, run as software. Every decision cites its clause."""
    # every command starts from a valid configuration; `config check` lists every problem itself
    if ctx.invoked_subcommand not in ("config", "doctor"):  # doctor reports a broken configuration itself
        cfg = settings.load()
        if cfg.packs:
            path = settings.config_file()
            missing = config_cli.missing_packs(cfg, str(path) if path else "environment CIVICAUP_PACKS")
            if missing:
                raise settings.ConfigError(missing)


# Channel front ends register their commands here, one line each (long-running parts and reports).
from civicaup.interfaces.cli import doctor as doctor_cli; app.command("doctor")(doctor_cli.doctor)  # noqa: E402,E702
from civicaup.interfaces.cli import setup_systemd  # noqa: E402,F401 - adds 'setup systemd'
from civicaup.interfaces.cli import backup as backup_cli; backup_cli.register(app)  # noqa: E402,E702 - backup, restore
from civicaup.interfaces.cli import acks as acks_cli, approvals as approvals_cli, cases as cases_cli, inventory as inventory_cli, tokens as tokens_cli  # noqa: E402,E501
app.add_typer(approvals_cli.request_app, name="request")
app.add_typer(approvals_cli.approvals_app, name="approvals")
app.add_typer(inventory_cli.app, name="inventory")
app.add_typer(acks_cli.ack_app, name="ack")
app.add_typer(acks_cli.training_app, name="training")
app.add_typer(cases_cli.app, name="case")
app.add_typer(tokens_cli.app, name="token")
app.command("serve")(tokens_cli.serve)
from civicaup.interfaces.cli import report as report_cli, setup as setup_cli, squid as squid_cli  # noqa: E402
app.command("squid-helper")(squid_cli.squid_helper)
app.add_typer(setup_cli.app, name="setup")
app.add_typer(report_cli.app, name="report")
from civicaup.interfaces.cli import records as records_cli  # noqa: E402
app.add_typer(records_cli.archive_app, name="archive")
app.add_typer(records_cli.hold_app, name="hold")
app.add_typer(records_cli.retention_app, name="retention")
app.add_typer(records_cli.records_app, name="records")
from civicaup.interfaces.cli import social as social_cli  # noqa: E402
app.add_typer(social_cli.app, name="social")
from civicaup.interfaces.cli import mail as mail_cli  # noqa: E402
app.command("milter")(mail_cli.milter)
app.command("relay")(mail_cli.relay)
app.add_typer(mail_cli.quarantine_app, name="quarantine")


def main() -> None:
    """Run the CLI: exit 0 on success or any decision, 2 with one line on bad input, 1 when a check fails."""
    try:
        rc = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("civicaup: aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: missing argument, bad option value
        ctx = getattr(exc, "ctx", None)
        sub = ctx.command_path.partition(" ")[2] if ctx is not None else ""
        hint = f" (see 'civicaup {sub} --help')" if sub else ""
        print(f"civicaup: {exc.format_message().splitlines()[0]}{hint}", file=sys.stderr)
        sys.exit(2)
    except CivicaupError as exc:
        print(f"civicaup: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        print(f"civicaup: internal error: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


@app.command()
def demo(policy: str = typer.Option("kirkwood-mo", "--policy", help="pack id")) -> None:
    """Check sample messages, URLs and programs against a seed policy and print the decisions."""
    from civicaup.demo import run_demo

    run_demo(policy)
