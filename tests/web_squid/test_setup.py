"""`civicaup setup squid`: the squid.conf lines and the ERR_CIVICAUP block page template."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import CIVICAUP


def test_setup_squid_prints_the_lines_and_writes_the_template(tmp_path: Path) -> None:
    errors = tmp_path / "errors"
    r = subprocess.run([CIVICAUP, "setup", "squid", "--policy", "kirkwood-mo", "--errors-dir", str(errors)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "CIVICAUP_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x and not x.startswith("#")]
    ext = lines[0].split()
    assert ext[:2] == ["external_acl_type", "civicaup"] and "concurrency=100" in ext and "ttl=0" in ext
    assert ext[ext.index("%>ru"):ext.index("%>ru") + 4] == ["%>ru", "%un", "%>a", "%rm"]
    assert ext[-3:] == ["squid-helper", "--policy", "kirkwood-mo"] and f"CIVICAUP_HOME={tmp_path}" in ext
    assert lines[1:] == ["acl civicaup_allowed external civicaup", "http_access deny !civicaup_allowed",
                         "deny_info ERR_CIVICAUP civicaup_allowed", f"error_directory {errors}"]
    page = (errors / "ERR_CIVICAUP").read_text(encoding="utf-8")
    assert "%o" in page and "%U" in page and "City of Kirkwood" in page
    if Path("/usr/share/squid/errors/templates/ERR_ACCESS_DENIED").exists():
        assert (errors / "ERR_ACCESS_DENIED").exists()  # Squid's other pages keep working


def test_setup_squid_unknown_policy(tmp_path: Path) -> None:
    r = subprocess.run([CIVICAUP, "setup", "squid", "--policy", "nowhere"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "CIVICAUP_HOME": str(tmp_path)})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
