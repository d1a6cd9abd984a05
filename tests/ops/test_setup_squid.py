"""`civicaup setup squid`: squid.conf lines from the configuration, and --apply on a real squid.conf.

Unit tests: the printed lines follow civicaup.toml (helper children, concurrency, error directory, the configuration
file handed to the helper); --apply puts one block after the login rule and before the first allow, keeps a backup
equal to the original, replaces a directive it sets instead of duplicating it, and changes nothing the second time;
bad input is one line and exit 2.

Integration: a real Squid (Debian's package; tests/web_squid/squid_instance.py, its origin server and helpers) whose
base squid.conf has no civicaup line: they come only from `civicaup setup squid --apply --config <file>`. An
unlisted site passes; a site of a blocked category gets the block page quoting Kirkwood's clause.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from civicaup.channels.web.categories import CategoryIndex
from tests.ops.test_setup_postfix import CIVICAUP, backups, block, civicaup, env_for, toml
from tests.web_squid.conftest import KIRKWOOD_PEOPLE, make_lists
from tests.web_squid.squid_instance import (FAKE_AUTH, ORIGIN_MARK, PUBLIC_TMP, SQUID, SquidInstance, helper_launcher,
                                            squid_user)

POLICY = "kirkwood-mo"
CLAUSE_H = "Accessing sites that are pornographic or sites that promulgate violence or terrorism"

SQUID_CONF = """\
# the city's own squid.conf
http_port 127.0.0.1:3128
acl localnet src 10.0.0.0/8
acl Safe_ports port 80
auth_param basic program {auth}
acl authed proxy_auth REQUIRED
http_access deny !Safe_ports
http_access deny !authed
http_access allow localnet
http_access deny all
error_directory /usr/share/squid/errors/templates
"""


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(squid.conf, civicaup.toml, env): the city's squid.conf and a civicaup home whose config names it."""
    conf = tmp_path / "squid.conf"
    conf.write_text(SQUID_CONF.format(auth=FAKE_AUTH))
    home = tmp_path / "home"
    home.mkdir()
    config = home / "civicaup.toml"
    config.write_text(toml({"data_dir": home, "web": {"helper_children": 3, "helper_concurrency": 50,
                                                      "errors_dir": tmp_path / "errors", "squid_config": conf}}))
    return conf, config, env_for(home, config)


def directives(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_printed_lines_follow_the_configuration(scratch: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    conf, config, env = scratch
    r = civicaup(env, "setup", "squid", "--policy", POLICY)
    assert r.returncode == 0, r.stderr
    ext, *rest = directives(r.stdout)
    words = ext.split()
    assert words[:2] == ["external_acl_type", "civicaup"]
    assert "children-max=3" in words and "concurrency=50" in words and "ttl=0" in words
    assert f"CIVICAUP_HOME={tmp_path / 'home'}" in words and f"CIVICAUP_CONFIG={config}" in words
    assert rest == ["acl civicaup_allowed external civicaup", "http_access deny !civicaup_allowed",
                    "deny_info ERR_CIVICAUP civicaup_allowed", f"error_directory {tmp_path / 'errors'}"]
    assert "City of Kirkwood" in (tmp_path / "errors" / "ERR_CIVICAUP").read_text()
    assert conf.read_text() == SQUID_CONF.format(auth=FAKE_AUTH) and not backups(conf.parent, "squid.conf")

    config.write_text(config.read_text().replace("helper_children = 3", "helper_children = 7"))
    r = civicaup(env, "setup", "squid", "--policy", POLICY, "--errors-dir", str(tmp_path / "other"))
    assert r.returncode == 0, r.stderr
    assert "children-max=7" in r.stdout and f"error_directory {tmp_path / 'other'}" in r.stdout


def test_apply_twice_gives_one_block_and_one_backup_equal_to_the_original(
        scratch: tuple[Path, Path, dict[str, str]]) -> None:
    conf, _, env = scratch
    original = conf.read_text()
    r = civicaup(env, "setup", "squid", "--policy", POLICY, "--apply")  # web.squid_config names the file
    assert r.returncode == 0, r.stderr
    [backup] = backups(conf.parent, "squid.conf")
    assert backup.read_text() == original
    text = conf.read_text()
    lines = text.splitlines()
    ours = block(text)
    assert "\n".join(ours) in r.stdout
    # after the login rule (so the helper sees the user), before anything is allowed
    assert lines.index("http_access deny !authed") < lines.index(ours[0])
    assert lines.index(ours[-1]) < lines.index("http_access allow localnet")
    assert "#civicaup-replaced: error_directory /usr/share/squid/errors/templates" in lines
    assert len([ln for ln in directives(text) if ln.startswith("error_directory")]) == 1
    assert "'-' for the user" not in r.stderr

    r = civicaup(env, "setup", "squid", "--policy", POLICY, "--apply")
    assert r.returncode == 0, r.stderr
    assert conf.read_text() == text and len(backups(conf.parent, "squid.conf")) == 1
    assert "squid.conf: unchanged" in r.stderr


def test_without_a_login_rule_the_block_goes_before_the_first_allow_with_a_warning(
        scratch: tuple[Path, Path, dict[str, str]]) -> None:
    conf, _, env = scratch
    conf.write_text(SQUID_CONF.format(auth=FAKE_AUTH).replace("http_access deny !authed\n", ""))
    r = civicaup(env, "setup", "squid", "--policy", POLICY, "--apply", "--config", str(conf))
    assert r.returncode == 0, r.stderr
    lines = conf.read_text().splitlines()
    begin = next(i for i, ln in enumerate(lines) if ln.startswith("# civicaup begin"))
    assert lines.index("http_access deny !Safe_ports") < begin < lines.index("http_access allow localnet")
    assert "'-' for the user" in r.stderr


def test_bad_input_is_one_line_and_exit_2(scratch: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    conf, config, env = scratch
    original = conf.read_text()
    cases = [
        ["setup", "squid", "--policy", "nowhere", "--apply"],
        ["setup", "squid", "--policy", POLICY, "--apply", "--config", str(tmp_path / "missing.conf")],
        ["setup", "squid", "--policy", POLICY, "--helper", str(conf)],  # not executable
    ]
    for args in cases:
        r = civicaup(env, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    config.write_text(config.read_text().replace("helper_children = 3", "helper_children = 0"))
    r = civicaup(env, "setup", "squid", "--policy", POLICY, "--apply")
    assert r.returncode == 2 and "web.helper_children" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert conf.read_text() == original and not backups(conf.parent, "squid.conf")


# ----------------------------------------------------------------------------------------- integration test


class SetupSquid(SquidInstance):
    """The test Squid, its civicaup lines written only by `civicaup setup squid --apply --config <squid.conf>`."""

    def configure(self) -> str:
        user = squid_user()
        launcher = helper_launcher(self.civicaup, self.root, user)
        if launcher is None:
            raise RuntimeError(f"the Squid user {user!r} cannot run {self.civicaup}")
        conf = self.root / "squid.conf"
        conf.write_text(f"""\
http_port 127.0.0.1:{self.port}
visible_hostname civicaup-test
pid_filename {self.root}/squid.pid
cache_effective_user {user}
cache_log stdio:{self.logs}/cache.log
access_log stdio:{self.logs}/access.log squid
cache_store_log none
coredump_dir {self.root}
cache deny all
cache_mem 8 MB
pinger_enable off
netdb_filename none
dns_nameservers 127.0.0.1
shutdown_lifetime 1 seconds
cache_peer 127.0.0.1 parent {self.origin.port} 0 no-query no-digest originserver name=origin
never_direct allow all
auth_param basic program {FAKE_AUTH}
auth_param basic children 2
auth_param basic realm civicaup-test
acl authed proxy_auth REQUIRED
http_access deny !authed
http_access allow all
""")
        config = self.home / "civicaup.toml"
        config.write_text(toml({"data_dir": self.home, "web": {"helper_children": 2, "helper_concurrency": 50,
                                                               "errors_dir": self.root / "errors"}}))
        r = civicaup(env_for(self.home, config), "setup", "squid", "--policy", self.policy, "--apply",
                     "--config", str(conf), "--helper", launcher)
        if r.returncode != 0:
            raise RuntimeError(f"civicaup setup squid --apply failed: {r.stderr}")
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for folder in (self.root, self.home):
            for dirpath, _, filenames in os.walk(folder):
                os.chown(dirpath, uid, gid)
                for name in filenames:
                    os.chown(os.path.join(dirpath, name), uid, gid)
        return conf.read_text()


@pytest.fixture(scope="module")
def squid() -> Iterator[SetupSquid]:
    if SQUID is None or not os.path.exists(FAKE_AUTH):
        pytest.skip("squid is not installed (Debian package 'squid'; CI installs it)")
    if os.geteuid() != 0:
        pytest.skip("starting Squid with its own user needs root")
    home = Path(tempfile.mkdtemp(prefix="civicaup-home-", dir=PUBLIC_TMP))
    os.chmod(home, 0o755)
    lists = Path(tempfile.mkdtemp(prefix="civicaup-lists-"))
    CategoryIndex.build([make_lists(lists)], out=home / "categories.idx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAUP_")}
    r = subprocess.run([CIVICAUP, "directory", "import", str(KIRKWOOD_PEOPLE),
                        "--policy", POLICY], env={**env, "CIVICAUP_HOME": str(home)}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    sq = SetupSquid(CIVICAUP, POLICY, home, {})
    try:
        sq.start()
    except RuntimeError as exc:
        sq.stop()
        sq.cleanup()
        pytest.fail(str(exc))
    yield sq
    sq.stop()
    sq.cleanup()
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(lists, ignore_errors=True)


@pytest.mark.timeout(600)
def test_squid_wired_only_by_setup_passes_and_blocks_with_the_clause(squid: SetupSquid) -> None:
    text = (squid.root / "squid.conf").read_text()
    ours = block(text)
    assert any("children-max=2" in ln and "concurrency=50" in ln for ln in ours)
    assert len(backups(squid.root, "squid.conf")) == 1
    status, body = squid.raw("GET http://plain.example/news HTTP/1.1", "pat.jones", host="plain.example")
    assert status == 200 and ORIGIN_MARK in body
    status, body = squid.raw("GET http://badsite.example/gallery HTTP/1.1", "pat.jones", host="badsite.example")
    assert status == 403 and ORIGIN_MARK not in body
    assert "Blocked by kirkwood-mo rule web-prohibited-sites, clause h:" in body and CLAUSE_H in body
    assert "(category adult)" in body
