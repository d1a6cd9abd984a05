"""Category index: which lists hold a URL's host, a parent domain, or a prefix of its path.

Lists come in the UT1 / squidGuard folder format (``<dir>/<category>/domains`` and ``.../urls``) or as
hosts files. The UT1 blacklists are by Université Toulouse 1 Capitole (Fabrice Prigent), published under
CC BY-SA 4.0: https://dsi.ut-capitole.fr/blacklists/ . civicaup ships only its own small starter lists.

Unlike squidGuard, a look-up finds every listed parent domain (a list may hold both ``x.com`` and
``www.x.com``) and every URL entry that is a prefix of the path at a segment boundary.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import marisa_trie

from civicaup import config
from civicaup.channels.web import index as _ix
from civicaup.channels.web.url import NormalURL, normalise_host, normalise_url
from civicaup.errors import BadURLError, IndexError_, InputError

log = logging.getLogger(__name__)

UT1_MAP: dict[str, str] = {
    "adult": "adult", "mixed_adult": "adult", "lingerie": "adult",
    "agressif": "hate", "dangerous_material": "violence", "gambling": "gambling",
    "audio-video": "streaming", "radio": "radio", "games": "games", "warez": "piracy",
    "malware": "malware", "cryptojacking": "malware", "stalkerware": "malware",
    "phishing": "phishing", "chat": "chat", "webmail": "webmail", "social_networks": "social",
    "shopping": "shopping", "dating": "dating", "filehosting": "filehosting", "hacking": "hacking",
    "drogue": "drugs", "liste_blanche": "allow",
}
"""UT1 folder name -> civicaup web category; a folder not named here keeps its own name."""

_HOSTS_IGNORED = frozenset({
    "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost", "ip6-loopback",
    "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0",
})
_FAST_DOMAIN = re.compile(r"(?:[a-z0-9_\-]{1,63}\.)*[a-z][a-z0-9_\-]{0,62}")
_IP_TOKEN = re.compile(r"[0-9.]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%a-z]*")


@dataclass(frozen=True, slots=True)
class Match:
    """One list that holds the URL: the civicaup category, the source list and the entry that matched."""

    category: str
    list_name: str
    entry: str


@dataclass(frozen=True, slots=True)
class LookupTables:
    """An index's look-up tables, for a caller that inlines :meth:`CategoryIndex.lookup` for speed (the Squid
    helper); ``lookup`` stays the reference for what a look-up means.

    ``domains`` holds reversed host labels with a trailing dot (``com.example.www.``; an IP as ``!<ip>.``) and
    ``urls`` holds ``host/path?query`` entries; ``domain_sets[key id]`` / ``url_sets[key id]`` is a set id and
    ``set_matches[set id]`` the ``(category, list name)`` pairs of the lists holding the key, as built (before
    any pack remapping). ``url_hosts`` is the hosts that have URL entries: a URL whose host is not among them
    needs no URL look-up. ``domain_hashes`` and ``url_hashes`` are the same keys' hash tables (:mod:`keyhash`,
    seeds ``hash_seeds``) for the compiled helper path, None for a format-version-1 file."""

    domains: marisa_trie.Trie
    domain_sets: Sequence[int]
    urls: marisa_trie.Trie
    url_sets: Sequence[int]
    set_matches: Sequence[tuple[tuple[str, str], ...]]
    url_hosts: frozenset[str]
    domain_hashes: memoryview | None = None
    url_hashes: memoryview | None = None
    hash_seeds: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote: the file, its entry counts (per category too), lines skipped, time taken."""

    path: Path
    domains: int
    url_entries: int
    categories: dict[str, int]
    skipped: int
    seconds: float


@dataclass
class _Builder:
    """Collects entries as key -> bitmask of list ids."""

    lists: list[_ix.ListInfo] = field(default_factory=list)
    domains: dict[str, int] = field(default_factory=dict)
    urls: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def add_list(self, name: str, category: str) -> int:
        info = _ix.ListInfo(name, category)
        if info in self.lists:
            return self.lists.index(info)
        self.lists.append(info)
        return len(self.lists) - 1

    def add_domains(self, list_id: int, lines: Iterator[str]) -> None:
        bit, table = 1 << list_id, self.domains
        for line in lines:
            key = domain_key(line)
            if key is None:
                self.skipped += 1
            else:
                table[key] = table.get(key, 0) | bit

    def add_urls(self, list_id: int, lines: Iterator[str]) -> None:
        bit, table = 1 << list_id, self.urls
        for line in lines:
            try:
                key = normalise_url(line).host_path()
            except BadURLError:
                self.skipped += 1
                continue
            table[key] = table.get(key, 0) | bit

    def encode(self, built_at: datetime) -> list[bytes]:
        return _ix.encode(self.lists, self.domains, self.urls,
                          {"built_at": built_at.isoformat(), "skipped": self.skipped})

    def category_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        mask_counts: dict[int, int] = {}
        for table in (self.domains, self.urls):
            for mask in table.values():
                mask_counts[mask] = mask_counts.get(mask, 0) + 1
        for mask, n in mask_counts.items():
            for category in {x.category for i, x in enumerate(self.lists) if mask >> i & 1}:
                counts[category] = counts.get(category, 0) + n
        return dict(sorted(counts.items()))


class CategoryIndex:
    """A read-only, memory-mapped category index. Build with :meth:`build`, open with :meth:`load`."""

    def __init__(self, data: _ix.IndexData, *, path: Path | None = None,
                 stat: os.stat_result | None = None) -> None:
        self._data = data
        self.path = path
        self.built_at: datetime = datetime.fromisoformat(str(data.header["built_at"]))
        self.entries: int = len(data.domains) + len(data.urls)
        self._set_matches: list[tuple[tuple[str, str], ...]] = [
            tuple((data.lists[i].category, data.lists[i].name) for i in ids) for ids in data.sets]
        self._has_urls = len(data.urls) > 0
        self._tables: LookupTables | None = None
        self._stat_key = _stat_key(stat) if stat is not None else None
        self._seen_key = self._stat_key
        self._checked_at = time.monotonic()

    # -- building and opening -------------------------------------------------------------------

    @classmethod
    def build(cls, sources: Sequence[Path], *, out: Path, fmt: Literal["ut1", "hosts"] = "ut1",
              mapping: Mapping[str, str] | None = None, category: str | None = None) -> BuildReport:
        """Read *sources* and write the index to *out* atomically (temp file + ``os.replace``).

        ``fmt="ut1"``: each source is a UT1 root (folders of ``domains``/``urls``) or one such folder.
        ``fmt="hosts"``: each source is a hosts file (or a folder of them); its category is *category*
        if given, else its file stem. *mapping* (folder or stem -> category) overrides :data:`UT1_MAP`.
        """
        started = time.perf_counter()
        builder = _builder_for(sources, fmt, {**UT1_MAP, **(mapping or {})}, category)
        built_at = datetime.now(UTC).replace(microsecond=0)
        _ix.write_atomic(Path(out), builder.encode(built_at))
        return BuildReport(path=Path(out), domains=len(builder.domains), url_entries=len(builder.urls),
                           categories=builder.category_counts(), skipped=builder.skipped,
                           seconds=round(time.perf_counter() - started, 3))

    @classmethod
    def load(cls, path: Path) -> CategoryIndex:
        """Open the index at *path* (memory-mapped); IndexError_ if it is missing or corrupt."""
        data, st = _ix.open_file(Path(path))
        return cls(data, path=Path(path), stat=st)

    @classmethod
    def load_if_changed(cls, path: Path, current: CategoryIndex | None, *,
                        interval: float = 1.0) -> CategoryIndex:
        """Return a fresh index if the file at *path* was replaced since *current* was loaded, else *current*.

        Costs one ``stat`` at most every *interval* seconds. If the new file cannot be read, *current*
        stays in service (a warning is logged once per file version), so a helper never drops requests.
        """
        if current is None:
            return cls.load(path)
        now = time.monotonic()
        if now - current._checked_at < interval:
            return current
        current._checked_at = now
        try:
            key = _stat_key(os.stat(path))
        except OSError:
            return current
        if key == current._seen_key:
            return current
        current._seen_key = key
        try:
            return cls.load(path)
        except IndexError_ as e:
            log.warning("keeping the loaded category index: %s", e)
            return current

    @classmethod
    def starter(cls) -> CategoryIndex:
        """The small starter index shipped in the package (built in memory once per process)."""
        return _starter()

    # -- looking up -----------------------------------------------------------------------------

    def lookup(self, url: NormalURL) -> list[Match]:
        """Every list holding *url*: URL entries (longest first), then the host and its parent domains
        (most specific first); one match per category."""
        found: dict[str, Match] = {}
        host = url.host
        if self._has_urls:
            hp = url.host_path()
            self._url_matches(hp, found)
            if host.startswith("www."):
                self._url_matches(hp[4:], found)
        data = self._data
        key = f"!{host}." if url.is_ip else ".".join(host.split(".")[::-1]) + "."
        hits = data.domains.prefixes(key)
        if hits:
            trie, sets, n = data.domains, data.domain_sets, len(host) + 1
            for hit in reversed(hits):
                entry = host[n - len(hit):]  # reversed labels have the host's length: no need to un-reverse
                for category, list_name in self._set_matches[sets[trie.key_id(hit)]]:
                    if category not in found:
                        found[category] = Match(category, list_name, entry)
        return list(found.values())

    def _url_matches(self, hp: str, found: dict[str, Match]) -> None:
        trie = self._data.urls
        hits = trie.prefixes(hp)
        for entry in reversed(hits):
            n = len(entry)
            if n < len(hp) and entry[-1] != "/" and hp[n] not in "/?" and not (hp[n] == "&" and "?" in entry):
                continue  # not at a segment boundary: "/bad" must not match "/badger"
            for category, list_name in self._set_matches[self._data.url_sets[trie.key_id(entry)]]:
                if category not in found:
                    found[category] = Match(category, list_name, entry)

    def tables(self) -> LookupTables:
        """The look-up tables (see :class:`LookupTables`), made once per loaded index."""
        if self._tables is None:
            data = self._data
            url_hosts = frozenset(_entry_host(k) for k in data.urls.keys()) if self._has_urls else frozenset()
            self._tables = LookupTables(data.domains, data.domain_sets, data.urls, data.url_sets,
                                        tuple(self._set_matches), url_hosts, data.domain_hashes, data.url_hashes,
                                        data.hash_seeds)
        return self._tables

    def categories(self) -> set[str]:
        """The civicaup categories this index can report."""
        return {x.category for x in self._data.lists}

    def list_names(self) -> list[str]:
        """The source lists in this index, e.g. ``ut1/adult``."""
        return [x.name for x in self._data.lists]

    def __repr__(self) -> str:
        return f"CategoryIndex({self.path or 'starter'}, entries={self.entries}, built_at={self.built_at:%Y-%m-%d})"


# -- reading lists ---------------------------------------------------------------------------------


def _entry_host(entry: str) -> str:
    """The host of a URL-list entry (``host/path?query``)."""
    cut = len(entry)
    for sep in ("/", "?"):
        i = entry.find(sep)
        if 0 <= i < cut:
            cut = i
    return entry[:cut]


def domain_key(line: str) -> str | None:
    """The trie key for one domain-list entry (``com.example.`` or ``!1.2.3.4.``), None if not a host."""
    entry = line.strip().lower()
    if entry.startswith(("*.", ".")):
        entry = entry.lstrip("*.")
    entry = entry.rstrip(".")
    if len(entry) <= 253 and _FAST_DOMAIN.fullmatch(entry) and "xn--" not in entry:
        return ".".join(entry.split(".")[::-1]) + "."
    if not entry or any(c.isspace() for c in entry):
        return None
    try:
        host, is_ip = normalise_host(entry)
    except BadURLError:
        return None
    return f"!{host}." if is_ip else ".".join(host.split(".")[::-1]) + "."


def _lines(path: Path) -> Iterator[str]:
    """Entries of a list file: stripped, without blank lines and ``#`` comment lines; CRLF is fine."""
    with open(path, encoding="utf-8", errors="replace", newline=None) as f:
        for raw in f:
            line = raw.strip()
            if line and not line.startswith("#"):
                yield line


def _hosts_names(path: Path) -> Iterator[str]:
    """Host names of a hosts file (``0.0.0.0 a.com b.com``); a line without an address is a bare domain."""
    for line in _lines(path):
        tokens = line.split("#", 1)[0].split()
        if tokens and _IP_TOKEN.fullmatch(tokens[0]) and len(tokens) > 1:
            tokens = tokens[1:]
        for name in tokens:
            if name.lower() not in _HOSTS_IGNORED:
                yield name


def _ut1_folders(source: Path) -> Iterator[tuple[str, Path]]:
    """(list name, folder) for a UT1 root or a single UT1 category folder."""
    if (source / "domains").is_file() or (source / "urls").is_file():
        yield f"{source.resolve().parent.name}/{source.name}", source
        return
    root = source.resolve().name
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        if (folder / "domains").is_file() or (folder / "urls").is_file():
            yield f"{root}/{folder.name}", folder


def _builder_for(sources: Sequence[Path], fmt: str, mapping: Mapping[str, str],
                 category: str | None) -> _Builder:
    if fmt not in ("ut1", "hosts"):
        raise InputError(f"unknown list format {fmt!r}; use 'ut1' or 'hosts'")
    if isinstance(sources, (str, Path)):
        sources = [Path(sources)]
    builder = _Builder()
    for source in map(Path, sources):
        if not source.exists():
            raise InputError(f"list source not found: {source}")
        if fmt == "ut1":
            if not source.is_dir():
                raise InputError(f"a UT1 list source must be a folder: {source}")
            folders = list(_ut1_folders(source))
            if not folders:
                raise InputError(f"no UT1 category folders (with 'domains' or 'urls' files) in {source}")
            for name, folder in folders:
                list_id = builder.add_list(name, mapping.get(folder.name, folder.name))
                if (folder / "domains").is_file():
                    builder.add_domains(list_id, _lines(folder / "domains"))
                if (folder / "urls").is_file():
                    builder.add_urls(list_id, _lines(folder / "urls"))
        else:
            files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
            for file in files:
                list_id = builder.add_list(f"hosts/{file.stem}", category or mapping.get(file.stem, file.stem))
                builder.add_domains(list_id, _hosts_names(file))
    return builder


# -- the starter index and the default location -------------------------------------------------------


@lru_cache(maxsize=1)
def _starter() -> CategoryIndex:
    builder = _Builder()
    folder = resources.files("civicaup.channels.web") / "starter"
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.name.endswith(".txt"):
            stem = item.name[:-4]
            list_id = builder.add_list(f"starter/{stem}", stem)
            text = item.read_text(encoding="utf-8")
            builder.add_domains(list_id, (s for s in map(str.strip, text.splitlines()) if s and s[0] != "#"))
    data = _ix.decode(b"".join(builder.encode(datetime(2025, 1, 1, tzinfo=UTC))), "starter")
    return CategoryIndex(data)


def default_index_path() -> Path:
    """``$CIVICAUP_HOME/categories.idx``."""
    return config.home() / "categories.idx"


def open_index() -> CategoryIndex:
    """The city's built index if there is one, else the starter index."""
    path = default_index_path()
    if path.exists():
        return CategoryIndex.load(path)
    return CategoryIndex.starter()


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
