"""The Squid helper protocol, in process: channel ids, URL-escaped fields, users, malformed lines,
time windows, obfuscated URLs, fail modes, the watchdog, and that cached answers equal the engine's."""
from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from civicaup.channels.web import blockpage
from civicaup.channels.web import squid_helper as sh
from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.fasturl import fast_normalise
from civicaup.channels.web.squid_helper import Clock, Helper
from civicaup.channels.web.url import normalise_url
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import Actor, WebEvent
from civicaup.errors import BadURLError
from civicaup.policy.registry import get_pack


TUESDAY_10 = "2026-03-03T10:00"  # work time in Kirkwood (America/Chicago)
TUESDAY_LUNCH = "2026-03-03T12:15"
ROLES = {"kim.nguyen@kirkwoodmo.org": ("law-enforcement", "employee"),
         "lee.chan@kirkwoodmo.org": ("it", "employee")}


class Sink:
    """An audit sink that keeps what the helper queues."""

    def __init__(self) -> None:
        self.items: list[tuple] = []

    def put(self, item: tuple) -> None:
        self.items.append(item)

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


def helper(index: Path, at: str = TUESDAY_10, policy: str = "kirkwood-mo", **kw) -> Helper:
    looked_up: list[str] = kw.pop("looked_up", [])

    def roles_of(email: str):  # type: ignore[no-untyped-def]
        looked_up.append(email)
        return ROLES.get(email)

    return Helper(policy, index_path=index, clock=Clock(at), roles_of=roles_of,
                  contacts=lambda pack, roles: blockpage.contacts_for(
                      pack, [("lee.chan@kirkwoodmo.org", ("it",))], roles), audit=kw.pop("audit", Sink()), **kw)


def answers(h: Helper, *lines: str) -> dict[str, str]:
    out = h.process(("\n".join(lines) + "\n").encode()).decode()
    got = {}
    for line in out.splitlines():
        ch, _, rest = line.partition(" ")
        got[ch] = rest
    return got


def fields(answer: str) -> dict[str, str]:
    """'ERR message=a%20b log=c' -> {'result': 'ERR', 'message': 'a b', 'log': 'c'}."""
    parts = answer.split(" ")
    out = {"result": parts[0]}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        out[k] = unquote(v)
    return out


# -- the protocol ----------------------------------------------------------------------------------------


def test_channel_ids_are_echoed_whatever_their_order(index: Path) -> None:
    h = helper(index)
    got = answers(h, "7 http://badsite.example/ - 10.0.0.1 GET -", "3 http://plain.example/ - 10.0.0.1 GET -",
                  "99 http://casino.example/x - 10.0.0.1 GET -", "0 http://plain.example/y - 10.0.0.2 GET -")
    assert set(got) == {"7", "3", "99", "0"}
    assert got["7"].startswith("ERR ") and got["99"].startswith("ERR ")
    assert got["3"] == "OK" and got["0"] == "OK"


def test_each_answer_is_one_token_per_value(index: Path) -> None:
    h = helper(index)
    a = answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -")["1"]
    assert len(a.split(" ")) == 3 and a.split(" ")[1].startswith("message=") and a.split(" ")[2].startswith("log=")
    assert "\n" not in a and '"' not in a


def test_block_message_quotes_rule_clause_category_and_whom_to_ask(index: Path) -> None:
    h = helper(index)
    f = fields(answers(h, "1 http://badsite.example/page - 10.0.0.1 GET -")["1"])
    msg = f["message"]
    assert msg.startswith("Blocked by kirkwood-mo rule web-prohibited-sites, clause h: ")
    assert '"Accessing sites that are pornographic' in msg and "(category adult)" in msg
    assert "To ask for an exemption, contact the MIS Department (lee.chan@kirkwoodmo.org)" in msg
    assert f["log"] == "block:adult"


def test_url_encoded_fields_are_decoded(index: Path) -> None:
    looked_up: list[str] = []
    h = helper(index, looked_up=looked_up)
    url = quote("http://badsite.example/a b?q=\"x\"", safe=":/?=")  # as Squid escapes %>ru
    got = answers(h, f"4 {url} {quote('kim.nguyen@kirkwoodmo.org', safe='')} 10.0.0.1 GET -",
                  f"5 {quote('http://shop.example/%41', safe=':/')} alice 10.0.0.1 GET -")
    assert fields(got["4"]) == {"result": "OK", "log": "log:adult exempted-by=law-enforcement"}
    assert "kim.nguyen@kirkwoodmo.org" in looked_up
    assert fields(got["5"])["log"] == "log:shopping"


def test_dash_user_is_an_employee_and_bare_names_use_the_mail_domain(index: Path) -> None:
    looked_up: list[str] = []
    h = helper(index, looked_up=looked_up)
    got = answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -", "2 http://badsite.example/ kim.nguyen 10.0.0.1 GET -",
                  "3 http://badsite.example/ CITY%5Ckim.nguyen 10.0.0.1 GET -")
    assert got["1"].startswith("ERR ")
    assert got["2"].startswith("OK ") and got["3"].startswith("OK ")
    assert looked_up.count("kim.nguyen@kirkwoodmo.org") >= 1 and "-" not in looked_up and "" not in looked_up


def test_malformed_lines_get_bad_request(index: Path) -> None:
    h = helper(index)
    out = h.process(b"5 garbage\n6\n12 http://exa%20mple.example/ - 1.2.3.4 GET -\nnonsense\n\n").decode()
    lines = out.splitlines()
    assert lines[0] == "5 ERR message=bad%20request log=bad-request"
    assert lines[1] == "6 ERR message=bad%20request log=bad-request"
    assert lines[2].startswith("12 ERR message=bad%20request") and "log=bad-url" in lines[2]
    assert lines[3] == "ERR message=bad%20request log=bad-request"
    assert len(lines) == 4  # the empty line is not a request


def test_lines_without_channel_ids_when_concurrency_is_off(index: Path) -> None:
    h = helper(index)
    out = h.process(b"http://casino.example/ - 10.0.0.1 GET\nhttp://plain.example/ - 10.0.0.1 GET\n").decode()
    first, second = out.splitlines()
    assert first.startswith("ERR message=") and second == "OK"


def test_extra_fields_and_crlf_are_tolerated(index: Path) -> None:
    h = helper(index)
    got = answers(h, "1 http://casino.example/ - 10.0.0.1 GET - extra fields\r", "2 http://plain.example/ - 1.1.1.1 GET\r")
    assert got["1"].startswith("ERR ") and got["2"] == "OK"


# -- decisions ---------------------------------------------------------------------------------------------


def test_law_enforcement_passes_and_is_audited_as_exempted(index: Path) -> None:
    sink = Sink()
    h = helper(index, audit=sink)
    got = answers(h, "1 http://badsite.example/ kim.nguyen 10.0.0.1 GET -", "2 http://badsite.example/ pat.jones 10.0.0.2 GET -")
    assert got["1"].startswith("OK ") and got["2"].startswith("ERR ")
    coalesce = sh.coalescer("kirkwood-mo", "kirkwoodmo.org")
    entries = {e.actor: e for e in coalesce(sink.items)}
    kim = entries["kim.nguyen@kirkwoodmo.org"]
    assert kim.action == "web-log" and kim.subject == "badsite.example/"
    assert kim.detail["findings"][0]["exempted_by"] == "law-enforcement" and kim.detail["client"] == "10.0.0.1"
    assert entries["pat.jones@kirkwoodmo.org"].action == "web-block"


def test_allowed_requests_are_not_audited_and_repeats_are_counted(index: Path) -> None:
    sink = Sink()
    h = helper(index, audit=sink)
    for _ in range(3):
        answers(h, "1 http://plain.example/ - 10.0.0.1 GET -", "2 http://casino.example/ pat.jones 10.0.0.1 GET -")
    entries = sh.coalescer("kirkwood-mo", "kirkwoodmo.org")(sink.items)
    assert len(entries) == 1 and entries[0].detail["count"] == 3 and entries[0].subject == "casino.example/"


def test_work_time_window_is_read_at_request_time(index: Path, tmp_path: Path) -> None:
    now = tmp_path / "now"
    now.write_text(TUESDAY_10)
    sink = Sink()
    h = helper(index, at=f"@{now}", audit=sink)
    at10 = fields(answers(h, "1 http://shop.example/cart pat.jones 10.0.0.1 GET -")["1"])
    assert at10 == {"result": "OK", "log": "log:shopping"}
    n = len(sink.items)
    assert n == 1
    time.sleep(0.01)
    now.write_text(TUESDAY_LUNCH)  # the same URL and user at lunch: the cached work-time answer must not serve
    at1215 = fields(answers(h, "1 http://shop.example/cart pat.jones 10.0.0.1 GET -")["1"])
    assert at1215 == {"result": "OK", "log": "allow:shopping"}
    assert len(sink.items) == n  # personal time: nothing to record
    now.write_text("2026-03-03T16:59")
    assert fields(answers(h, "1 http://shop.example/cart pat.jones 10.0.0.1 GET -")["1"])["log"] == "log:shopping"


OBFUSCATED = [
    "http://BADSITE.EXAMPLE/", "http://badsite.example./", "http://BadSite.Example.:80/x", "http://www.badsite.example/",
    "http://deep.sub.badsite.example/p", "http://b%61dsite.example/", "http://good.example@badsite.example/",
    "http://good.example:pw@badsite.example/", "http://10.9.8.7/", "http://0x0a.9.8.7/", "http://168364039/",
    "http://012.9.8.7/", "http://bücher-xxx.example/", "http://xn--bcher-xxx-q9a.example/", "badsite.example:443",
    "https://badsite.example/", "http://badsite.example:8080/", "http://news.example/adult-pictures/x.jpg",
    "http://www.news.example/adult-pictures/", "http://news.example/adult-pictures/../adult-pictures/",
    "http://BOTH.example/", "http://www.both.example/", "HTTP://casino.example/", "http://casino.example\\x",
    "http://%63asino.example/", "ftp://casino.example/",
]


@pytest.mark.parametrize("url", OBFUSCATED)
def test_obfuscated_forms_of_a_listed_host_are_blocked(index: Path, url: str) -> None:
    h = helper(index)
    token = quote(url, safe=":/?@&=.\\")  # Squid URL-escapes the field: %, spaces and non-ASCII
    a = answers(h, f"1 {token} pat.jones 10.0.0.1 GET -")["1"]
    assert a.startswith("ERR message=Blocked"), (url, a)


def test_a_path_entry_does_not_match_a_longer_segment(index: Path) -> None:
    h = helper(index)
    assert answers(h, "1 http://news.example/adult-pictures-of-cats - 10.0.0.1 GET -")["1"] == "OK"
    assert answers(h, "1 http://news.example/ - 10.0.0.1 GET -")["1"] == "OK"


def test_software_download_is_blocked_by_its_own_rule(index: Path) -> None:
    h = helper(index)
    f = fields(answers(h, "1 http://plain.example/tools/setup.EXE - 10.0.0.1 GET -")["1"])
    assert f["result"] == "ERR" and "rule web-software-download, clause b" in f["message"]


# -- the cache and memo agree with the engine --------------------------------------------------------------


def _engine_answer(url: str, roles: frozenset[str], at: str, index_path: Path) -> bytes:
    from civicaup.channels import events
    from civicaup.engine.checks import web as web_checks

    pack = get_pack("kirkwood-mo")
    event = WebEvent(actor=Actor(email="x@kirkwoodmo.org", roles=roles), at=events.event_time(at, pack),
                     url=normalise_url(url))
    with web_checks.using_index(CategoryIndex.load(index_path)):
        d = evaluate(event, pack)
        matched = [m.category for m in web_checks.index().lookup(event.url)]
    contacts = blockpage.contacts_for(pack, [("lee.chan@kirkwoodmo.org", ("it",))], ["it"])
    return blockpage.answer_for(pack, d, matched, contacts)


def test_cached_answers_equal_the_engine_for_every_url_user_and_time(index: Path) -> None:
    urls = ["http://badsite.example/", "http://shop.example/a", "http://www.shop.example/b", "http://bank.example/",
            "http://radio.example/", "http://plain.example/", "http://plain.example/x.mp3", "http://a.example/b.msi",
            "http://casino.example/", "http://hate.example/", "http://news.example/adult-pictures/",
            "http://10.9.8.7/", "http://both.example/"]
    users = {"pat.jones": frozenset({"employee"}), "kim.nguyen": frozenset({"employee", "law-enforcement"})}
    for at in (TUESDAY_10, TUESDAY_LUNCH, "2026-03-07T10:00"):
        h = helper(index, at=at)
        for _ in range(2):  # the second round is served from the caches
            for url in urls:
                for user, roles in users.items():
                    got = h.process(f"1 {url} {user} 10.0.0.1 GET -\n".encode())
                    assert got == b"1" + _engine_answer(url, roles, at, index), (url, user, at)
        assert h.state is not None and h.state.memo_enabled


def test_fast_path_equals_the_full_normaliser() -> None:
    rng = random.Random(9)
    hosts = ["a.example", "www.b-c.example", "x1.y2.example", "10.1.2.3", "255.255.255.255", "256.1.1.1",
             "1.2.3", "A.example", "a..example", ".a.example", "a.example.", "0x7f.1", "a_b.example",
             "xn--bcher-kva.example", "x.123", "-a.example", "a" * 64 + ".example", "b.c.d.e.f.g.example"]
    paths = ["", "/", "/a/b", "/a/./b", "/a/../b", "/.well-known/x", "/a%20b", "/a b", "/~u/x.html", "/a//b",
             "/a\\b", "/x?y=1&z=2", "/?", "/p?q='x'", "/p?q=\"x\"", "/é", "/a#frag", "/a;b=c@d:e", "/{x}", "/a^b"]
    ports = ["", ":80", ":443", ":8080", ":0", ":65536", ":080", ":65535"]
    checked = fast = 0
    for _ in range(4000):
        url = f"{rng.choice(['http', 'https', 'HTTP', 'ftp'])}://{rng.choice(hosts)}{rng.choice(ports)}{rng.choice(paths)}"
        for candidate in (url, url.split("://", 1)[1].split("/", 1)[0]):
            f = fast_normalise(candidate)
            try:
                full = normalise_url(candidate)
            except BadURLError:
                full = None
            if f is not None:
                fast += 1
                assert f == full, candidate
            checked += 1
    assert fast > checked // 10  # the fast path is actually used


def test_signature_agrees_with_the_index_lookup(index: Path) -> None:
    h = helper(index)
    st = h.state
    assert st is not None
    idx = CategoryIndex.load(index)
    for url in OBFUSCATED + ["http://plain.example/", "http://sub.shop.example/x", "http://news.example/"]:
        try:
            u = normalise_url(url)
        except BadURLError:
            continue
        want = [m.category for m in idx.lookup(u)]
        got = [c for c, _ in st.signature(u.host, u.is_ip, u.path, u.query)[1]]
        mapped = [{"agressif": "hate"}.get(c, c) for c in want]
        assert got == mapped, url


# -- failures ----------------------------------------------------------------------------------------------


def test_engine_failure_closed_refuses_only_prohibited_categories(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = Sink()
    h = helper(index, audit=sink)

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(sh, "evaluate", boom)
    got = answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -", "2 http://shop.example/ - 10.0.0.1 GET -",
                  "3 http://plain.example/ - 10.0.0.1 GET -")
    f1 = fields(got["1"])
    assert f1["result"] == "ERR" and "listed as adult" in f1["message"] and f1["log"] == "fail-closed:adult"
    assert got["2"].startswith("OK log=civicaup-error") and got["3"].startswith("OK log=civicaup-error")
    assert h.stats.failed == 3
    assert [i[4].detail["decision"] for i in sink.items] == ["error"] * 3
    monkeypatch.undo()
    assert answers(h, "1 http://shop.example/ - 10.0.0.1 GET -")["1"] == "OK log=log%3Ashopping"  # not cached


def _open_pack(home: Path) -> str:
    src = Path(get_pack("kirkwood-mo").folder)
    dst = home / "packs" / "kirkwood-open"
    shutil.copytree(src, dst)
    text = (dst / "pack.yaml").read_text(encoding="utf-8").replace("id: kirkwood-mo", "id: kirkwood-open", 1)
    (dst / "pack.yaml").write_text(text.replace("limits:\n", "web_fail_mode: open\nlimits:\n", 1), encoding="utf-8")
    return "kirkwood-open"


def test_engine_failure_open_lets_requests_through(index: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))
    policy = _open_pack(tmp_path / "home")
    assert get_pack(policy).pack.web_fail_mode == "open"
    assert get_pack("kirkwood-mo").pack.web_fail_mode == "closed"
    h = helper(index, policy=policy)
    monkeypatch.setattr(sh, "evaluate", lambda *a, **k: 1 / 0)
    got = answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -")
    assert got["1"].startswith("OK log=civicaup-error")


def test_unreadable_index_closed_says_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "broken.idx"
    bad.write_bytes(b"not an index")
    h = helper(bad)
    assert h.state is not None and h.state.index is None
    f = fields(answers(h, "1 http://plain.example/ - 10.0.0.1 GET -")["1"])
    assert f == {"result": "ERR", "message": "civicaup unavailable", "log": "civicaup-unavailable"}


def test_unreadable_index_open_lets_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))
    policy = _open_pack(tmp_path / "home")
    bad = tmp_path / "broken.idx"
    bad.write_bytes(b"CAUPIDX\x00garbage")
    h = helper(bad, policy=policy)
    assert answers(h, "1 http://badsite.example/ - 10.0.0.1 GET -")["1"].startswith("OK log=")


def test_policy_that_does_not_load_answers_unavailable(index: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "packs" / "broken-city"
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text("id: broken-city\nrules: [\n", encoding="utf-8")
    h = helper(index, policy="broken-city")
    assert h.state is None and h.load_error
    out = h.process(b"3 http://plain.example/ - 10.0.0.1 GET -\nhttp://x.example/ - 1.1.1.1 GET\n").decode()
    assert out.splitlines() == ["3 ERR message=civicaup%20unavailable log=civicaup-unavailable",
                                "ERR message=civicaup%20unavailable log=civicaup-unavailable"]


def test_watchdog_answers_a_block_that_runs_past_its_budget(index: Path) -> None:
    def slow_roles(email: str):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # a directory that hangs
        return None

    h = Helper("kirkwood-mo", index_path=index, clock=Clock(TUESDAY_10), roles_of=slow_roles,
               contacts=lambda pack, roles: {}, line_budget=0.2, audit=Sink())
    block = sh._Block()
    lines = [b"1 http://plain.example/ - 10.0.0.1 GET -", b"2 http://shop.example/ slow.user 10.0.0.1 GET -",
             b"3 http://casino.example/ - 10.0.0.1 GET -"]
    worker = threading.Thread(target=h.run_block, args=(lines, block))
    written: list[bytes] = []
    started = time.monotonic()
    worker.start()
    while not h.watchdog_check(written.append):
        assert time.monotonic() - started < 5
        time.sleep(0.02)
    worker.join(5)
    out = b"".join(written).decode().splitlines()
    assert [line.split(" ", 1)[0] for line in out] == ["1", "2", "3"]
    assert out[0] == "1 OK"  # decided before the hang
    assert out[1] == "2 ERR message=civicaup%20unavailable log=civicaup-timeout"
    assert out[2] == "3 ERR message=civicaup%20unavailable log=civicaup-timeout"
    assert block.abandoned and h.stats.watchdog == 1


def test_an_unexpected_error_outside_a_line_still_answers_every_line(index: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    h = helper(index)
    monkeypatch.setattr(sh, "is_work_time", lambda *a: 1 / 0)
    out = h.process(b"1 http://plain.example/ - 10.0.0.1 GET -\n2 http://casino.example/ - 10.0.0.1 GET -\n")
    assert out.decode().splitlines() == ["1 ERR message=civicaup%20unavailable log=civicaup-error",
                                         "2 ERR message=civicaup%20unavailable log=civicaup-error"]


def test_a_bad_fake_clock_falls_back_to_the_real_one() -> None:
    from zoneinfo import ZoneInfo

    assert Clock("not a time").now(ZoneInfo("America/Chicago")).tzinfo is not None
