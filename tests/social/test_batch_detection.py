"""Posts in bulk are scanned in batches (civicaup.detect.prepared) and judged exactly as one at a time.

`civicaup check posts` must print for each line the Decision `civicaup check post` gives that text, in
input order, with the same per-line errors; `social ingest` (Intake, ingest_items) must store and answer
what the engine decides for each item alone. Texts: a seeded sample of Davidson et al. tweets (MIT licence)
plus hand-written lines, so that the lexicons, the classifier and the patterns all have work.
"""
from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

import civicaup.detect.registry as registry
from civicaup.channels.events import post_event
from civicaup.detect import davidson as davidson_data
from civicaup.engine.evaluate import evaluate
from civicaup.interfaces.cli import jsonl
from civicaup.interfaces.cli.app import main
from civicaup.policy.compile import CompiledPack
from civicaup.social.intake import ingest_items

from .conftest import comment

P = "west-des-moines-ia"
AT = "2026-03-03T10:00"
WRITTEN = [
    "Fix the damn potholes on Grand Ave already, you useless bunch of assholes.",
    "Officer Drew Peterson is a crook who steals cash from the evidence room, everyone at the station knows it.",
    "all mexicans are lazy", "lol my nigga thats funny", "Thanks for the parade!", "I will kill you tomorrow",
    "Vote for Jane Smith for city council!", "f*ck this c0ck", "My SSN is 123-45-6789", "Photos at bit.ly/3xCivic",
    "", "   ", "Scunthorpe assessment in Middlesex",
]


def _texts(n: int, seed: int = 4) -> list[str]:
    rows = [r.text for r in davidson_data.read()] if davidson_data.DAVIDSON.exists() else []
    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    return picked + WRITTEN


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


def test_check_posts_prints_for_each_line_what_check_post_gives(run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(150)
    lines: list[str] = []
    for i, t in enumerate(texts):
        lines.append(json.dumps({"id": i, "text": t, "kind": "reply" if i % 3 else "comment", "at": AT}))
        if i % 40 == 7:  # bad lines in between: not JSON, no text, not an object, blank
            lines += ["not json", json.dumps({"id": f"x{i}"}), "[1, 2]", ""]
    batch = tmp_path / "posts.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(jsonl, "CHUNK", 64)  # several chunks, the last one short
    rc, out, err = run("check", "posts", str(batch), "--policy", P)
    answers = [json.loads(x) for x in out.splitlines()]
    assert rc == 2 and "could not be checked" in err
    assert len(answers) == len([x for x in lines if x.strip()])
    good = [a for a in answers if "decision" in a]
    assert [a["id"] for a in good] == list(range(len(texts)))
    bad = [a for a in answers if "error" in a]
    assert len(bad) == 3 * len([i for i in range(len(texts)) if i % 40 == 7])
    assert {a["id"] for a in bad} == {None}  # not JSON, not an object, or an object without text: no id to echo
    for i, t in enumerate(texts):
        post = tmp_path / f"post{i}.txt"
        post.write_text(t, encoding="utf-8")
        rc1, one, _ = run("check", "post", str(post), "--policy", P, "--kind", "reply" if i % 3 else "comment",
                          "--at", AT, "--json")
        assert rc1 == 0
        assert good[i]["decision"] == json.loads(one), t
    assert sum(a["decision"]["action"] != "allow" for a in good) > 20  # the sample gives the engine work


def test_check_posts_scans_every_chunk_in_one_batch(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    alone: list[str] = []
    single = registry._detect

    def one_at_a_time(text: str, where: str) -> Any:
        alone.append(text)
        return single(text, where)

    monkeypatch.setattr(registry, "_detect", one_at_a_time)  # the single-text path, watched
    texts = [t for t in _texts(40) if t.strip()]
    stdin = "".join(json.dumps({"id": i, "text": t, "at": AT}) + "\n" for i, t in enumerate(texts))
    rc, out, _ = run("check", "posts", "-", "--policy", P, stdin=stdin)
    answers = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and all("decision" in a for a in answers) and len(answers) == len(texts)
    assert not set(alone) & set(texts)  # only the warm-up text went through the single-text path


def test_ingest_items_stores_what_the_engine_decides_for_each_item_alone(store: Engine, wdm: CompiledPack) -> None:
    texts = [t for t in _texts(120, seed=9) if t.strip()]
    items = [comment(f"c{i}", t, author=f"facebook:{200000 + i}") for i, t in enumerate(texts)]
    answers = ingest_items(store, wdm, items)
    assert [a["id"] for a in answers] == [i["id"] for i in items]
    for item, a in zip(items, answers, strict=True):
        ev = post_event(item["text"], wdm, kind=item["kind"], account=item["account"], author=item["author"], at=AT)
        alone = evaluate(ev, wdm).to_json()
        assert a["decision"] == alone, item["text"]
    assert sum(a["decision"]["action"] != "allow" for a in answers) > 10


def test_check_posts_answers_a_line_at_a_time_caller_without_waiting_for_a_chunk(tmp_path: Path) -> None:
    """A bridge that writes one line and waits for its answer before writing the next must get it: a chunk
    ends where the pipe has nothing more waiting."""
    import os
    import subprocess
    import threading

    exe = Path(sys.executable).with_name("civicaup")
    env = dict(os.environ, CIVICAUP_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([str(exe), "check", "posts", "-", "--policy", P], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(300, proc.kill)  # a deadlock fails the test instead of hanging it
    timer.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        answers = []
        for i, text in enumerate(["Thanks for the parade!", "you useless bunch of assholes", "See you Tuesday"]):
            proc.stdin.write(json.dumps({"id": i, "text": text, "at": AT}) + "\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
    assert [a["id"] for a in answers] == [0, 1, 2]
    assert [a["decision"]["action"] == "allow" for a in answers] == [True, False, True]
