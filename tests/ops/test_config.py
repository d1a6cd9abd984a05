"""The configuration file: civicaup.toml, CIVICAUP_ variables over it, `config check|show|reference`, and a broken
configuration, missing pack or unreachable database giving one line and exit 2 from every command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from civicaup import settings
from civicaup.interfaces.cli.config import reference_markdown

EXE = Path(sys.executable).with_name("civicaup")


def run(*args: str, home: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAUP_")}
    env["CIVICAUP_HOME"] = str(home)
    env.update(extra or {})
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_no_file_means_defaults_and_check_passes(home: Path) -> None:
    r = run("config", "check", home=home)
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout
    shown = json.loads(run("config", "show", "--json", home=home).stdout)
    assert shown["file"] is None
    assert shown["settings"]["data_dir"] == str(home)
    assert shown["settings"]["listen"]["milter"] == "127.0.0.1:8890"


def test_file_in_home_is_read_and_environment_wins(home: Path) -> None:
    (home / "civicaup.toml").write_text('packs = ["kirkwood-mo"]\n[mail]\nnext_hop = "127.0.0.1:2525"\n'
                                        '[listen]\nmilter = "unix:/run/civicaup/milter.sock"\n')
    shown = json.loads(run("config", "show", "--json", home=home,
                           extra={"CIVICAUP_MAIL__NEXT_HOP": "127.0.0.1:2626"}).stdout)
    assert shown["file"] == str(home / "civicaup.toml")
    s = shown["settings"]
    assert s["packs"] == ["kirkwood-mo"]
    assert s["listen"]["milter"] == "unix:/run/civicaup/milter.sock"
    assert s["mail"]["next_hop"] == "127.0.0.1:2626"  # the variable beats the file


def test_old_variable_names_still_work(home: Path) -> None:
    shown = json.loads(run("config", "show", "--json", home=home,
                           extra={"CIVICAUP_CLAMD": "tcp:127.0.0.1:3310",
                                  "CIVICAUP_MAIL_NEXT_HOP": "127.0.0.1:10099"}).stdout)
    assert shown["settings"]["mail"]["clamd"] == "tcp:127.0.0.1:3310"
    assert shown["settings"]["mail"]["next_hop"] == "127.0.0.1:10099"


def test_check_reports_every_problem_with_file_key_and_why(home: Path) -> None:
    cfg = home / "civicaup.toml"
    cfg.write_text('packs = ["springfield-il"]\nbogus = 1\n[mail]\nnext_hop = "nohost"\n'
                   '[listen]\nmilter = "unix:relative.sock"\n')
    r = run("config", "check", home=home, extra={"CIVICAUP_LOG__LEVEL": "chatty"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert f"{cfg}: mail.next_hop: 'nohost' is not HOST:PORT" in lines
    assert f"{cfg}: bogus: unknown key" in lines
    assert any(line.startswith(f"{cfg}: listen.milter:") and "absolute path" in line for line in lines)
    assert any(line.startswith("environment CIVICAUP_LOG__LEVEL: log.level:") for line in lines)
    # the pack check needs a file that validates first
    cfg.write_text('packs = ["springfield-il"]\n')
    line = one_line(run("config", "check", home=home))
    assert line.startswith(f"{cfg}: packs.0: no pack 'springfield-il' is installed")


def test_secrets_are_masked(home: Path) -> None:
    (home / "civicaup.toml").write_text(
        'store_url = "postgresql+psycopg://civicaup:s3cret-pw@127.0.0.1:5432/civicaup"\n'
        '[directory]\nsource = "ldap"\nldap_url = "ldap://127.0.0.1"\nbase_dn = "dc=x"\n')
    r = run("config", "show", home=home)
    assert r.returncode == 0, r.stderr
    assert "s3cret-pw" not in r.stdout
    assert "civicaup:***@127.0.0.1:5432/civicaup" in r.stdout
    # a password in civicaup.toml is refused: the bind password lives in its own file
    (home / "civicaup.toml").write_text('[directory]\nbind_password = "hunter2"\n')
    line = one_line(run("config", "check", home=home))
    assert "directory.bind_password: unknown key" in line and "hunter2" not in line


@pytest.mark.parametrize("args", [("policy", "list"), ("check", "url", "http://example.org/", "--policy", "kirkwood-mo"),
                                  ("quarantine", "list"), ("audit", "verify")])
def test_broken_file_is_one_line_and_exit_2_from_every_command(home: Path, args: tuple[str, ...]) -> None:
    (home / "civicaup.toml").write_text("[mail\nnext_hop = 1\n")
    line = one_line(run(*args, home=home))
    assert line.startswith(f"civicaup: {home / 'civicaup.toml'}: not valid TOML")


@pytest.mark.parametrize("args", [("policy", "list"), ("check", "software", "nmap", "--policy", "kirkwood-mo")])
def test_configured_pack_missing_is_one_line_and_exit_2(home: Path, args: tuple[str, ...]) -> None:
    (home / "civicaup.toml").write_text('packs = ["kirkwood-mo", "gotham-nj"]\n')
    line = one_line(run(*args, home=home))
    assert "packs.1: no pack 'gotham-nj' is installed" in line


def test_a_pack_not_enabled_is_refused(home: Path) -> None:
    (home / "civicaup.toml").write_text('packs = ["ky-36-082"]\n')
    line = one_line(run("check", "url", "http://example.org/", "--policy", "kirkwood-mo", home=home))
    assert "not enabled" in line
    assert run("check", "url", "http://example.org/", "--policy", "ky-36-082", home=home).returncode == 0


def test_unreachable_database_is_one_line_and_exit_2(home: Path) -> None:
    url = "postgresql+psycopg://civicaup:pw@127.0.0.1:9/civicaup"  # discard port: nothing listens
    for args in (("quarantine", "list"), ("audit", "verify"), ("archive", "search", "x", "--policy", "kirkwood-mo")):
        line = one_line(run(*args, home=home, extra={"CIVICAUP_DB_URL": url}))
        assert line.startswith("civicaup: cannot open the store 127.0.0.1:9/civicaup"), line
        assert ":pw@" not in line


def test_reference_lists_every_key() -> None:
    text = reference_markdown()
    for name, field in settings.Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, settings.Section):
            for sub in ann.model_fields:
                assert f"| `{name}.{sub}` |" in text
        else:
            assert f"| `{name}` |" in text


def test_load_is_cached_until_the_file_changes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    for k in [k for k in os.environ if k.startswith("CIVICAUP_") and k != "CIVICAUP_HOME"]:
        monkeypatch.delenv(k)
    cfg = home / "civicaup.toml"
    cfg.write_text("[tokens]\nlifetime_days = 30\n")
    first = settings.load()
    assert first.tokens.lifetime_days == 30 and settings.load() is first
    cfg.write_text("[tokens]\nlifetime_days = 45\n")
    os.utime(cfg, ns=(first_mtime := cfg.stat().st_mtime_ns + 1_000_000, first_mtime))
    assert settings.load().tokens.lifetime_days == 45
    assert settings.reload().tokens.lifetime_days == 45


def test_admin_guide_reference_is_the_generated_one() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "admin-guide.md").read_text(encoding="utf-8")
    begin, end = "<!-- config-reference:begin -->\n", "\n<!-- config-reference:end -->"
    block = guide[guide.index(begin) + len(begin):guide.index(end)]
    assert block == reference_markdown(), "docs/admin-guide.md is stale: paste `civicaup config reference` in"


def test_pinned_settings_change_only_on_reload(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(home))
    cfg = home / "civicaup.toml"
    cfg.write_text("[tokens]\nlifetime_days = 30\n")
    try:
        pinned = settings.pin(settings.reload())
        cfg.write_text("[tokens]\nlifetime_days = 31\n")
        os.utime(cfg, ns=(t := cfg.stat().st_mtime_ns + 1_000_000, t))
        assert settings.load() is pinned  # a service does not follow the file by itself
        cfg.write_text("[tokens]\nlifetime_days = 0\n")  # broken: the reload fails, nothing changes
        with pytest.raises(settings.ConfigError):
            settings.reload()
        assert settings.load() is pinned
        cfg.write_text("[tokens]\nlifetime_days = 45\n")
        assert settings.reload().tokens.lifetime_days == 45 and settings.load().tokens.lifetime_days == 45
    finally:
        settings.unpin()
