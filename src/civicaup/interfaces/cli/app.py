"""The `civicaup` command: one Typer app, errors translated once in `main`."""
from __future__ import annotations

import sys

import typer

from civicaup.errors import CivicaupError
from civicaup.interfaces.cli import audit, categories, check, directory, policy

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="civicaup: a city's acceptable-use policy, run as software. Every decision cites its clause.")
app.add_typer(policy.app, name="policy")
app.add_typer(check.app, name="check")
app.add_typer(categories.app, name="categories")
app.add_typer(directory.app, name="directory")
app.add_typer(audit.app, name="audit")
# Channel front ends register their commands here, one line each (long-running parts and reports).


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
