"""`civicaup social ...` as a city's scripts call it: the DESIGN.md line contract of `social ingest`, bad lines,
and the moderators' and directors' commands. One test runs the installed command; the rest call `main()` in
process (same code path, faster)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from civicaup.interfaces.cli.app import main

from .test_platforms import FB_FEED

P = "west-des-moines-ia"
DIRECTORY = Path(__file__).resolve().parents[2] / "src" / "civicaup" / "policy" / "packs" / P / "directory.csv"
PROFANE = "Fix the damn potholes on Grand Ave already, you useless bunch of assholes."
DEFAME = "Officer Drew Peterson is a crook who steals cash from the evidence room, everyone at the station knows it."


def civicaup(*args: str, stdin: str | None = None, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CIVICAUP_HOME=str(home))
    exe = Path(sys.executable).with_name("civicaup")
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))

    def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["civicaup", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exc:
            main()
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err
    return _run


def _lines(*items: object) -> str:
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items)


def test_ingest_contract_one_line_per_item_bad_lines_and_exit_2(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    stdin = _lines(
        {"id": "c1", "account": "facebook:wdmparks", "author": "fb:1", "kind": "comment", "text": PROFANE,
         "at": "2026-03-03T10:00"},
        "this is not json",
        {"id": "c2", "account": "facebook:wdmparks", "author": "fb:1", "kind": "comment"},  # no text
        "",
        {"id": 7, "account": "facebook:wdmparks", "author": "fb:1", "kind": "comment", "text": "Still a shit job.",
         "at": "2026-03-03T11:00-06:00"},
        {"id": "c3", "account": "facebook:wdmparks", "author": "fb:2", "kind": "comment", "text": "Thanks!",
         "at": "yesterday"},
        {"id": "c4", "account": "facebook:wdmparks", "author": "fb:3", "text": "Great job on the parade!"},
    )
    r = civicaup("social", "ingest", "-", "--policy", P, stdin=stdin, home=home)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "civicaup: 3 line(s) could not be ingested" and "Traceback" not in r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["c1", None, "c2", 7, "c3", "c4"]
    ok = [o for o in out if "error" not in o]
    for o in ok:
        assert list(o) == ["id", "decision", "moderation"] and list(o["moderation"]) == ["action", "author"]
        assert {"action", "findings"} <= set(o["decision"])
    assert [o["moderation"] for o in ok] == [{"action": "remove", "author": "warned"},
                                            {"action": "remove", "author": "blocked"},
                                            {"action": "keep", "author": "ok"}]
    errors = [o for o in out if "error" in o]
    assert all(list(o) == ["id", "error"] and "\n" not in o["error"] for o in errors)
    assert errors[0]["error"].startswith("line 2: not JSON") and '"text"' in errors[1]["error"]
    assert '"at"' in errors[2]["error"]
    # the same lines again (in process, same store): same answers, nobody warned twice
    rc, out_again, _ = run("social", "ingest", "-", "--policy", P, stdin=stdin)
    assert rc == 2 and out_again == r.stdout


def test_convert_pipes_into_ingest(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "feed.json"
    export.write_text(json.dumps(FB_FEED), encoding="utf-8")
    rc, out, err = run("social", "convert", "--from", "facebook", str(export), "--account", "facebook:wdmparks")
    assert rc == 0, err
    items = [json.loads(x) for x in out.splitlines()]
    assert all(set(i) == {"id", "account", "author", "kind", "text", "at"} for i in items)
    rc, answers, err = run("social", "ingest", "-", "--policy", P, stdin=out)
    assert rc == 0, err
    assert [json.loads(x)["moderation"]["action"] for x in answers.splitlines()].count("remove") == 1


def test_moderator_workflow_from_the_command_line(run) -> None:  # type: ignore[no-untyped-def]
    assert run("directory", "import", str(DIRECTORY), "--policy", P)[0] == 0
    rc, out, err = run("social", "account", "add", "--policy", P, "--platform", "facebook", "--handle", "WDMParks",
                       "--department", "Parks and Recreation", "--director", "morgan.ellis@wdm.iowa.gov",
                       "--email", "parks@wdm.iowa.gov", "--moderator", "jamie.olson@wdm.iowa.gov",
                       "--credentials-changed", "2026-01-05", "--json")
    assert rc == 0, err
    acc = json.loads(out)
    assert acc["created"] and acc["account"] == "facebook:wdmparks" and acc["task"] is None
    rc, out, _ = run("social", "account", "list", "--policy", P, "--json")
    [a] = json.loads(out)
    assert a["moderators"] == ["jamie.olson@wdm.iowa.gov"] and a["credentials_changed_at"].startswith("2026-01-05")

    stdin = _lines({"id": "c1", "account": "facebook:wdmparks", "author": "fb:9", "kind": "comment", "text": DEFAME,
                    "at": "2026-03-03T10:00"})
    rc, out, _ = run("social", "ingest", "-", "--policy", P, stdin=stdin)
    assert rc == 0 and json.loads(out)["moderation"] == {"action": "keep", "author": "ok"}
    rc, out, _ = run("social", "queue", "--policy", P, "--json")
    [q] = json.loads(out)
    assert q["id"] == "c1" and q["suggestions"][0]["clause"] == "Prohibited Content ¶6"
    rc, out, _ = run("social", "queue", "--policy", P)
    assert "Prohibited Content ¶6" in out

    rc, _, err = run("social", "moderate", "c1", "--action", "remove", "--as", "taylor.nguyen@wdm.iowa.gov")
    assert rc == 2 and "may not moderate" in err and len(err.strip().splitlines()) == 1
    rc, out, err = run("social", "moderate", "c1", "--action", "remove", "--as", "jamie.olson@wdm.iowa.gov", "--json")
    assert rc == 0, err
    assert json.loads(out)["moderation"] == {"action": "remove", "author": "warned"}
    rc, out, _ = run("social", "removals", "--policy", P, "--json")
    [rec] = json.loads(out)
    assert rec["text"] == DEFAME and rec["clause"] == "Prohibited Content ¶6" and rec["reason"]
    rc, out, _ = run("social", "commenters", "--policy", P, "--json")
    [c] = json.loads(out)
    assert c["author"] == "fb:9" and c["status"] == "warned" and c["history"][0]["by"] == "jamie.olson@wdm.iowa.gov"

    rc, out, _ = run("social", "account", "add", "--policy", P, "--platform", "facebook", "--handle", "wdmparks",
                     "--moderator", "riley.thompson@wdm.iowa.gov")
    assert rc == 0 and "task 1:" in out
    rc, out, _ = run("social", "task", "list", "--policy", P, "--json")
    [t] = json.loads(out)
    assert t["kind"] == "rotate-credentials" and t["status"] == "open"
    assert run("social", "task", "close", "1", "--policy", P, "--as", "morgan.ellis@wdm.iowa.gov")[0] == 0
    assert json.loads(run("social", "task", "list", "--policy", P, "--json")[1]) == []

    rc, out, _ = run("social", "report", "--policy", P, "--week", "2026-03-03", "--json")
    r = json.loads(out)
    assert r["not_updated"] == ["facebook:wdmparks"] and r["accounts"][0]["updates"] == 0
    rc, out, _ = run("social", "report", "--policy", P, "--week", "2026-03-03")
    assert rc == 0 and "LOW" in out and "Social Computing Guidelines ¶7" in out
    assert run("audit", "verify")[0] == 0


@pytest.mark.parametrize("args", [
    ["social", "ingest", "/nonexistent.jsonl", "--policy", P],
    ["social", "ingest", "-", "--policy", "springfield-xx"],
    ["social", "ingest", "-", "--policy", P, "--strikes", "planet"],
    ["social", "convert", "--from", "myspace", "/dev/null"],
    ["social", "report", "--policy", P, "--week", "soon"],
    ["social", "moderate", "nope", "--action", "keep", "--as", "a@b.gov"],
    ["social", "account", "add", "--policy", P, "--platform", "facebook", "--handle", "x"],
    ["social", "task", "close", "99", "--policy", P, "--as", "a@b.gov"],
])
def test_bad_input_gives_exit_2_and_one_line(run, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = run(*args, stdin="")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_check_posts_keeps_its_contract_on_the_shared_reader(run) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = run("check", "posts", "-", "--policy", P,
                       stdin='{"id": 1, "text": "hello"}\nnot json\n{"id": 2}\n\n{"id": 3, "text": "bye"}\n')
    assert rc == 2 and err.strip() == "civicaup: 2 line(s) could not be checked"
    out_ = [json.loads(x) for x in out.splitlines()]
    assert [o.get("id") for o in out_] == [1, None, None, 3]  # a line without text has no id, as before
    assert out_[2] == {"id": None, "error": 'line 3: needs an object with a string "text"'}
