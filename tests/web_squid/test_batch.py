"""A block of request lines gets exactly the answers of the same lines sent one at a time, and of a helper
that runs the engine in full for every new request (no memo of decisions by signature), on a seeded stream
of 20,000 mixed requests: listed and unlisted hosts, subdomains, URL-path entries, IP addresses, ports,
CONNECT, upper case and escapes, downloads, users with and without roles, malformed lines."""
from __future__ import annotations

import random
from pathlib import Path

from civicaup.channels.web import squid_helper as sh

from .test_protocol import Sink, helper

LISTED = ["badsite.example", "www.both.example", "both.example", "casino.example", "hate.example",
          "shop.example", "bank.example", "radio.example", "10.9.8.7"]
UNLISTED = ["plain.example", "news.example", "x1.y2.example", "badsite.example.org", "notbadsite.example",
            "10.1.2.3", "shop.example.evil"]
PATHS = ["", "/", "/a/b", "/adult-pictures/", "/adult-pictures/x.jpg", "/adult-picturesque", "/setup.exe",
         "/song.MP3", "/x?y=1&z=2", "/a/./b", "/a/../adult-pictures/", "/a%20b", "/%41dult", "/?", "/a;b=c@d:e",
         "/~u/x.html", "/tools/setup.EXE?x=1"]
USERS = ["-", "pat.jones", "kim.nguyen", "lee.chan@kirkwoodmo.org", "KIRKWOOD%5Ckim.nguyen", "nobody"]


def _url(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.03:
        return f"{rng.choice(LISTED + UNLISTED).replace('10.9.8.7', 'casino.example')}:443"  # CONNECT
    host = rng.choice(LISTED) if r < 0.5 else rng.choice(UNLISTED) if r < 0.8 else f"h{rng.randrange(500)}.example"
    if rng.random() < 0.2 and not host[0].isdigit():
        host = rng.choice(["www.", "cdn.", "a.b."]) + host
    if rng.random() < 0.05:
        host = host.upper()
    if rng.random() < 0.05:
        host = host.replace(".", "%2e", 1)
    port = rng.choice(["", "", "", ":80", ":8080", ":443"])
    scheme = rng.choice(["http", "http", "https", "HTTP"])
    return f"{scheme}://{host}{port}{rng.choice(PATHS)}"


def _stream(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        r = rng.random()
        url, user = _url(rng), rng.choice(USERS)
        ip = f"10.0.{i % 7}.{i % 200}"
        if r < 0.01:
            out.append(f"{url} {user} {ip} GET".encode())  # concurrency off: no channel id
        elif r < 0.015:
            out.append(f"{i % 100} {url}".encode())  # malformed
        elif r < 0.02:
            out.append(f"{i % 100} {url} {user} {ip} GET -\r".encode())  # CRLF
        else:
            out.append(f"{i % 100} {url} {user} {ip} {rng.choice(['GET', 'POST', 'CONNECT'])} -".encode())
    return out


def _run(h: sh.Helper, lines: list[bytes], one_at_a_time: bool) -> list[bytes]:
    if one_at_a_time:
        return [h.process(line + b"\n") for line in lines]
    return h.process(b"\n".join(lines) + b"\n").splitlines(keepends=True)


def _audited(sink: Sink) -> list[tuple]:
    return [(user, rest, subject, outcome.answer) for _, user, rest, subject, outcome in sink.items]


def test_block_answers_equal_single_line_answers_and_the_engine(index: Path) -> None:
    lines = _stream(20_000, seed=11)
    got: dict[str, tuple[list[bytes], list[tuple]]] = {}
    for name, one in (("block", False), ("single", True)):
        sink = Sink()
        got[name] = (_run(helper(index, audit=sink), lines, one), _audited(sink))
    sink = Sink()
    full = helper(index, audit=sink)
    assert full.state is not None
    full.state.memo_enabled = False  # every answer not in the answer cache comes from evaluate() itself
    got["engine"] = (_run(full, lines, False), _audited(sink))
    block, single, reference = got["block"], got["single"], got["engine"]
    assert len(block[0]) == len(lines)
    for i, line in enumerate(lines):
        assert block[0][i] == single[0][i] == reference[0][i], line
    assert block[1] == single[1] == reference[1]
    answers = b"".join(block[0])
    assert answers.count(b"log=bad") > 50 and answers.count(b"adult") > 1000
    assert answers.count(b" ERR ") > 1000 and answers.count(b" OK") > 1000  # both kinds of answer were tested
