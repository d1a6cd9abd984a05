"""The command-line contract of DESIGN.md, called from outside as a city's scripts would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCEN = Path(__file__).parent / "scenarios" / "kirkwood-mo"


def civicaup(*args: str, stdin: str | None = None, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if home is not None:
        env["CIVICAUP_HOME"] = str(home)
    exe = Path(sys.executable).with_name("civicaup")
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _one_line_error(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_policy_list_prints_one_id_a_line(home: Path) -> None:
    r = civicaup("policy", "list", home=home)
    assert r.returncode == 0
    assert {"kirkwood-mo", "ste-genevieve-mo", "ky-36-082", "west-des-moines-ia", "rosemount-mn"} <= set(
        r.stdout.split())


def test_check_url_json_is_one_decision_object(home: Path) -> None:
    r = civicaup("check", "url", "http://www.pornhub.com/", "--policy", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["action"] == "block"
    f = d["findings"][0]
    assert {"rule", "clause", "category", "action", "approvers", "evidence", "exempted_by"} <= set(f)
    assert f["clause"] == "h" and f["category"] == "adult"


def test_law_enforcement_role_is_logged_not_blocked(home: Path) -> None:
    r = civicaup("check", "url", "http://www.pornhub.com/", "--policy", "kirkwood-mo", "--role", "law-enforcement",
                 "--json", home=home)
    d = json.loads(r.stdout)
    assert d["action"] == "log" and d["findings"][0]["exempted_by"] == "law-enforcement"


def test_check_mail_all_users_is_held_for_department_head(home: Path) -> None:
    r = civicaup("check", "mail", str(SCEN / "all-users-picnic.eml"), "--policy", "kirkwood-mo", "--json", home=home)
    d = json.loads(r.stdout)
    assert d["action"] == "hold" and d["findings"][0]["approvers"] == ["department-head"]


def test_check_mail_human_output_quotes_the_clause(home: Path) -> None:
    r = civicaup("check", "mail", str(SCEN / "all-users-picnic.eml"), "--policy", "kirkwood-mo", home=home)
    assert r.returncode == 0 and "clause d" in r.stdout and "all-users email address" in r.stdout


def test_check_software_and_hardware(home: Path) -> None:
    r = civicaup("check", "software", "WhatsApp Desktop", "--policy", "kirkwood-mo", "--json", home=home)
    assert json.loads(r.stdout)["action"] == "block"
    r = civicaup("check", "hardware", "USB flash drive", "--policy", "ky-36-082", "--json", home=home)
    d = json.loads(r.stdout)
    assert d["action"] == "hold" and set(d["findings"][0]["approvers"]) == {"mayor", "police-chief"}


def test_check_post_and_posts_batch(home: Path, tmp_path: Path) -> None:
    post = tmp_path / "post.txt"
    post.write_text("Thanks for fixing the potholes on Main Street!", encoding="utf-8")
    r = civicaup("check", "post", str(post), "--policy", "west-des-moines-ia", "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout)["action"] == "allow"
    lines = "\n".join(json.dumps(x) for x in [{"id": "a", "text": "Great parade!"},
                                               {"id": "b", "text": "Vote for Jane Smith for city council!"}])
    r = civicaup("check", "posts", "-", "--policy", "west-des-moines-ia", stdin=lines + "\n", home=home)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and [o["id"] for o in out] == ["a", "b"]
    assert out[0]["decision"]["action"] == "allow" and out[1]["decision"]["action"] != "allow"


def test_posts_batch_reports_a_bad_line_and_keeps_going(home: Path) -> None:
    r = civicaup("check", "posts", "-", "--policy", "west-des-moines-ia",
                 stdin='{"id": 1, "text": "hello"}\nnot json\n{"id": 3, "text": "bye"}\n', home=home)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 2 and [o.get("id") for o in out] == [1, None, 3] and "error" in out[1]


@pytest.mark.parametrize("args", [
    ["check", "url", "ht!tp://::::/", "--policy", "kirkwood-mo"],
    ["check", "url", "http://www.example.com/", "--policy", "springfield-xx"],
    ["check", "mail", "/nonexistent/file.eml", "--policy", "kirkwood-mo"],
    ["check", "url", "http://x.com/", "--policy", "kirkwood-mo", "--at", "tuesday"],
    ["check", "url", "http://x.com/", "--policy", "kirkwood-mo", "--role", "wizard"],
    ["policy", "show", "nope"],
    ["check", "url"],
])
def test_bad_input_gives_exit_2_and_one_line(home: Path, args: list[str]) -> None:
    _one_line_error(civicaup(*args, home=home))


def test_url_of_5000_characters_gets_a_decision(home: Path) -> None:
    url = "http://www.example.com/" + "a/" * 2500
    r = civicaup("check", "url", url, "--policy", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout)["action"] in {"allow", "log"}


def test_binary_garbage_mail_gets_a_decision(home: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.eml"
    junk.write_bytes(os.urandom(20000))
    r = civicaup("check", "mail", str(junk), "--policy", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0 and "action" in json.loads(r.stdout), r.stderr


def test_truncated_mime_gets_a_decision(home: Path, tmp_path: Path) -> None:
    raw = (SCEN / "exe-attachment.eml").read_bytes()
    cut = tmp_path / "cut.eml"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    r = civicaup("check", "mail", str(cut), "--policy", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0, r.stderr


def test_ten_thousand_part_message_gets_a_decision(home: Path, tmp_path: Path) -> None:
    parts = "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(10000))
    msg = tmp_path / "many.eml"
    msg.write_text("From: a@kirkwoodmo.org\nTo: b@kirkwoodmo.org\nSubject: many\nMIME-Version: 1.0\n"
                   "Content-Type: multipart/mixed; boundary=b\n\n" + parts + "--b--\n", encoding="utf-8")
    r = civicaup("check", "mail", str(msg), "--policy", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0 and "action" in json.loads(r.stdout), r.stderr


def test_policy_coverage_json_lists_every_clause(home: Path) -> None:
    r = civicaup("policy", "coverage", "kirkwood-mo", "--json", home=home)
    assert r.returncode == 0, r.stdout[-500:]
    cov = json.loads(r.stdout)
    assert [c["clause"] for c in cov["clauses"]] == list("abcdefghij") and cov["gaps"] == []


def test_policy_show_and_schema(home: Path) -> None:
    r = civicaup("policy", "show", "ky-36-082", home=home)
    assert r.returncode == 0 and "mayor and police-chief" in r.stdout
    r = civicaup("policy", "schema", home=home)
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "Pack"


def test_categories_build_then_check_url_uses_the_city_index(home: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists" / "gambling"
    lists.mkdir(parents=True)
    (lists / "domains").write_text("bingo-hall.example\n", encoding="utf-8")
    r = civicaup("categories", "build", str(tmp_path / "lists"), home=home)
    assert r.returncode == 0, r.stderr
    r = civicaup("check", "url", "https://www.bingo-hall.example/", "--policy", "kirkwood-mo", "--json", home=home)
    assert json.loads(r.stdout)["action"] == "block"
