"""`civicaup doctor`: a healthy installation passes (exit 0, warnings allowed); each thing that would stop it
running is a `fail` line saying what and how to fix it (exit 1), never a traceback. Real parts where they are
named: a real PostgreSQL, a real Postfix with the milter in front of it."""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.mail.postfix_instance import PostfixInstance, free_port, postfix_missing

from .conftest import new_pg_database
from .parts import Install, Running, make_install

LINE = re.compile(r"^(ok|warn|fail) +(\S(?:.*?\S)?)\s{2,}(\S.*)$")  # names may hold one space: "pack ID"


def configure(inst: Install, root: Path, extra: str = "") -> None:
    """Only kirkwood-mo; no Postfix or Squid configuration on this (test) host unless *extra* says so."""
    (inst.home / "civicaup.toml").write_text(
        'packs = ["kirkwood-mo"]\n'
        f'[mail]\npostfix_config_dir = "{root / "no-postfix"}"\n'
        f'[web]\nsquid_config = "{root / "no-squid.conf"}"\n' + extra, encoding="utf-8")


def doctor(inst: Install, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str, str]],
                                                                                    str]:
    r = inst.cli("doctor", *args, env=env)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    if "--json" in args:
        return r.returncode, [], r.stdout
    rows = []
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        assert m, f"not 'status  name  message': {line!r}"
        rows.append((m.group(1), m.group(2), m.group(3)))
    return r.returncode, rows, r.stdout


def failing(rows: list[tuple[str, str, str]]) -> dict[str, str]:
    return {name: msg for status, name, msg in rows if status == "fail"}


def test_a_healthy_installation_passes(tmp_path: Path) -> None:
    inst = make_install(tmp_path)
    configure(inst, tmp_path)
    rc, rows, out = doctor(inst)
    assert rc == 0 and failing(rows) == {}, out
    names = {name for _, name, _ in rows}
    assert {"config", "store", "pack kirkwood-mo", "category-index", "time-zone", "clock", "metrics", "postfix",
            "squid"} <= names, out
    status = {name: s for s, name, _ in rows}
    assert status["store"] == status["pack kirkwood-mo"] == status["category-index"] == "ok", out
    assert "schema at" in dict((n, m) for _, n, m in rows)["store"]
    rc, _, text = doctor(inst, "--json")
    report = json.loads(text)
    assert rc == 0 and report["ok"] is True and report["counts"]["fail"] == 0
    assert {c["name"] for c in report["checks"]} == names
    assert all(set(c) == {"status", "name", "message"} for c in report["checks"])


def test_a_broken_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    inst = make_install(tmp_path, index=False, people=False)
    (inst.home / "civicaup.toml").write_text('colour = "blue"\n[mail]\nmax_message_mb = "lots"\n', encoding="utf-8")
    rc, rows, out = doctor(inst)
    assert rc == 1, out
    config_lines = [msg for status, name, msg in rows if name == "config"]
    assert all(s == "fail" for s, n, _ in rows if n == "config") and len(config_lines) == 2, out
    assert any("colour: unknown key" in m for m in config_lines) and any("mail.max_message_mb" in m
                                                                          for m in config_lines), out
    assert "config check" in config_lines[0]
    assert rows[-1][:2] == ("fail", "doctor"), out  # the rest needs a configuration that loads


def test_a_missing_category_index_fails(tmp_path: Path) -> None:
    inst = make_install(tmp_path, index=False)
    configure(inst, tmp_path)
    rc, rows, out = doctor(inst)
    assert rc == 1 and set(failing(rows)) == {"category-index"}, out
    msg = failing(rows)["category-index"]
    assert "does not exist" in msg and "civicaup categories build" in msg
    (inst.home / "categories.idx").write_bytes(b"CAUPIDX\0 not really an index")
    rc, rows, out = doctor(inst)
    assert rc == 1 and "cannot be read" in failing(rows)["category-index"], out


def test_an_unreachable_postgresql_fails_and_hides_the_password(tmp_path: Path) -> None:
    inst = make_install(tmp_path)
    configure(inst, tmp_path)
    url = f"postgresql+psycopg://civicaup:hunter2@127.0.0.1:{free_port()}/civicaup"
    rc, rows, out = doctor(inst, env={"CIVICAUP_DB_URL": url})
    assert rc == 1 and "store" in failing(rows), out
    msg = failing(rows)["store"]
    assert msg.startswith("cannot use postgresql+psycopg://civicaup:***@127.0.0.1:") and "refused" in msg, msg
    assert "hunter2" not in out and "store_url" in msg


def test_a_real_postgresql_store_passes(tmp_path: Path, pg_server: str) -> None:
    inst = make_install(tmp_path, people=False)
    configure(inst, tmp_path)
    url = new_pg_database(pg_server)
    # the first command that opens the store creates and migrates it
    inst.ok("quarantine", "list", "--json", env={"CIVICAUP_DB_URL": url})
    rc, rows, out = doctor(inst, env={"CIVICAUP_DB_URL": url})
    assert rc == 0, out
    store = [m for s, n, m in rows if n == "store"]
    assert store and store[0].startswith("postgresql+psycopg://") and "(newest)" in store[0], out


def test_the_store_schema_and_file_are_checked_without_changing_them(tmp_path: Path) -> None:
    inst = make_install(tmp_path)
    configure(inst, tmp_path)
    db = inst.home / "civicaup.db"
    with sqlite3.connect(db) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        conn.execute("UPDATE alembic_version SET version_num = '0005'")
    rc, rows, out = doctor(inst)
    assert rc == 1 and "schema at 0005" in failing(rows)["store"] and head in failing(rows)["store"], out
    with sqlite3.connect(db) as conn:  # doctor did not migrate it
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0005"
        conn.execute("UPDATE alembic_version SET version_num = 'fffffffff'")
    rc, rows, out = doctor(inst)
    assert rc == 1 and "newer civicaup" in failing(rows)["store"], out
    db.write_bytes(b"this is not a database file" * 200)
    rc, rows, out = doctor(inst)
    assert rc == 1 and failing(rows)["store"].startswith("cannot use sqlite:///"), out


def test_a_clock_behind_the_audit_log_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from civicaup.stores import audit
    from civicaup.stores.db import open_store

    inst = make_install(tmp_path)
    configure(inst, tmp_path)
    monkeypatch.setenv("CIVICAUP_HOME", str(inst.home))
    engine = open_store(f"sqlite:///{inst.home / 'civicaup.db'}")
    ahead = datetime.now(timezone.utc) + timedelta(hours=2)
    audit.append_many(engine, [audit.Pending(ahead, "test", "clock-test", "written by a clock two hours ahead",
                                             "kirkwood-mo", {})])
    engine.dispose()
    rc, rows, out = doctor(inst)
    assert rc == 1 and set(failing(rows)) == {"clock"}, out
    assert "behind the newest audit entry" in failing(rows)["clock"]


def test_squid_wiring_is_checked(tmp_path: Path) -> None:
    inst = make_install(tmp_path)
    conf = tmp_path / "squid.conf"
    closed = free_port()
    configure(inst, tmp_path)
    text = (inst.home / "civicaup.toml").read_text().replace(str(tmp_path / "no-squid.conf"), str(conf))
    (inst.home / "civicaup.toml").write_text(text)
    conf.write_text(f"http_port 127.0.0.1:{closed}\nhttp_access deny all\n")
    rc, rows, out = doctor(inst)
    assert rc == 0 and ("warn", "squid") in {(s, n) for s, n, _ in rows}, out  # not civicaup's proxy
    conf.write_text(f"http_port 127.0.0.1:{closed}\n"
                    "external_acl_type civicaup concurrency=100 ttl=0 %>ru %un %>a %rm /usr/bin/env "
                    f"CIVICAUP_HOME={inst.home} /nonexistent/bin/civicaup squid-helper --policy kirkwood-mo\n")
    rc, rows, out = doctor(inst)
    assert rc == 1 and set(failing(rows)) == {"squid-helper", "squid"}, out
    assert "/nonexistent/bin/civicaup does not exist" in failing(rows)["squid-helper"]
    assert f"127.0.0.1:{closed}" in failing(rows)["squid"] and "refused" in failing(rows)["squid"]


@pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing()))
def test_postfix_and_its_milter_are_checked(tmp_path: Path) -> None:
    inst = make_install(tmp_path, index=True)
    # the milter first, on a port of its own choosing, so Postfix's listeners cannot take it
    milter = Running(inst, "milter", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0", "--no-journal",
                     ready="listening on")
    postfix = PostfixInstance(sink_port=free_port(), milters={"civicaup": f"inet:127.0.0.1:{milter.port()}"})
    try:
        postfix.start()
        configure(inst, tmp_path, f'[listen]\nmilter = "127.0.0.1:{milter.port()}"\n')
        text = (inst.home / "civicaup.toml").read_text().replace(str(tmp_path / "no-postfix"), str(postfix.config))
        (inst.home / "civicaup.toml").write_text(text)
        rc, rows, out = doctor(inst)
        assert rc == 0, out
        status = {(s, n) for s, n, _ in rows}
        assert {("ok", "postfix"), ("ok", "milter"), ("ok", "smtp")} <= status, out
        assert len([1 for s, n, _ in rows if n == "smtp"]) == 4  # every smtpd listener of master.cf greets
        assert milter.stop() == 0
        rc, rows, out = doctor(inst)  # the milter is down now
        assert rc == 1 and set(failing(rows)) == {"milter"}, out
        assert f"127.0.0.1:{milter.port()} does not answer" in failing(rows)["milter"]
        postfix.stop()
        rc, rows, out = doctor(inst)
        assert "smtp" in failing(rows) and "is it running" in failing(rows)["smtp"], out
    finally:
        milter.stop()
        postfix.cleanup()
