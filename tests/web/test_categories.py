"""Category index: building from UT1-shaped folders and hosts files, look-ups, atomic rebuilds, the starter.

The slow test uses the UT1 blacklists in ../shared/data/ut1 (Université Toulouse 1 Capitole,
CC BY-SA 4.0, https://dsi.ut-capitole.fr/blacklists/); every other test makes its own tiny lists.
"""
from __future__ import annotations

import os
import random
import resource
import time
import tracemalloc
from pathlib import Path

import idna
import pytest

from civicaup.channels.web import categories as cat
from civicaup.channels.web import index as ix
from civicaup.channels.web.categories import UT1_MAP, BuildReport, CategoryIndex, Match
from civicaup.channels.web.url import normalise_url
from civicaup.errors import BadURLError, IndexError_, InputError

UT1 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ut1"


def make_ut1(root: Path, lists: dict[str, dict[str, str]]) -> Path:
    """A UT1-shaped folder: root/<category>/{domains,urls}."""
    for category, files in lists.items():
        (root / category).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / category / name).write_bytes(text.encode())
    return root


def hits(index: CategoryIndex, url: str) -> set[tuple[str, str]]:
    return {(m.category, m.entry) for m in index.lookup(normalise_url(url))}


def cats(index: CategoryIndex, url: str) -> set[str]:
    return {m.category for m in index.lookup(normalise_url(url))}


@pytest.fixture()
def small(tmp_path: Path) -> CategoryIndex:
    src = make_ut1(tmp_path / "ut1", {
        "adult": {"domains": "# adult sites\nx.com\nwww.x.com\n\n  Porn.Example.ORG.  \r\nbücher-xxx.de\n10.9.8.7\n"
                             "*.wild.example\n.dot.example\n",
                  "urls": "example.com/bad\nwww.news.example/adult/\nshop.example/p?id=7\n"},
        "mixed_adult": {"domains": "x.com\nmixed.example\n"},
        "agressif": {"domains": "hate.example\n"},
        "gambling": {"domains": "bets.example\nx.com\n"},
        "press": {"domains": "news.example\n"},
    })
    CategoryIndex.build([src], out=tmp_path / "idx" / "categories.idx")
    return CategoryIndex.load(tmp_path / "idx" / "categories.idx")


# -- building ----------------------------------------------------------------------------------------


def test_a_build_reports_what_it_wrote(tmp_path: Path) -> None:
    src = make_ut1(tmp_path / "ut1", {"adult": {"domains": "a.com\nb.com\n", "urls": "c.com/x\n"},
                                      "gambling": {"domains": "d.com\na.com\n"}})
    report = CategoryIndex.build([src], out=tmp_path / "out.idx")
    assert isinstance(report, BuildReport)
    assert (report.path, report.domains, report.url_entries, report.skipped) == (tmp_path / "out.idx", 3, 1, 0)
    assert report.categories == {"adult": 3, "gambling": 2}
    assert report.seconds >= 0 and report.path.is_file()


def test_ut1_folders_map_to_civicaup_categories_and_others_keep_their_name(small: CategoryIndex) -> None:
    assert small.categories() == {"adult", "hate", "gambling", "press"}
    assert UT1_MAP["agressif"] == "hate" and UT1_MAP["drogue"] == "drugs" and UT1_MAP["liste_blanche"] == "allow"
    assert cats(small, "http://hate.example/") == {"hate"}
    assert cats(small, "http://news.example/") == {"press"}


def test_a_match_names_the_category_the_source_list_and_the_entry(small: CategoryIndex) -> None:
    assert small.lookup(normalise_url("https://sub.bets.example/x")) == [
        Match(category="gambling", list_name="ut1/gambling", entry="bets.example")]


def test_entries_are_normalised_like_hosts(small: CategoryIndex) -> None:
    assert cats(small, "http://porn.example.org/") == {"adult"}  # uppercase, stray spaces, CRLF, trailing dot
    assert cats(small, "http://bücher-xxx.de/") == {"adult"}  # IDN entry stored as punycode
    assert cats(small, "http://" + idna.encode("bücher-xxx.de").decode()) == {"adult"}
    assert cats(small, "http://a.wild.example/") == {"adult"} and cats(small, "http://dot.example/") == {"adult"}


def test_comment_blank_and_invalid_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    src = make_ut1(tmp_path / "ut1", {"adult": {"domains": "# c\n\n   \nok.com\nbad domain.com\nxn--zz.com\na..b\n",
                                                "urls": "# c\nok.com/p\njavascript:alert(1)\n"}})
    report = CategoryIndex.build([src], out=tmp_path / "o.idx")
    assert (report.domains, report.url_entries, report.skipped) == (1, 1, 4)


def test_a_single_category_folder_can_be_a_source(tmp_path: Path) -> None:
    src = make_ut1(tmp_path / "lists", {"warez": {"domains": "pirate.example\n"}})
    CategoryIndex.build([src / "warez"], out=tmp_path / "o.idx")
    m = CategoryIndex.load(tmp_path / "o.idx").lookup(normalise_url("pirate.example"))
    assert m == [Match("piracy", "lists/warez", "pirate.example")]


def test_a_mapping_overrides_the_default_for_the_folders_it_names(tmp_path: Path) -> None:
    src = make_ut1(tmp_path / "ut1", {"press": {"domains": "news.example\n"}, "adult": {"domains": "a.example\n"}})
    CategoryIndex.build([src], out=tmp_path / "o.idx", mapping={"press": "news"})
    index = CategoryIndex.load(tmp_path / "o.idx")
    assert index.categories() == {"news", "adult"}


def test_a_hosts_file_becomes_a_list_named_after_its_stem(tmp_path: Path) -> None:
    hosts = tmp_path / "gambling.txt"
    hosts.write_text("# blocklist\n127.0.0.1 localhost\n::1 ip6-localhost\n0.0.0.0 0.0.0.0\n"
                     "0.0.0.0 casino.example   # inline comment\n127.0.0.1 a.bets.example b.bets.example\r\n"
                     "plain.example\n")
    report = CategoryIndex.build([hosts], out=tmp_path / "o.idx", fmt="hosts")
    assert (report.domains, report.categories) == (4, {"gambling": 4})
    index = CategoryIndex.load(tmp_path / "o.idx")
    assert index.lookup(normalise_url("http://www.casino.example/")) == [
        Match("gambling", "hosts/gambling", "casino.example")]
    assert cats(index, "http://b.bets.example/") == {"gambling"} and cats(index, "http://bets.example/") == set()
    assert cats(index, "http://localhost/") == set()


def test_a_hosts_file_can_be_given_its_category(tmp_path: Path) -> None:
    hosts = tmp_path / "StevenBlack-hosts"
    hosts.write_text("0.0.0.0 ads.example\n")
    CategoryIndex.build([hosts], out=tmp_path / "o.idx", fmt="hosts", category="ads")
    assert cats(CategoryIndex.load(tmp_path / "o.idx"), "ads.example") == {"ads"}


def test_a_missing_source_or_an_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        CategoryIndex.build([tmp_path / "nope"], out=tmp_path / "o.idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no UT1 category folders"):
        CategoryIndex.build([tmp_path / "empty"], out=tmp_path / "o.idx")
    with pytest.raises(InputError, match="format"):
        CategoryIndex.build([tmp_path / "empty"], out=tmp_path / "o.idx", fmt="csv")  # type: ignore[arg-type]
    assert not (tmp_path / "o.idx").exists()


# -- looking up ---------------------------------------------------------------------------------------


def test_a_listed_domain_covers_itself_and_every_subdomain(small: CategoryIndex) -> None:
    for url in ("http://bets.example/", "http://www.bets.example/", "http://a.b.c.bets.example/x?y"):
        assert cats(small, url) == {"gambling"}, url


def test_subdomains_match_when_a_list_holds_both_x_and_www_x(small: CategoryIndex) -> None:
    for host in ("x.com", "www.x.com", "a.x.com", "a.www.x.com", "deep.a.www.x.com", "wwwx.x.com"):
        assert "adult" in cats(small, f"http://{host}/"), host


def test_the_most_specific_listed_domain_is_reported(small: CategoryIndex) -> None:
    assert ("adult", "www.x.com") in hits(small, "http://a.www.x.com/")
    assert ("adult", "x.com") in hits(small, "http://a.x.com/")


def test_a_domain_matches_only_at_label_boundaries(small: CategoryIndex) -> None:
    for url in ("http://notx.com/", "http://x.com.evil.example/", "http://x.co/", "http://com/", "http://ets.example/"):
        assert cats(small, url) == set(), url


def test_one_match_per_category_even_when_several_lists_feed_it(small: CategoryIndex) -> None:
    matches = small.lookup(normalise_url("http://x.com/"))
    assert sorted(m.category for m in matches) == ["adult", "gambling"]


def test_an_ip_entry_matches_that_address_in_any_notation_and_nothing_else(small: CategoryIndex) -> None:
    for url in ("http://10.9.8.7/", "http://0x0a.9.8.7/", "http://168364039/", "10.9.8.7:443"):
        assert cats(small, url) == {"adult"}, url
    assert cats(small, "http://10.9.8.8/") == set() and cats(small, "http://9.8.7.10/") == set()


@pytest.mark.parametrize("path, listed", [
    ("/bad", True), ("/bad/", True), ("/bad/x", True), ("/bad/x/y.html", True), ("/bad?q=1", True),
    ("/badger", False), ("/ba", False), ("/", False), ("/other/bad", False), ("/BAD", False),
])
def test_url_entries_match_at_path_segment_boundaries(small: CategoryIndex, path: str, listed: bool) -> None:
    assert (cats(small, "http://example.com" + path) == {"adult"}) is listed


def test_url_entries_match_with_or_without_a_leading_www(small: CategoryIndex) -> None:
    assert cats(small, "http://www.example.com/bad/x") == {"adult"}
    assert cats(small, "http://sub.example.com/bad/x") == set()


def test_a_url_entry_ending_in_a_slash_covers_everything_below(small: CategoryIndex) -> None:
    assert hits(small, "http://www.news.example/adult/gallery") == {("adult", "www.news.example/adult/"),
                                                                     ("press", "news.example")}
    assert cats(small, "http://www.news.example/adultery") == {"press"}


def test_a_url_entry_with_a_query_matches_that_query_and_longer_ones(small: CategoryIndex) -> None:
    assert cats(small, "http://shop.example/p?id=7") == {"adult"}
    assert cats(small, "http://shop.example/p?id=7&x=1") == {"adult"}
    assert cats(small, "http://shop.example/p?id=70") == set()


def test_url_entries_are_matched_after_normalisation(small: CategoryIndex) -> None:
    assert cats(small, "HTTP://EXAMPLE.com/%62ad/./x") == {"adult"}
    assert cats(small, "http://example.com/a/../bad") == {"adult"}
    assert cats(small, "http://www.city.gov@example.com/bad") == {"adult"}


def test_an_unlisted_url_has_no_matches(small: CategoryIndex) -> None:
    assert small.lookup(normalise_url("https://www.city.gov/")) == []


def test_an_index_knows_when_it_was_built_and_how_many_entries_it_holds(small: CategoryIndex) -> None:
    assert small.entries == 11 + 3  # unique domains + url entries
    assert abs(time.time() - small.built_at.timestamp()) < 3600


# -- files: atomic rebuild, reload, corruption ---------------------------------------------------------


def test_a_rebuild_replaces_the_file_atomically_while_readers_keep_working(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_ut1(tmp_path / "v1", {"adult": {"domains": "old.example\n"}})], out=out)
    running = CategoryIndex.load(out)
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        # mid-build: the new file is complete beside the old one, and the old one still loads
        assert Path(src).parent == out.parent and Path(dst) == out
        assert cats(CategoryIndex.load(out), "old.example") == {"adult"}
        assert cats(CategoryIndex.load(Path(src)), "new.example") == {"adult"}
        seen.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(ix.os, "replace", replace)
    CategoryIndex.build([make_ut1(tmp_path / "v2", {"adult": {"domains": "new.example\n"}})], out=out)
    assert len(seen) == 1
    assert cats(running, "old.example") == {"adult"}  # the mapped old file is still readable
    assert cats(CategoryIndex.load(out), "new.example") == {"adult"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_build_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_ut1(tmp_path / "v1", {"adult": {"domains": "old.example\n"}})], out=out)

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ix.os, "replace", fail)
    with pytest.raises(OSError):
        CategoryIndex.build([make_ut1(tmp_path / "v2", {"adult": {"domains": "new.example\n"}})], out=out)
    assert cats(CategoryIndex.load(out), "old.example") == {"adult"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["categories.idx", "v1", "v2"]


def test_load_if_changed_swaps_only_when_the_file_was_replaced(tmp_path: Path) -> None:
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_ut1(tmp_path / "v1", {"adult": {"domains": "old.example\n"}})], out=out)
    current = CategoryIndex.load_if_changed(out, None)
    assert CategoryIndex.load_if_changed(out, current, interval=0) is current
    CategoryIndex.build([make_ut1(tmp_path / "v2", {"adult": {"domains": "new.example\n"}})], out=out)
    assert CategoryIndex.load_if_changed(out, current, interval=3600) is current  # not checked again yet
    fresh = CategoryIndex.load_if_changed(out, current, interval=0)
    assert fresh is not current and cats(fresh, "new.example") == {"adult"}
    assert CategoryIndex.load_if_changed(out, fresh, interval=0) is fresh


def test_load_if_changed_keeps_the_current_index_when_the_new_file_is_bad(tmp_path: Path) -> None:
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_ut1(tmp_path / "v1", {"adult": {"domains": "old.example\n"}})], out=out)
    current = CategoryIndex.load(out)
    out.write_bytes(b"garbage")
    assert CategoryIndex.load_if_changed(out, current, interval=0) is current
    out.unlink()
    assert CategoryIndex.load_if_changed(out, current, interval=0) is current


def test_a_missing_index_file_is_an_index_error(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="no category index"):
        CategoryIndex.load(tmp_path / "nope.idx")


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "flipped payload byte", "flipped header byte",
                                    "other version"])
def test_a_corrupt_index_file_is_an_index_error_with_a_one_line_message(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "categories.idx"
    CategoryIndex.build([make_ut1(tmp_path / "v1", {"adult": {"domains": "a.example\n", "urls": "b.example/x\n"}})],
                        out=out)
    data = bytearray(out.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(os.urandom(5000))
    elif damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "flipped payload byte":
        data[-100] ^= 0xFF
    elif damage == "flipped header byte":
        data[20] ^= 0x01
    else:
        data = bytearray(b"".join(_reencode_with_version(bytes(data), 99)))
    out.write_bytes(bytes(data))
    with pytest.raises(IndexError_) as info:
        CategoryIndex.load(out)
    assert str(out) in str(info.value) and "\n" not in str(info.value)


def _reencode_with_version(data: bytes, version: int) -> list[bytes]:
    """The same file with another format version in its (re-checksummed) header."""
    import json
    import zlib
    start = len(ix.MAGIC) + 8
    head_len = int.from_bytes(data[8:12], "little")
    header = json.loads(data[start:start + head_len])
    header["version"] = version
    head = json.dumps(header).encode()
    head += b" " * (-(start + len(head)) % 8)
    return [ix.MAGIC, len(head).to_bytes(4, "little"), zlib.crc32(head).to_bytes(4, "little"), head,
            data[start + head_len:]]


# -- the starter index and the default location ----------------------------------------------------------


STARTER_EXPECTED = {
    "adult": ["pornhub.com", "xvideos.com", "xnxx.com", "xhamster.com", "redtube.com", "youporn.com", "onlyfans.com"],
    "gambling": ["bet365.com", "pokerstars.com", "draftkings.com", "fanduel.com"],
    "hate": ["stormfront.org"],
    "streaming": ["youtube.com", "netflix.com", "twitch.tv", "hulu.com", "spotify.com"],
    "radio": ["iheart.com", "pandora.com", "tunein.com"],
    "piracy": ["thepiratebay.org"],
    "webmail": ["mail.google.com", "outlook.live.com", "mail.yahoo.com"],
    "social": ["facebook.com", "twitter.com", "x.com", "instagram.com", "tiktok.com", "reddit.com", "linkedin.com"],
    "shopping": ["amazon.com", "ebay.com", "etsy.com"],
    "filehosting": ["dropbox.com", "mega.nz"],
    "malware": ["malware.testing.google.test"],
}


def test_the_starter_index_holds_the_well_known_sites_of_each_category() -> None:
    starter = CategoryIndex.starter()
    for category, domains in STARTER_EXPECTED.items():
        for domain in domains:
            assert category in cats(starter, f"https://www.{domain}/"), domain
    assert {"violence", "games", "chat", "dating", "hacking", "drugs", "phishing"} <= starter.categories()


def test_the_starter_index_does_not_overreach() -> None:
    starter = CategoryIndex.starter()
    for url in ("https://www.google.com/", "https://google.com/search?q=mail", "https://www.city.gov/",
                "https://docs.google.com/", "https://www.yahoo.com/"):
        assert starter.lookup(normalise_url(url)) == [], url


def test_every_starter_list_is_a_clean_hand_written_list() -> None:
    folder = Path(cat.__file__).parent / "starter"
    files = sorted(folder.glob("*.txt"))
    assert len(files) >= 17
    for file in files:
        lines = file.read_text().splitlines()
        assert lines[0].startswith("# civicaup starter list"), file.name
        assert "NOT a copy of UT1" in "\n".join(lines[:3]), file.name
        entries = [s for s in lines if s and not s.startswith("#")]
        assert len(entries) == len(set(entries)), file.name
        for entry in entries:
            assert cat.domain_key(entry) is not None, (file.name, entry)


def test_the_starter_index_is_built_once_per_process() -> None:
    assert CategoryIndex.starter() is CategoryIndex.starter()


def test_the_default_index_lives_in_civicaup_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    assert cat.default_index_path() == tmp_path / "categories.idx"


def test_open_index_uses_the_built_index_if_there_is_one_else_the_starter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    assert cat.open_index() is CategoryIndex.starter()
    CategoryIndex.build([make_ut1(tmp_path / "ut1", {"adult": {"domains": "mine.example\n"}})],
                        out=cat.default_index_path())
    index = cat.open_index()
    assert index.path == tmp_path / "categories.idx" and cats(index, "mine.example") == {"adult"}


def test_a_bad_url_never_reaches_the_index() -> None:
    with pytest.raises(BadURLError):
        CategoryIndex.starter().lookup(normalise_url("javascript:alert(1)"))


# -- the real UT1 lists ------------------------------------------------------------------------------------


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow
@pytest.mark.skipif(not UT1.is_dir(), reason="UT1 lists not present at ../shared/data/ut1")
def test_every_ut1_entry_of_four_categories_is_found_again(tmp_path: Path) -> None:
    """Builds from the real UT1 blacklists (Université Toulouse 1 Capitole, CC BY-SA 4.0) and finds
    every domain entry (as itself, as www.+entry and as a deep subdomain) and every url entry of
    adult, gambling, agressif and malware. squidGuard misses some of both; we must miss none."""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = CategoryIndex.build([UT1], out=tmp_path / "categories.idx")
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before
    rss_loaded = _rss_mb()
    tracemalloc.start()
    index = CategoryIndex.load(report.path)
    load_heap = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    load_rss = _rss_mb() - rss_loaded
    assert report.domains > 100_000 and report.url_entries > 10_000
    assert {"adult", "gambling", "hate", "malware", "phishing", "streaming", "press"} <= index.categories()

    checked = 0
    sample: list[str] = []
    for folder, category in (("adult", "adult"), ("gambling", "gambling"), ("agressif", "hate"),
                             ("malware", "malware")):
        for name in ("domains", "urls"):
            path = UT1 / folder / name
            if not path.is_file():
                continue
            for line in path.read_text(errors="replace").splitlines():
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                try:
                    url = normalise_url(entry)
                except BadURLError:
                    continue  # the build skipped it too (counted in report.skipped)
                if name == "domains":
                    forms = [url.host] if url.is_ip else [url.host, "www." + url.host, "a.b-c.d." + url.host]
                    texts = [f"http://{h}/some/page" for h in forms]
                else:
                    hp = url.host_path()
                    deeper = hp + ("" if hp.endswith("/") else "/") + "deeper/page.html"
                    texts = [entry] if url.query else [entry, deeper]
                for text in texts:
                    found = {m.category for m in index.lookup(normalise_url(text))}
                    assert category in found, f"{folder}/{name}: {entry!r} not found via {text!r}"
                    checked += 1
                    sample.append(text)

    rng = random.Random(1)
    unlisted = [f"http://h{i}.unlisted{i % 97}.example/p" for i in range(20_000)]
    mix = rng.sample(sample, min(20_000, len(sample))) + unlisted
    parsed = [normalise_url(u) for u in mix]
    started = time.perf_counter()
    for u in parsed:
        index.lookup(u)
    lookup_s = time.perf_counter() - started
    started = time.perf_counter()
    for text in mix:
        index.lookup(normalise_url(text))
    both_s = time.perf_counter() - started
    print(f"\nUT1 build: {report.domains:,} domains + {report.url_entries:,} url entries, skipped {report.skipped}, "
          f"{report.seconds:.2f} s, file {report.path.stat().st_size / 1e6:.2f} MB, "
          f"build peak RSS +{build_peak:.0f} MB; load: Python heap {load_heap / 1e3:.0f} kB, RSS +{load_rss:.1f} MB "
          f"(mapped file pages)")
    print(f"checked {checked:,} look-ups of listed entries; on a {len(mix):,} mix: "
          f"{len(mix) / lookup_s:,.0f} look-ups/s, {len(mix) / both_s:,.0f} normalise+look-ups/s (one core)")
