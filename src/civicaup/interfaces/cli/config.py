"""`civicaup config check|show|reference`: the configuration file and what is in effect."""
from __future__ import annotations

import json
import sys
from typing import Any

import typer

from civicaup import settings

app = typer.Typer(no_args_is_help=True, help="The configuration: civicaup.toml and CIVICAUP_ variables.")


def missing_packs(cfg: settings.Settings, where: str) -> list[str]:
    """A configured pack that is not installed, one line each."""
    from civicaup.policy.registry import pack_ids

    installed = set(pack_ids())
    return [f"{where}: packs.{i}: no pack {pack!r} is installed (installed: {', '.join(sorted(installed))})"
            for i, pack in enumerate(cfg.packs) if pack not in installed]


def _semantic(cfg: settings.Settings, where: str) -> list[str]:
    """Problems that validate but cannot work: a pack that is not installed, a file that is missing."""
    problems = missing_packs(cfg, where)
    d = cfg.directory
    if d.source == "csv" and d.csv is not None and not d.csv.expanduser().is_file():
        problems.append(f"{where}: directory.csv: {d.csv} does not exist")
    if d.source == "ldap":
        if not d.ldap_url:
            problems.append(f"{where}: directory.ldap_url: needed when directory.source = \"ldap\"")
        if not d.base_dn:
            problems.append(f"{where}: directory.base_dn: needed when directory.source = \"ldap\"")
    if d.bind_password_file is not None and not d.bind_password_file.expanduser().is_file():
        problems.append(f"{where}: directory.bind_password_file: {d.bind_password_file} does not exist")
    if cfg.web.category_index is not None and not cfg.category_index.is_file():
        problems.append(f"{where}: web.category_index: {cfg.category_index} does not exist "
                        "(build it with 'civicaup categories build')")
    if cfg.home.exists() and not cfg.home.is_dir():
        problems.append(f"{where}: data_dir: {cfg.home} is not a directory")
    return problems


def problems() -> list[str]:
    """Every problem with the configuration in effect, one line each (empty when it is fine)."""
    path = settings.config_file()
    where = str(path) if path else "defaults"
    try:
        cfg = settings.read()
    except settings.ConfigError as exc:
        return exc.problems
    return _semantic(cfg, where)


@app.command()
def check() -> None:
    """Validate the configuration: one line per problem (file or variable, key, why); exit 2 if any."""
    found = problems()
    path = settings.config_file()
    if found:
        for line in found:
            print(line, file=sys.stderr)
        raise typer.Exit(2)
    print(f"configuration ok ({path if path else 'no file: defaults and environment'})")


@app.command()
def show(as_json: bool = typer.Option(False, "--json", help="one JSON object")) -> None:
    """Print the effective settings (file, environment, defaults), secrets masked."""
    data = settings.load().masked()
    path = settings.config_file()
    if as_json:
        print(json.dumps({"file": str(path) if path else None, "settings": data}, indent=2))
        return
    print(f"# effective settings; file: {path if path else 'none (defaults and environment)'}")
    print(_toml(data))


def _toml_value(v: Any) -> str:
    if v is None:
        return '""  # unset'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _toml(data: dict[str, Any]) -> str:
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    sections = [f"\n[{k}]\n" + "\n".join(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
                for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(sections)


@app.command()
def reference() -> None:
    """Print the configuration reference (Markdown) generated from the settings model."""
    print(reference_markdown())


def reference_markdown() -> str:
    lines = ["| key | default | environment | meaning |", "|---|---|---|---|"]

    def row(key: str, field: Any, env: str) -> None:
        default = field.default if field.default_factory is None else field.default_factory()
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        if isinstance(default, list):
            default = json.dumps(default)
        if key == "data_dir":
            default = "~/.local/share/civicaup"
        shown = "" if default in (None, "") else f"`{default}`"
        lines.append(f"| `{key}` | {shown} | `{env}` | {field.description or ''} |")

    legacy = {(s + "." + k) if s else k: n for n, (s, k) in settings.LEGACY_ENV.items()}
    for name, field in settings.Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, settings.Section):
            for sub, subfield in ann.model_fields.items():
                key = f"{name}.{sub}"
                env = f"{settings.PREFIX}{name.upper()}__{sub.upper()}"
                row(key, subfield, env + (f"` or `{legacy[key]}" if key in legacy else ""))
        else:
            env = f"{settings.PREFIX}{name.upper()}"
            row(name, field, env + (f"` or `{legacy[name]}" if name in legacy else ""))
    return "\n".join(lines)

