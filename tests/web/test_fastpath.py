"""The Squid helper's compiled per-line path (``_fastpath``, Cython) against its pure-Python path: the same
blocks give identical answer bytes and identical audit queue entries, over the bench's seeded stream,
obfuscated forms, malformed lines, lines without channel ids, users with roles, work time and lunch time,
and a reload mid-stream; and the pieces it is made of (the URL fast path, the index's hash tables) agree
with their Python references."""
from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

from civicaup.channels.web import fasturl, keyhash
from civicaup.channels.web import index as ix
from civicaup.channels.web import squid_helper as sh
from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.url import normalise_url
from tests.web_squid.conftest import LISTS, make_lists
from tests.web_squid.test_batch import _stream as batch_stream
from tests.web_squid.test_protocol import OBFUSCATED, TUESDAY_10, TUESDAY_LUNCH, Sink, helper

ROOT = Path(__file__).resolve().parents[2]

try:
    from civicaup.channels.web import _fastpath
except ImportError:  # pragma: no cover - the optional extension was not built
    _fastpath = None

needs_compiled = pytest.mark.skipif(_fastpath is None, reason="the compiled module is not built here")


def test_the_compiled_module_is_built_in_ci() -> None:
    """CI builds the extension (gcc and the Python headers are there): prove the compiled path is tested."""
    if not os.environ.get("CI"):
        pytest.skip("only required when CI is set")
    assert _fastpath is not None, f"civicaup.channels.web._fastpath is not built: {sh.FASTPATH_ERROR}"


# -- lists: the test lists plus seeded ones, in the bench's shape ----------------------------------------------


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("civicaup_bench_web", ROOT / "bench" / "web.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("civicaup_bench_web", module)
    spec.loader.exec_module(module)
    return module


def _seeded_lists(root: Path, seed: int = 5) -> Path:
    """The test lists and seeded UT1-shaped ones: domains with their www. names too, IPs, URL-path entries
    with and without a trailing slash and with queries, hosts that have both URL entries and a listed
    parent, and names with upper case, underscores and IDNA in the source files."""
    rng = random.Random(seed)
    lists = {k: dict(v) for k, v in LISTS.items()}
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    for category in ("adult", "gambling", "shopping", "webmail", "social_networks", "chat", "warez"):
        domains, urls = [], []
        for _ in range(400):
            name = "".join(rng.choices(letters, k=rng.randint(3, 12))) + rng.choice([".com", ".net", ".example",
                                                                                     ".co.uk"])
            domains.append(name)
            if rng.random() < 0.15:
                domains.append("www." + name)
            if rng.random() < 0.05:
                domains.append(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}")
            if rng.random() < 0.03:
                domains.append(name.upper().replace(".", "_x.", 1))
            if rng.random() < 0.2:
                host = rng.choice([name, "www." + name, "news.example", "portal." + name])
                path = "/".join("".join(rng.choices(letters, k=rng.randint(1, 6))) for _ in range(rng.randint(1, 3)))
                tail = rng.choice(["", "/", "?id=7", "?a=1&b=2"])
                urls.append(f"{host}/{path}{tail}")
        files = lists.setdefault(category, {})
        files["domains"] = files.get("domains", "") + "\n".join(domains) + "\n"
        files["urls"] = files.get("urls", "") + "\n".join(urls) + "\n"
    lists["adult"]["domains"] += "example\n"  # a listed top-level name: every .example host is under it
    return make_lists(root, lists)


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _seeded_lists(tmp_path_factory.mktemp("ut1") / "ut1")


@pytest.fixture(scope="module")
def index_file(lists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "categories.idx"
    CategoryIndex.build([lists], out=out)
    return out


# -- the streams -----------------------------------------------------------------------------------------------


def _squid_line(i: int, url: str, user: str) -> bytes:
    token = quote(url, safe=":/?@&=.;,+$!~*'()[]\\")  # Squid escapes %, spaces and non-ASCII
    return f"{i % 100} {token} {user} 10.0.{i % 7}.{i % 200} {'CONNECT' if '/' not in url else 'GET'} -".encode()


def _bench_lines(lists: Path, n: int, seed: int) -> list[bytes]:
    bench = _bench_module()
    stream = bench.make_stream(lists, n, random.Random(seed))
    users = ["-", "pat.jones", "kim.nguyen", "lee.chan@kirkwoodmo.org", "user7"]
    return [_squid_line(i, u, users[i % len(users)]) for i, u in enumerate(stream.urls)]


def _obfuscated_lines() -> list[bytes]:
    out: list[bytes] = []
    forms = OBFUSCATED + [
        "http://Casino.example/", "http://casino.example./x", "http://casino.example:80/", "https://casino.example:443/",
        "http://good.com@casino.example/", "casino.example:443", "casino.example:8443", "http://[::1]/",
        "http://10.9.8.7:8080/a", "http://010.9.8.7/", "http://10.9.8.07/", "http://1.2.3/", "http://0/",
        "http://casino.example/%7Euser", "http://casino.example/a/./b", "http://casino.example/a/../b",
        "http://casino.example/a#frag", "http://casino.example/?", "http://casino.example?x=1", "http://a..b/",
        "http://-a.example/", "http://a-.example/", "http://x" + "a" * 70 + ".example/", "http://" + "a." * 130 + "com/",
        "http://casino.example:65536/", "http://casino.example:0/", "http://casino.example:/", "http://casino.example:123456/",
        "http://news.example/adult-pictures", "http://news.example/adult-pictures/", "http://news.example/adult-picturesque",
        "http://www.news.example/adult-pictures/a?b", "http://news.example:8080/adult-pictures/x",
        "http://shop.example/setup.EXE", "http://shop.example/a/.hidden", "http://shop.example/a/..exe",
        "http://shop.example/x.mp3/", "http://shop.example/x.tar.gz", "http://shop.example/" + "e" * 70 + ".exe",
        "http://bücher-xxx.example/", "http://radio.example/" + "p/" * 1500, "",
    ]
    users = ["-", "kim.nguyen", "KIRKWOOD%5Ckim.nguyen", "lee.chan@kirkwoodmo.org", "pat.jones", "nobody"]
    for i, url in enumerate(forms):
        for j, user in enumerate(users):
            out.append(_squid_line(i * len(users) + j, url, user))
    out += [b"1 http://casino.example/", b"2", b"x http://casino.example/ - 10.0.0.1 GET -",
            b"http://casino.example/ - 10.0.0.1 GET", b"3 http://casino.example/ - 10.0.0.1 GET -\r",
            b"4  - 10.0.0.1 GET -", b"5 http://casino.example/  10.0.0.1 GET -", b"6 \xff\xfe - 10.0.0.1 GET -",
            b"7 http://casino.example/\xc3\xa9 - 10.0.0.1 GET -", b"", b"\r"]
    return out


# -- running both paths ------------------------------------------------------------------------------------------


def _run(index: Path, blocks: list[list[bytes]], at: str, compiled: bool,
         reload: tuple[int, Path] | None = None) -> tuple[list[bytes], list[tuple], list, tuple]:
    sink = Sink()
    h = helper(index, at=at, audit=sink, compiled=compiled)
    assert h.state is not None
    assert (h.state.fast is not None) == compiled
    answers: list[bytes] = []
    decided: list = []
    for i, lines in enumerate(blocks):
        if reload is not None and i == reload[0]:
            CategoryIndex.build([reload[1]], out=index)  # the index file is replaced while the helper runs
            h.reload(sync=True)
            assert (h.state.fast is not None) == compiled
        block = sh._Block()
        h.run_block(lines, block)
        answers.append(b"".join(block.answers))
        decided.extend(block.decided)
    stats = (h.stats.lines, h.stats.bad, h.stats.failed)
    return answers, sink.items, decided, stats


def _both(index: Path, tmp: Path, blocks: list[list[bytes]], at: str,
          reload_to: Path | None = None, reload_at: int = 0) -> None:
    got = []
    for compiled in (True, False):
        own = tmp / f"{'c' if compiled else 'p'}-{index.name}"
        own.write_bytes(index.read_bytes())
        got.append(_run(own, blocks, at, compiled, (reload_at, reload_to) if reload_to is not None else None))
    (ca, ci, cd, cs), (pa, pi, pd, ps) = got
    assert len(ca) == len(pa)
    for i, (c, p) in enumerate(zip(ca, pa, strict=True)):
        if c != p:
            for lc, lp in zip(c.split(b"\n"), p.split(b"\n"), strict=False):
                assert lc == lp, f"block {i}"
        assert c == p, f"block {i}"
    assert ci == pi  # (time, user, "client method ...", subject, outcome) in the same order
    assert cd == pd and cs == ps


def _blocks(lines: list[bytes], rng: random.Random) -> list[list[bytes]]:
    out, i = [], 0
    while i < len(lines):
        k = rng.choice([1, 7, 100, 1000, 4000])
        out.append(lines[i:i + k])
        i += k
    return out


@needs_compiled
@pytest.mark.parametrize("at", [TUESDAY_10, TUESDAY_LUNCH])
def test_the_bench_stream_gets_identical_answers_and_audit_entries(index_file: Path, lists: Path, tmp_path: Path,
                                                                   at: str) -> None:
    lines = _bench_lines(lists, 30_000, seed=7)
    lines += lines[-5000:]  # and again: from the answer cache
    _both(index_file, tmp_path, _blocks(lines, random.Random(3)), at)


@needs_compiled
@pytest.mark.parametrize("at", [TUESDAY_10, TUESDAY_LUNCH])
def test_obfuscated_malformed_and_mixed_lines_get_identical_answers(index_file: Path, tmp_path: Path,
                                                                    at: str) -> None:
    lines = _obfuscated_lines() + batch_stream(8000, seed=29) + _obfuscated_lines()
    _both(index_file, tmp_path, _blocks(lines, random.Random(4)), at)


@needs_compiled
def test_a_reload_mid_stream_gets_identical_answers(index_file: Path, lists: Path, tmp_path: Path) -> None:
    other = make_lists(tmp_path / "other", {"gambling": {"domains": "badsite.example\nshop.example\nexample\n"},
                                            "shopping": {"domains": "casino.example\n", "urls": "plain.example/buy/\n"}})
    lines = _bench_lines(lists, 6000, seed=9) + _obfuscated_lines() + batch_stream(3000, seed=5)
    rng = random.Random(6)
    rng.shuffle(lines)
    blocks = _blocks(lines + lines[:3000], random.Random(8))
    _both(index_file, tmp_path, blocks, TUESDAY_10, reload_to=other, reload_at=len(blocks) // 2)


@needs_compiled
def test_a_small_answer_cache_turns_its_generations_the_same_way(index_file: Path, lists: Path,
                                                                tmp_path: Path) -> None:
    lines = _bench_lines(lists, 4000, seed=13)
    lines = lines + lines[::-1] + lines
    results = []
    for compiled in (True, False):
        sink = Sink()
        h = helper(index_file, audit=sink, compiled=compiled, cache_size=64)
        out = [h.process(b"\n".join(lines[i:i + 500]) + b"\n") for i in range(0, len(lines), 500)]
        st = h.state
        results.append((out, sink.items, len(st.fresh), len(st.stale), sorted(st.fresh), sorted(st.stale)))
    assert results[0] == results[1]


@needs_compiled
def test_the_pure_python_switch(index_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_PURE_PYTHON", "1")
    assert helper(index_file).state.fast is None
    monkeypatch.delenv("CIVICAUP_PURE_PYTHON")
    assert helper(index_file).state.fast is not None
    assert helper(index_file, compiled=False).state.fast is None


# -- the pieces -------------------------------------------------------------------------------------------------


def _url_samples(rng: random.Random, n: int) -> list[str]:
    alphabet = "abcXYZ019.-_~:/?#@!$&'()*+,;=%[]\\ \t\"<>^`{|}é"
    hosts = ["a.com", "casino.example", "10.9.8.7", "1.2.3.4", "256.1.1.1", "01.2.3.4", "a..b", ".a.com", "a.com.",
             "xn--bcher-kva.example", "a" * 63 + ".com", "a" * 64 + ".com", "x." * 126 + "com", "1a.com", "a.1b",
             "A.com", "a_b.com", "-.com", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "1.2.3.04"]
    out = []
    for _ in range(n):
        r = rng.random()
        host = rng.choice(hosts)
        if r < 0.1:
            out.append("".join(rng.choices(alphabet, k=rng.randint(0, 30))))
            continue
        scheme = rng.choice(["http://", "https://", "http://", "HTTP://", "ftp://", "http:/", ""])
        port = rng.choice(["", "", ":80", ":443", ":8080", ":0", ":65535", ":65536", ":123456", ":", ":08"])
        path = rng.choice(["", "/", "/a/b", "/a/./b", "/.x", "/a.", "/%41", "/a b", "/a\\b", "/~u;p=1@x:y",
                           "/" + "".join(rng.choices(alphabet, k=rng.randint(0, 12)))])
        query = rng.choice(["", "", "?", "?a=1&b=2", "?a?b", "?x=%20", "?" + "".join(rng.choices(alphabet, k=6))])
        frag = rng.choice(["", "", "", "#f"])
        out.append(f"{scheme}{host}{port}{path}{query}{frag}")
    return out


@needs_compiled
def test_the_compiled_url_fast_path_keeps_fast_parts_contract() -> None:
    rng = random.Random(17)
    plain = [f"http{rng.choice(['', 's'])}://{rng.choice(['www.', '', 'a.b.'])}site{rng.randrange(999)}.example"
             f"{rng.choice(['', ':8080', ':443', ':80'])}{rng.choice(['', '/', '/a/b.png', '/x?q=1&r=2', '/~u/'])}"
             for _ in range(5000)]
    samples = _url_samples(rng, 40_000) + plain + OBFUSCATED + ["casino.example:443", "a.com:80", "a.com:0",
                                                                 "1.2.3.4:8080", "a.com", ":443"]
    accepted = 0
    for text in samples:
        got = _fastpath.fast_parts(text)
        assert got == fasturl.fast_parts(text), text
        if got is not None:
            accepted += 1
            u = normalise_url(text)  # and what it accepts is the full normaliser's answer
            assert got == (u.scheme, u.host, u.port, u.path, u.query, u.is_ip), text
    assert accepted > 5000


@needs_compiled
def test_compiled_and_python_hash_tables_are_identical() -> None:
    rng = random.Random(23)
    keys = sorted({"".join(rng.choices("abcdefgh.-/?&0123456789", k=rng.randint(1, 40))) for _ in range(5000)})
    ids = [rng.randrange(70_000) for _ in keys]
    compiled, python = _fastpath.build_table(keys, ids), keyhash.build_table_python(keys, ids)
    assert compiled == python
    seed, table = compiled
    assert len(table) == keyhash.capacity(len(keys)) * keyhash.SLOT.size
    for key, sid in zip(keys, ids, strict=True):
        assert _fastpath.key_hash(key, seed) == keyhash.key_hash(key, seed)
        assert keyhash.lookup(table, seed, key) == sid
    assert not any(keyhash.lookup(table, seed, key + "~") is not None for key in keys)
    assert _fastpath.build_table([], []) == keyhash.build_table_python([], [])


@needs_compiled
def test_the_hash_tables_answer_as_the_tries_do(index_file: Path, lists: Path) -> None:
    """Tables.lookup (the hash tables) equals State.signature (the tries) for listed hosts, their subdomains,
    URL entries and unlisted names."""
    h = helper(index_file, compiled=True)
    st = h.state
    assert st is not None and st.fast is not None
    rng = random.Random(31)
    hosts: list[str] = []
    for folder in lists.iterdir():
        if (folder / "domains").is_file():
            hosts += (folder / "domains").read_text().split()
    queries = []
    for line in _bench_lines(lists, 5000, seed=3) + _obfuscated_lines():
        url = line.split(b" ")[1].decode("utf-8", "replace") if line.count(b" ") >= 4 else ""
        parts = fasturl.fast_parts(url)
        if parts is not None:
            queries.append(parts)
    for host in hosts:
        for name in (host, "www." + host, "a.b." + host, host + ".evil", "x" + host):
            parts = fasturl.fast_parts(f"http://{name.lower()}/p/{rng.randrange(9)}")
            if parts is not None:
                queries.append(parts)
    assert len(queries) > 5000
    for _, host, _, path, query, is_ip in queries:
        assert st.fast.lookup(st, host, is_ip, path, query) == st.signature(host, is_ip, path, query), (host, path)


def _as_version_1(data: bytes) -> bytes:
    """The same index without its hash tables, as civicaup wrote it before format version 2."""
    start = len(ix.MAGIC) + 8
    head_len = int.from_bytes(data[8:12], "little")
    header = json.loads(data[start:start + head_len])
    payload = data[start + head_len:]
    sections = header["sections"]
    end = max(o + -(-n // 8) * 8 for name, (o, n) in sections.items() if not name.endswith(".hash"))
    payload = payload[:end]
    header.update(version=1, payload_len=len(payload), payload_crc=zlib.crc32(payload))
    for name in ("domains.hash", "urls.hash"):
        del sections[name]
    del header["hash_seeds"]
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(start + len(head)) % 8)
    return ix.MAGIC + len(head).to_bytes(4, "little") + zlib.crc32(head).to_bytes(4, "little") + head + payload


def test_a_version_1_index_is_still_read_and_decided_in_python(index_file: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    old = tmp_path / "old.idx"
    old.write_bytes(_as_version_1(index_file.read_bytes()))
    idx = CategoryIndex.load(old)
    assert idx.tables().domain_hashes is None
    new = CategoryIndex.load(index_file)
    for url in ["http://casino.example/", "http://www.both.example/", "http://news.example/adult-pictures/x",
                "http://10.9.8.7/", "http://plain.example/"]:
        assert idx.lookup(normalise_url(url)) == new.lookup(normalise_url(url))
    lines = _obfuscated_lines()
    with caplog.at_level("WARNING", logger="civicaup.squid-helper"):
        h_old = helper(old, compiled=_fastpath is not None)
    assert h_old.state.fast is None
    if _fastpath is not None:
        assert "format version 1" in caplog.text
    assert h_old.process(b"\n".join(lines) + b"\n") == helper(index_file).process(b"\n".join(lines) + b"\n")


def test_the_hash_sections_are_checked_like_the_rest(index_file: Path, tmp_path: Path) -> None:
    data = bytearray(index_file.read_bytes())
    start = len(ix.MAGIC) + 8
    head_len = int.from_bytes(data[8:12], "little")
    header = json.loads(bytes(data[start:start + head_len]))
    offset, length = header["sections"]["domains.hash"]
    assert length == keyhash.capacity(header["sections"]["domains.sets"][1]
                                      // (2 if header["typecode"] == "H" else 4)) * keyhash.SLOT.size
    data[start + head_len + offset + length // 2] ^= 0x40
    bad = tmp_path / "bad.idx"
    bad.write_bytes(bytes(data))
    with pytest.raises(Exception, match="corrupt"):
        CategoryIndex.load(bad)


def test_without_the_compiled_module_the_helper_answers_the_same_and_says_so_once(index_file: Path, lists: Path,
                                                                                   tmp_path: Path) -> None:
    """A machine where the extension could not be built: the index builds (the Python table builder), the
    helper decides in pure Python with the same answers and logs it once."""
    lines = _obfuscated_lines() + batch_stream(2000, seed=3)
    data = tmp_path / "lines.bin"
    data.write_bytes(b"\n".join(lines) + b"\n")
    script = tmp_path / "no_ext.py"
    script.write_text(f"""
import logging, sys
sys.modules["civicaup.channels.web._fastpath"] = None  # as if it was never built
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from pathlib import Path
from civicaup.channels.web.categories import CategoryIndex
from tests.web_squid.test_protocol import helper
out = Path({str(tmp_path / 'rebuilt.idx')!r})
CategoryIndex.build([Path({str(lists)!r})], out=out)
h = helper(out)
helper(out)
assert h.state.fast is None
sys.stdout.buffer.write(h.process(Path({str(data)!r}).read_bytes()))
""")
    import subprocess

    r = subprocess.run([sys.executable, str(script)], capture_output=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stderr.decode().count("is not built") == 1
    assert r.stdout == helper(index_file).process(data.read_bytes())
    # the pure-Python table builder wrote the same tables (the payload after the header is byte-identical)
    assert _payload((tmp_path / "rebuilt.idx").read_bytes()) == _payload(index_file.read_bytes())


def _payload(data: bytes) -> bytes:
    return data[len(ix.MAGIC) + 8 + int.from_bytes(data[8:12], "little"):]
