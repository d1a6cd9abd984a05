"""The Squid external ACL helper: ``civicaup squid-helper --policy POLICY``.

squid.conf (see ``civicaup setup squid``)::

    external_acl_type civicaup concurrency=100 ttl=0 %>ru %un %>a %rm /usr/bin/civicaup squid-helper --policy P
    acl civicaup_allowed external civicaup
    http_access deny !civicaup_allowed
    deny_info ERR_CIVICAUP civicaup_allowed

Squid sends ``CHANNEL URL USER CLIENT-IP METHOD [-]`` a line, each field URL-escaped; the helper answers
``CHANNEL OK [log=...]`` or ``CHANNEL ERR message=... log=...`` (values URL-escaped). The engine decides:
the helper builds a :class:`WebEvent` (the user's roles from the directory; a bare user name is looked up
as ``user@<mail domain>``; unknown users are employees), evaluates it, and answers ``block``/``hold`` with
ERR and everything else with OK. Every non-allow decision goes to the audit log through a writer thread.
The person's current exemption grants (approved exemptions, personal or by role) go into the event too:
the city's grants are read at start and every ``grants_ttl`` seconds in a thread, and answers that may
depend on a grant are forgotten when the grants change or one of them ends.

Speed. A pure-Python helper cannot run the whole engine for every request at 200,000 requests a second,
so the engine's answers are reused where they provably cannot differ:

1. ``(URL, user, work-time-or-not)`` -> answer, in a bounded two-generation cache (see ``State.decide``).
2. On a miss the URL is parsed (:mod:`fasturl` for canonical URLs, else the full normaliser) and looked up
   in the category index; the result is reduced to the *signature* the engine's web check would report
   (each category with its list, and the download type). A web rule's outcome depends only on that
   signature, the actor's roles and grants and the work-time window (``match_rule`` and ``apply_exemptions``
   read nothing else from a web event), so ``(signature, roles, grants, window)`` -> Decision is memoised. A memo
   miss runs the real ``evaluate()`` and also checks that the engine's own signals equal the signature;
   if they ever differ (the engine changed) or the pack's rule conditions gain a field this module does
   not know, the memo is switched off and every miss is evaluated in full.

3. The per-line path (split, canonical-URL parse, look-ups in the index's hash tables, the caches, the
   answer and the audit entry) is compiled (:mod:`civicaup.channels.web._fastpath`, Cython) and calls back into
   this module's methods for everything else, with byte-identical answers. Without the compiled module (or
   with ``CIVICAUP_PURE_PYTHON=1``) the same lines are answered here, in Python; the helper says so once
   in its log.

Requests are read in large blocks and answered in one write per block; the window state and the clock are
read once per block. SIGHUP reloads the pack, the directory and the index in a background thread and
swaps them in between blocks (requests wait in the pipe meanwhile, none is dropped); SIGTERM or end of
input answers what was read, writes the audit queue and exits 0.

Failure (``web_fail_mode`` in the pack, default ``closed``): if evaluation raises but the index lookup
worked, closed answers ERR only for hosts listed in a category that a block rule of the pack names, OK
otherwise; if nothing works (no pack, unreadable index) closed answers ``ERR message=civicaup
unavailable``; open answers OK. A line that takes longer than ``line_budget`` seconds is answered by a
watchdog the same way, so Squid never waits on the helper. A malformed line is answered
``ERR message=bad request``. Every failure is logged on stderr (Squid's cache.log) and audited.

``CIVICAUP_FAKE_NOW`` (tests only): an ISO-8601 local time, or ``@FILE`` holding one (re-read when the
file changes), used instead of the clock.
"""
from __future__ import annotations

import gc
import logging
import os
import posixpath
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from civicaup.channels.web import blockpage
from civicaup.channels.web.categories import CategoryIndex, default_index_path
from civicaup.channels.web.fasturl import Parts, fast_parts
from civicaup.channels.web.url import NormalURL, normalise_url
from civicaup.engine.checks import web as web_checks
from civicaup.engine.decision import Decision
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import Actor, WebEvent
from civicaup.engine.windows import is_work_time
from civicaup.errors import BadURLError, CivicaupError
from civicaup.operations import metrics
from civicaup.governance.grants_cache import Grants
from civicaup.policy.compile import CompiledPack
from civicaup.policy.registry import get_pack
from civicaup.policy.schema import When
from civicaup.stores.audit_batch import AuditWriter, Pending, ProcessAuditWriter

log = logging.getLogger("civicaup.squid-helper")

try:
    from civicaup.channels.web import _fastpath
    FASTPATH_ERROR = ""
except ImportError as _exc:  # the extension was not built: the pure-Python path answers the same
    _fastpath = None  # type: ignore[assignment]
    FASTPATH_ERROR = str(_exc)

EMPLOYEE = frozenset({"employee"})
KNOWN_WHEN = frozenset({"categories", "tags", "protected", "during", "kinds", "actor_roles", "actor_not_roles"})
"""The rule conditions the memo understands; a pack model with more switches the memo off."""
BAD_REQUEST = b" ERR message=bad%20request log=bad-request\n"
UNAVAILABLE_MSG = "civicaup unavailable"
MAX_LINE = 64 * 1024
_SOFTWARE_EXT = web_checks._SOFTWARE_EXT  # the engine's own tables: the signature must agree with its check
_MEDIA_EXT = web_checks._MEDIA_EXT


class _Fail(Exception):
    """Raised inside a decision to answer by the fail mode; never cached."""

    def __init__(self, answer: bytes, reason: str, subject: str = "") -> None:
        super().__init__(reason)
        self.answer, self.reason, self.subject = answer, reason, subject


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision as the helper uses it: the answer bytes (after the channel id) and what to audit."""

    answer: bytes
    action: str
    detail: dict[str, Any] | None  # audit detail for non-allow decisions, None for allow


# -- the clock -----------------------------------------------------------------------------------------


class Clock:
    """Real time, or ``CIVICAUP_FAKE_NOW`` for tests (ISO-8601 local time, or @FILE re-read when it changes)."""

    def __init__(self, spec: str | None = None) -> None:
        self.spec = spec if spec is not None else os.environ.get("CIVICAUP_FAKE_NOW", "")
        self._file_key: tuple[int, int] | None = None
        self._fixed: datetime | None = None

    @property
    def fake(self) -> bool:
        return bool(self.spec)

    def now(self, tz: Any) -> datetime:
        """Aware current time (UTC)."""
        if not self.spec:
            return datetime.now(timezone.utc)
        text = self.spec
        if text.startswith("@"):
            path = text[1:]
            try:
                st = os.stat(path)
                key = (st.st_mtime_ns, st.st_size)
                if key != self._file_key:
                    self._file_key = key
                    self._fixed = self._parse(Path(path).read_text(encoding="utf-8").strip(), tz)
            except (OSError, ValueError) as exc:
                log.warning("CIVICAUP_FAKE_NOW file %s unreadable (%s); using the real clock", path, exc)
                return datetime.now(timezone.utc)
        elif self._fixed is None:
            try:
                self._fixed = self._parse(text, tz)
            except ValueError:
                log.warning("CIVICAUP_FAKE_NOW=%r is not an ISO-8601 time; using the real clock", text)
                self.spec = ""
                return datetime.now(timezone.utc)
        assert self._fixed is not None
        return self._fixed

    @staticmethod
    def _parse(text: str, tz: Any) -> datetime:
        at = datetime.fromisoformat(text)
        return (at.replace(tzinfo=tz) if at.tzinfo is None else at).astimezone(timezone.utc)


# -- the loaded policy, index and directory -----------------------------------------------------------------

Signature = tuple[tuple[str, str], ...]
"""What the web check reports of a URL's lists: ((category, list name), ...), in its order."""
NO_SIGNATURE: tuple[int, Signature] = (0, ())

RoleLookup = Callable[[str], "tuple[str, ...] | None"]
"""email -> roles of that (active) person in the directory, None if unknown."""

GrantSource = Callable[[], Grants]
"""The city's current exemption grants (:mod:`civicaup.governance.grants_cache`); may raise."""


class State:
    """Everything one generation of the helper decides with; replaced whole on reload."""

    def __init__(self, pack: CompiledPack, index: CategoryIndex | None, roles_of: RoleLookup,
                 contacts: blockpage.Contacts, *, cache_size: int = 131_072, index_error: str = "",
                 grants: Grants | None = None, compiled: bool = False) -> None:
        self.pack = pack
        self.index = index
        self.index_error = index_error
        self.tz = pack.tz
        self.hours = pack.pack.city.hours
        self.mail_domain = pack.pack.city.mail_domain.lower()
        self.fail_open = getattr(pack.pack, "web_fail_mode", "closed") == "open"
        self.roles_of = roles_of
        self.contacts = contacts
        rules = pack.rules_for("web")
        self.block_categories = frozenset(c for r in rules if r.action == "block" for c in r.when.categories)
        self.memo_enabled = set(When.model_fields) <= KNOWN_WHEN
        if not self.memo_enabled:
            log.warning("pack rule conditions have fields this helper does not know (%s): evaluating every request",
                        ", ".join(sorted(set(When.model_fields) - KNOWN_WHEN)))
        self.cache_size = cache_size
        self.now = datetime.now(timezone.utc)  # the time of the block being answered
        self.grants = grants or Grants(pack.id)
        self.grants_since = self.now  # answers depending on grants hold from here until grants_end
        self.grants_end = self.grants.next_end(self.now)
        self.grants_checked = time.monotonic()
        self.reset_caches()
        if index is not None:
            tables = index.tables()  # inlined look-ups for speed: CategoryIndex.lookup is the reference
            self.domains, self.domain_sets = tables.domains, tables.domain_sets
            self.urls, self.url_sets = tables.urls, tables.url_sets
            self.url_hosts = tables.url_hosts
            self.has_urls = len(tables.urls) > 0
            remap = pack.pack.category_map
            self.set_pairs: list[tuple[tuple[str, str, str], ...]] = [
                tuple((cat, name, remap.get(name, remap.get(cat, cat))) for cat, name in pairs)
                for pairs in tables.set_matches]
        self.fast: Any = None  # the compiled path's tables (None: this state decides in Python)
        if compiled and _fastpath is not None and index is not None and tables.domain_hashes is not None:
            try:
                self.fast = _fastpath.Tables(tables.domain_hashes, tables.url_hashes, tables.hash_seeds,
                                             tables.url_hosts, NO_SIGNATURE, _SOFTWARE_EXT, _MEDIA_EXT)
            except ValueError as exc:  # e.g. a big-endian machine: the Python path answers the same
                log.warning("compiled per-line path unavailable (%s): deciding in pure Python", exc)

    def reset_caches(self) -> None:
        """Forget cached answers and users (directory changes are seen within the roles TTL)."""
        self.memo: dict[tuple[Any, ...], Outcome] = {}
        self.sig_cache: dict[tuple[int, ...], tuple[int, Signature]] = {}
        self.sig_numbers: dict[Signature, int] = {(): 0}
        self.host_sigs: dict[str, tuple[int, Signature]] = {}
        self.users: dict[bytes, tuple[str, frozenset[str], frozenset[str]]] = {}
        self.fresh: dict[tuple[bytes, bytes, bool], tuple[bytes, str, Outcome | None]] = {}
        self.stale: dict[tuple[bytes, bytes, bool], tuple[bytes, str, Outcome | None]] = {}
        self.born = time.monotonic()

    def decide(self, url_tok: bytes, user_tok: bytes, work: bool) -> tuple[bytes, str, Outcome | None]:
        """The answer for (URL, user, window), from the cache or :meth:`_decide`.

        The cache is two generations of dicts: hits are looked up in the fresh one, then the stale one
        (and promoted); when the fresh one holds half the size, it becomes the stale one and the old stale
        one is dropped. That bounds it at ``cache_size`` entries and keeps what is in use, like an LRU,
        at the cost of one dict look-up."""
        key = (url_tok, user_tok, work)
        out = self.fresh.get(key)
        if out is None:
            return self.miss(key)
        return out

    def miss(self, key: tuple[bytes, bytes, bool]) -> tuple[bytes, str, Outcome | None]:
        out = self.stale.get(key)
        if out is None:
            out = self._decide(*key)
        fresh = self.fresh
        fresh[key] = out
        if len(fresh) * 2 >= self.cache_size:
            self.stale, self.fresh = fresh, {}
        return out

    # -- users ----------------------------------------------------------------------------------------

    def user(self, token: bytes) -> tuple[str, frozenset[str], frozenset[str]]:
        """(email, roles, granted exemptions) of the user Squid names; '-' and people the directory does not
        know are employees without grants."""
        hit = self.users.get(token)
        if hit is not None:
            return hit
        email = user_email(token, self.mail_domain)
        roles = EMPLOYEE
        granted: frozenset[str] = frozenset()
        if email:
            try:
                found = self.roles_of(email)
            except Exception as exc:  # noqa: BLE001 - store down: an employee until it answers again
                log.error("directory lookup of %s failed (%s): treated as an employee", email,
                          str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                found = None
            if found:
                roles = frozenset(found) | EMPLOYEE
            if found is not None:
                granted = self.grants.for_actor(email, roles, self.now)
        if len(self.users) > 50_000:
            self.users.clear()
        self.users[token] = (email, roles, granted)
        return email, roles, granted

    def set_grants(self, grants: Grants) -> None:
        """Decide with these grants from now on (cached answers may depend on the old ones: forget them)."""
        self.grants = grants
        self.grants_checked = time.monotonic()
        self.regrant()

    def grants_stale(self, now: datetime) -> bool:
        """Whether answers cached before `now` (block time) may have changed: a grant ended in between, or
        the clock went back (a test clock, or a stepped system clock) before the time they were computed."""
        return (self.grants_end is not None and now >= self.grants_end) or (
            now < self.grants_since and bool(self.grants.grants))

    def regrant(self) -> None:
        """Forget what depends on the grants (users' grants and cached answers), from the block time on."""
        self.grants_since = self.now
        self.grants_end = self.grants.next_end(self.now)
        self.reset_caches()

    # -- URLs ------------------------------------------------------------------------------------------

    @staticmethod
    def parse(text: str) -> Parts:
        """(scheme, host, port, path, query, is_ip) of the URL's canonical form; raises BadURLError."""
        parts = fast_parts(text)
        if parts is None:
            u = normalise_url(text)
            parts = (u.scheme, u.host, u.port, u.path, u.query, u.is_ip)
        return parts

    def signature(self, host: str, is_ip: bool, path: str, query: str) -> tuple[int, Signature]:
        """(number, signature): what the engine's web check reports for this URL's lists,
        ((category, list), ...) in its order; equal signatures have equal numbers."""
        if self.index is None:
            raise _Fail(b"", "category index unavailable: " + (self.index_error or "not loaded"))
        sids: list[int] = []
        if self.has_urls:
            url_hosts = self.url_hosts
            if host in url_hosts:
                self._url_sets(f"{host}{path}?{query}" if query else host + path, sids)
            if host[:4] == "www." and host[4:] in url_hosts:
                self._url_sets(f"{host[4:]}{path}?{query}" if query else host[4:] + path, sids)
        if not sids:  # only the host matters: many requests share it
            found = self.host_sigs.get(host)
            if found is None:
                found = self._domain_signature(host, is_ip, sids)
                if len(self.host_sigs) > 100_000:
                    self.host_sigs.clear()
                self.host_sigs[host] = found
            return found
        return self._domain_signature(host, is_ip, sids)

    def _domain_signature(self, host: str, is_ip: bool, sids: list[int]) -> tuple[int, Signature]:
        hits = self.domains.prefixes(f"!{host}." if is_ip else ".".join(host.split(".")[::-1]) + ".")
        if hits:
            trie, sets = self.domains, self.domain_sets
            for hit in reversed(hits):
                sids.append(sets[trie.key_id(hit)])
        if not sids:
            return NO_SIGNATURE
        ids = tuple(sids)
        found = self.sig_cache.get(ids)
        if found is None:
            found = self.signature_of(ids)
        return found

    def signature_of(self, ids: tuple[int, ...]) -> tuple[int, Signature]:
        """(number, signature) of the lists' set ids *ids* (most specific first), remembered in ``sig_cache``."""
        seen: dict[str, tuple[str, str]] = {}
        for sid in ids:
            for cat, name, mapped in self.set_pairs[sid]:
                if cat not in seen:
                    seen[cat] = (mapped, name)
        sig = tuple(seen.values())
        found = (self.sig_numbers.setdefault(sig, len(self.sig_numbers) + 1), sig)
        if len(self.sig_cache) > 100_000:
            self.sig_cache.clear()
        self.sig_cache[ids] = found
        return found

    def _url_sets(self, hp: str, out: list[int]) -> None:
        trie, sets = self.urls, self.url_sets
        for entry in reversed(trie.prefixes(hp)):
            n = len(entry)
            if n < len(hp) and entry[-1] != "/" and hp[n] not in "/?" and not (hp[n] == "&" and "?" in entry):
                continue  # not at a segment boundary
            out.append(sets[trie.key_id(entry)])

    # -- deciding --------------------------------------------------------------------------------------

    def _decide(self, url_tok: bytes, user_tok: bytes, work: bool) -> tuple[bytes, str, Outcome | None]:
        """(answer, audit subject, outcome to audit or None); cached per (URL, user, window) by ``decide``."""
        if b"%" in url_tok or not url_tok.isascii():
            text = _decode(url_tok)
        else:
            text = url_tok.decode("ascii")
        if not text or len(text) > MAX_LINE:
            raise _Fail(BAD_REQUEST, "empty or over-long URL")
        parts = fast_parts(text)
        if parts is None:
            try:
                u = normalise_url(text)
            except BadURLError:
                raise _Fail(BAD_URL, "not a valid URL", text[:300]) from None
            parts = (u.scheme, u.host, u.port, u.path, u.query, u.is_ip)
        _, host, _, path, query, is_ip = parts
        sig_no, sig = self.signature(host, is_ip, path, query)
        user = self.users.get(user_tok) or self.user(user_tok)
        roles, granted = user[1], user[2]
        ext = _ext_kind(path) if path[-1] == "/" or "." in path[path.rfind("/"):] else ""
        out = self.memo.get((sig_no, ext, roles, granted, work)) if self.memo_enabled else None
        if out is None:
            out = self.outcome(parts, sig_no, sig, ext, user[0], roles, work, text, granted)
        if out.detail is None:
            return out.answer, "", None
        return out.answer, f"{host}{path}?{query}" if query else host + path, out

    def outcome(self, parts: Parts, sig_no: int, sig: Signature, ext: str, email: str, roles: frozenset[str],
                work: bool, url_text: str, granted: frozenset[str] = frozenset()) -> Outcome:
        """The engine's decision for this URL and user, as an answer; memoised on what it depends on (the
        user's roles and granted exemptions, not who they are)."""
        url = NormalURL(*parts, original=url_text)
        event = WebEvent(actor=Actor(email=email, roles=roles), at=self.now, url=url, granted_exemptions=granted)
        with web_checks.using_index(self.index):  # the engine's web check reads this state's index
            if self.memo_enabled:
                expected = [(cat, frozenset({f"list:{name}"})) for cat, name in sig]
                if ext:
                    expected.append((f"{ext}-download", frozenset({f"download:{ext}"})))
                got = [(s.category, s.tags) for s in web_checks.signals(event, self.pack)]
                if got != expected:
                    self.memo_enabled = False
                    log.warning("the engine's web signals for %s differ from the helper's signature (%s != %s): "
                                "evaluating every request from now on", url.host, got, expected)
            decision = evaluate(event, self.pack, count=False)  # answers are counted per block, cached or not
        out = self.make_outcome(decision, [c for c, _ in sig])
        if self.memo_enabled:
            if len(self.memo) >= 100_000:
                self.memo.clear()
            self.memo[(sig_no, ext, roles, granted, work)] = out
        return out

    def make_outcome(self, decision: Decision, matched: Sequence[str]) -> Outcome:
        answer = blockpage.answer_for(self.pack, decision, matched, self.contacts)
        if decision.action == "allow":
            return Outcome(answer, "allow", None)
        detail = {"decision": decision.action,
                  "findings": [{"rule": f.rule, "clause": f.clause, "category": f.category, "action": f.action,
                                **({"exempted_by": f.exempted_by} if f.exempted_by else {})}
                               for f in decision.findings]}
        return Outcome(answer, decision.action, detail)

    def fail_answer(self, sig: Signature | None, reason: str) -> tuple[bytes, str]:
        """(answer, mode) by the pack's fail mode; *sig* is None when even the index lookup failed."""
        if self.fail_open:
            return b" OK log=" + blockpage.enc(f"civicaup-error:{reason[:80]}").encode() + b"\n", "open"
        if sig is None:
            return UNAVAILABLE, "closed"
        listed = [c for c, _ in sig if c in self.block_categories]
        if listed:
            msg = (f"civicaup could not finish deciding, and this site is listed as {', '.join(listed)}, "
                   f"which policy {self.pack.id} prohibits: refused until it can decide.")
            return (b" ERR message=" + blockpage.enc(msg).encode() + b" log="
                    + blockpage.enc(f"fail-closed:{','.join(listed)}").encode() + b"\n"), "closed"
        return b" OK log=" + blockpage.enc(f"civicaup-error:{reason[:80]}").encode() + b"\n", "closed-not-listed"


_said_pure_python: list[bool] = []


def _say_pure_python_once() -> None:
    if not _said_pure_python:
        _said_pure_python.append(True)
        log.warning("the compiled per-line path (civicaup.channels.web._fastpath) is not built (%s): "
                    "deciding in pure Python, at a fraction of the speed; reinstall with a C compiler and "
                    "the Python headers to build it", FASTPATH_ERROR)


BAD_URL = b" ERR message=" + blockpage.enc("bad request: not a valid URL").encode() + b" log=bad-url\n"
UNAVAILABLE = b" ERR message=" + blockpage.enc(UNAVAILABLE_MSG).encode() + b" log=civicaup-unavailable\n"


def user_email(token: bytes, mail_domain: str) -> str:
    """The e-mail address of the user Squid names ('' for '-'): a bare name is ``name@<mail domain>``."""
    name = _decode(token).strip().lower()
    if "\\" in name:
        name = name.rsplit("\\", 1)[1]  # DOMAIN\user (NTLM / Negotiate)
    if not name or name == "-":
        return ""
    return name if "@" in name else f"{name}@{mail_domain}"


def _ext_kind(path: str) -> str:
    """'software', 'media' or '' by the file extension, as the engine's web check reads it."""
    stripped = path.rstrip("/")
    if "." not in stripped[stripped.rfind("/") + 1:]:
        return ""
    ext = posixpath.splitext(stripped)[1].lower()
    if ext in _SOFTWARE_EXT:
        return "software"
    if ext in _MEDIA_EXT:
        return "media"
    return ""


def _decode(token: bytes) -> str:
    """A URL-escaped helper field as text."""
    if b"%" in token:
        token = unquote_to_bytes(token)
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return token.decode("utf-8", "replace")


# -- the helper ------------------------------------------------------------------------------------------


@dataclass
class Stats:
    lines: int = 0
    bad: int = 0
    failed: int = 0
    reloads: int = 0
    watchdog: int = 0


@dataclass
class _Block:
    """One read's worth of lines; ``answers`` holds one answer per non-empty line, in order."""
    lines: list[bytes] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    abandoned: bool = False
    decided: list[Outcome] = field(default_factory=list)  # outcomes of the answered non-allow lines (metrics)
    odd: int = 0  # lines without the concurrent protocol's fields
    allowed: int = 0  # allow answers, set when the block is done


def store_roles(policy: str) -> RoleLookup:
    """The directory lookup: ``find_person`` in the store, inactive people count as unknown."""
    from civicaup.stores.db import open_store
    from civicaup.stores.directory import find_person

    def roles_of(email: str) -> tuple[str, ...] | None:
        person = find_person(open_store(), policy, email)
        return tuple(person.roles) if person is not None and person.active else None

    return roles_of


def store_grants(policy: str) -> GrantSource:
    """The city's exemption grants from the store, read afresh each call (the helper keeps its own copy)."""
    from civicaup.governance import grants_cache
    from civicaup.stores.db import open_store

    def grants() -> Grants:
        return grants_cache.snapshot(open_store(), policy, max_age=0)

    return grants


def store_contacts(pack: CompiledPack, roles: Sequence[str]) -> blockpage.Contacts:
    """Whom to ask for exemptions, from the directory (titles only if the store cannot be read)."""
    from civicaup.stores.db import open_store
    from civicaup.stores.directory import list_people

    try:
        people = [(p.email, p.roles) for p in list_people(open_store(), pack.id)]
    except Exception as exc:  # noqa: BLE001
        log.warning("directory unavailable for the block page contacts: %s", str(exc).splitlines()[0][:200])
        people = []
    return blockpage.contacts_for(pack, people, roles)


class Helper:
    """The protocol: blocks of whole lines in, answers out. :func:`serve` runs it on stdin/stdout."""

    def __init__(self, policy: str, *, index_path: Path | None = None, cache_size: int = 131_072,
                 clock: Clock | None = None, audit: AuditWriter | ProcessAuditWriter | None = None,
                 roles_of: RoleLookup | None = None,
                 contacts: Callable[[CompiledPack, Sequence[str]], blockpage.Contacts] | None = None,
                 line_budget: float = 2.0, roles_ttl: float = 300.0, grants: GrantSource | None = None,
                 grants_ttl: float = 60.0, compiled: bool | None = None) -> None:
        self.policy = policy
        if compiled is None:  # the compiled path unless CIVICAUP_PURE_PYTHON=1
            compiled = os.environ.get("CIVICAUP_PURE_PYTHON", "").strip().lower() not in ("1", "true", "yes")
        if compiled and _fastpath is None:
            _say_pure_python_once()
        self.compiled = compiled and _fastpath is not None
        self.index_path = index_path
        self.cache_size = cache_size
        self.clock = clock or Clock()
        self.audit = audit
        self.roles_of = roles_of or store_roles(policy)
        # exemption grants come from the store, like the directory; a directory given without grants has none
        self.grants_of = grants if grants is not None else (store_grants(policy) if roles_of is None else None)
        self.grants_ttl = grants_ttl
        self._pending_grants: Grants | None = None
        self._grants_thread: threading.Thread | None = None
        self.contacts = contacts or store_contacts
        self.line_budget = line_budget
        self.roles_ttl = roles_ttl
        self.stats = Stats()
        self.state: State | None = None
        self.load_error = ""
        self._pending_state: State | None = None
        self._reload_thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self._block: _Block | None = None
        self._busy_since = 0.0
        self._fail_logged: dict[str, float] = {}
        self.reload(sync=True)

    # -- loading ----------------------------------------------------------------------------------------

    def _build_state(self, previous: State | None) -> State:
        pack = get_pack(self.policy)
        path = self.index_path or default_index_path()
        old = previous.index if previous is not None else None
        index: CategoryIndex | None = None
        index_error = ""
        try:
            if path.exists() or self.index_path is not None:
                index = CategoryIndex.load_if_changed(path, old if old is not None and old.path == path else None,
                                                      interval=0.0)
            else:
                index = CategoryIndex.starter()
        except CivicaupError as exc:
            index_error = str(exc)
            index = old  # keep serving with the index we have, if any
            log.error("category index: %s%s", exc, "; keeping the loaded one" if old is not None else "")
        rules = pack.rules_for("web")
        roles = sorted({"it"} | {r for rule in rules if rule.approvers for r in rule.approvers.roles})
        state = State(pack, index, self.roles_of, self.contacts(pack, roles), cache_size=self.cache_size,
                      index_error=index_error, grants=self._read_grants(previous), compiled=self.compiled)
        if self.compiled and index is not None and index.tables().domain_hashes is None:
            log.warning("category index %s has no domain hash table (format version 1): deciding in pure "
                        "Python until it is rebuilt with 'civicaup categories build'", index.path or "starter")
        return state

    def _read_grants(self, previous: State | None) -> Grants | None:
        if self.grants_of is None:
            return None
        try:
            return self.grants_of()
        except Exception as exc:  # noqa: BLE001 - decide without grants (the stricter answer) rather than not at all
            kept = previous.grants if previous is not None else None
            log.error("exemption grants of policy %s unavailable (%s)%s", self.policy,
                      str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                      "; keeping the loaded ones" if kept is not None else "; deciding without them")
            return kept

    def refresh_grants(self, st: State) -> None:
        """Between blocks: every ``grants_ttl`` seconds read the grants in a thread; swap them in when they
        changed (a grant made or ended elsewhere), forgetting the answers that may depend on them."""
        thread = self._grants_thread
        if thread is not None:
            if thread.is_alive():
                return
            self._grants_thread = None
            pending, self._pending_grants = self._pending_grants, None
            if pending is not None and pending != st.grants:
                st.set_grants(pending)
                log.info("exemption grants of policy %s changed: %d current", self.policy, len(pending.grants))
            return
        if self.grants_of is None or time.monotonic() - st.grants_checked < self.grants_ttl:
            return
        st.grants_checked = time.monotonic()  # one attempt a TTL, whether it works or not
        source = self.grants_of

        def work() -> None:
            try:
                self._pending_grants = source()
            except Exception as exc:  # noqa: BLE001 - keep the loaded grants
                log.error("exemption grants of policy %s unavailable (%s); keeping the loaded ones", self.policy,
                          str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)

        self._grants_thread = threading.Thread(target=work, name="civicaup-grants", daemon=True)
        self._grants_thread.start()

    def reload(self, *, sync: bool = False) -> None:
        """Reload pack, index and directory: now (sync), or in a thread and swapped in before the next block."""
        if sync:
            try:
                self._install(self._build_state(self.state))
            except Exception as exc:  # noqa: BLE001 - keep serving with what we have
                self.load_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("cannot load policy %s: %s%s", self.policy, self.load_error,
                          "; keeping the loaded one" if self.state else "")
            return
        if self._reload_thread is not None and self._reload_thread.is_alive():
            return

        def work() -> None:
            try:
                self._pending_state = self._build_state(self.state)
            except Exception as exc:  # noqa: BLE001
                self.load_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("reload of policy %s failed%s: %s", self.policy,
                          ", keeping the loaded one" if self.state else "", self.load_error)

        self._reload_thread = threading.Thread(target=work, name="civicaup-reload", daemon=True)
        self._reload_thread.start()

    def reload_done(self) -> bool:
        return self._reload_thread is None or not self._reload_thread.is_alive()

    def _install(self, state: State) -> None:
        self.state = state  # its index is scoped to its own evaluations (State.outcome), not set process-wide
        self.load_error = ""
        self.stats.reloads += 1

    def swap_if_ready(self) -> bool:
        st = self._pending_state
        if st is None:
            return False
        self._pending_state = None
        self._install(st)
        from civicaup.operations.reload import describe
        log.info("reloaded %s, %s", describe(st.pack), st.index)
        return True

    def housekeeping(self) -> None:
        """Between blocks: swap in a reloaded state; forget cached users after the roles TTL; refresh the
        exemption grants."""
        self.swap_if_ready()
        st = self.state
        if st is not None and time.monotonic() - st.born > self.roles_ttl:
            st.reset_caches()
        if st is not None:
            self.refresh_grants(st)

    # -- blocks of lines ---------------------------------------------------------------------------------

    def process(self, data: bytes) -> bytes:
        """Answer every line of *data* (whole lines); returns the answers. What ``serve`` does per block."""
        block = _Block()
        self.run_block(data.split(b"\n"), block)
        return b"".join(block.answers)

    def run_block(self, lines: list[bytes], block: _Block) -> None:
        st = self.state
        block.lines = lines
        self._block = block
        self._busy_since = time.monotonic()
        try:
            if st is None:
                self._run_unavailable(lines, block)
            else:
                self._run(lines, block, st)
        except Exception as exc:  # noqa: BLE001 - a bug outside the per-line guard: still answer every line
            self._log_fail(f"{type(exc).__name__}: {exc}")
            metrics.helper_error("internal")
            fallback = self._fallback(b"civicaup-error")
            for line in [x for x in lines if x][len(block.answers):]:
                ch = line.split(b" ", 1)[0]
                block.answers.append(ch + fallback if ch.isdigit() else fallback[1:])
        finally:
            self._busy_since = 0.0
            metrics.helper_block(self.policy, block, self.stats)

    def _run(self, lines: list[bytes], block: _Block, st: State) -> None:
        now = st.now = self.clock.now(st.tz)
        if st.grants_stale(now):
            st.regrant()
        work = is_work_time(now, st.hours, st.tz)
        miss = st.miss
        answers = block.answers
        decided = block.decided
        put = self.audit.put if self.audit is not None else None
        if st.fast is not None:  # the compiled loop: the same answers and audit entries
            self.stats.lines += _fastpath.run(self, st, lines, block, work, put)
            block.allowed = len(answers) - block.odd - len(decided)
            return
        n = 0
        for line in lines:
            if not line:
                continue
            n += 1
            parts = line.split(b" ", 3)  # channel, URL, user, "client-ip method [...]"
            if len(parts) == 4 and parts[0].isdigit() and b" " in parts[3]:
                key = (parts[1], parts[2], work)
                try:
                    out = st.fresh.get(key) or miss(key)
                except Exception as exc:  # noqa: BLE001 - never leave Squid without an answer
                    out = self._failed(exc, parts[1], st)
                if block.abandoned:
                    break
                answers.append(parts[0] + out[0])
                if out[2] is not None:
                    decided.append(out[2])
                    if put is not None:
                        put((now, parts[2], parts[3], out[1], out[2]))
            else:
                block.odd += 1
                self._odd_line(line, block, work, st)
                if block.abandoned:
                    break
        self.stats.lines += n
        block.allowed = len(answers) - block.odd - len(decided)

    def _odd_line(self, line: bytes, block: _Block, work: bool, st: State) -> None:
        """A line without a channel id (concurrency off: URL USER IP METHOD), or a malformed one."""
        parts = line.rstrip(b"\r").split(b" ", 2)  # URL, user, "client-ip method [...]"
        if parts[0].isdigit():  # a channel id but not the fields
            self.stats.bad += 1
            block.answers.append(parts[0] + BAD_REQUEST)
            return
        if len(parts) < 3 or b" " not in parts[2] or len(line) > MAX_LINE:
            self.stats.bad += 1
            block.answers.append(BAD_REQUEST[1:])
            return
        try:
            out = st.decide(parts[0], parts[1], work)
        except Exception as exc:  # noqa: BLE001
            out = self._failed(exc, parts[0], st)
        block.answers.append(out[0][1:])
        if out[2] is not None and self.audit is not None:
            self.audit.put((st.now, parts[1], parts[2], out[1], out[2]))

    def _run_unavailable(self, lines: list[bytes], block: _Block) -> None:
        """No pack could be loaded: every line gets the closed answer (the fail mode is in the pack we lack)."""
        for line in lines:
            if not line:
                continue
            ch = line.split(b" ", 1)[0]
            ch = ch if ch.isdigit() else b""
            block.answers.append(ch + UNAVAILABLE if ch else UNAVAILABLE[1:])
            self.stats.failed += 1
        self._log_fail("policy not loaded: " + (self.load_error or "unknown error"))

    def _failed(self, exc: Exception, url_tok: bytes, st: State) -> tuple[bytes, str, Outcome | None]:
        """Answer a line whose decision raised: a refused bad request, or the fail mode (logged, audited)."""
        if isinstance(exc, _Fail) and exc.answer:
            self.stats.bad += 1
            return exc.answer, exc.subject, Outcome(exc.answer, "bad-request", {"decision": "bad-request",
                                                                               "error": exc.reason})
        self.stats.failed += 1
        reason = exc.reason if isinstance(exc, _Fail) else f"{type(exc).__name__}: {exc}"
        sig: Signature | None = None
        subject = ""
        try:
            _, host, _, path, query, is_ip = State.parse(_decode(url_tok))
            subject = f"{host}{path}?{query}" if query else host + path
            sig = st.signature(host, is_ip, path, query)[1]
        except Exception:  # noqa: BLE001 - the lookup itself fails: nothing works
            sig = None
        answer, mode = st.fail_answer(sig, reason)
        self._log_fail(f"{reason} (fail mode {mode})")
        return answer, subject, Outcome(answer, "error", {"decision": "error", "error": reason[:300],
                                                          "fail_mode": mode})

    def _log_fail(self, reason: str) -> None:
        now = time.monotonic()
        key = reason[:120]
        if now - self._fail_logged.get(key, -1e9) > 60:
            self._fail_logged[key] = now
            log.error("cannot decide: %s", reason)

    def _fallback(self, tag: bytes) -> bytes:
        """The answer when nothing could be decided: the pack's fail mode (closed if no pack is loaded)."""
        st = self.state
        if st is not None and st.fail_open:
            return b" OK log=" + tag + b"\n"
        return b" ERR message=" + blockpage.enc(UNAVAILABLE_MSG).encode() + b" log=" + tag + b"\n"

    # -- the watchdog ------------------------------------------------------------------------------------

    def watchdog_check(self, write: Callable[[bytes], None]) -> bool:
        """If the current block has run past the line budget, answer all its lines now (those decided with
        their answers, the rest by the fail mode), write them with *write* and abandon the block."""
        with self.lock:
            block, since = self._block, self._busy_since
            if block is None or not since or block.abandoned or time.monotonic() - since < self.line_budget:
                return False
            block.abandoned = True
            fallback = self._fallback(b"civicaup-timeout")
            done = block.answers[:]
            rest = []
            for line in [x for x in block.lines if x][len(done):]:
                ch = line.split(b" ", 1)[0]
                rest.append(ch + fallback if ch.isdigit() else fallback[1:])
            write(b"".join(done) + b"".join(rest))
            self.stats.watchdog += 1
        self._log_fail(f"a request took longer than {self.line_budget:g} s: answered by the fail mode")
        return True


# -- the audit entries --------------------------------------------------------------------------------------


def coalescer(policy: str, mail_domain: str) -> Callable[[list[Any]], list[Pending]]:
    """Queued (time, user, "client method ...", subject, outcome) -> audit entries, one per distinct
    (user, client, method, URL, decision) in a flush window, with a count and the last time."""

    def coalesce(raw: list[Any]) -> list[Pending]:
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for item in raw:
            at, user, rest, subject, outcome = item
            key = (user, rest, subject, outcome.answer)
            g = groups.get(key)
            if g is None:
                groups[key] = [at, at, 1, item]
            else:
                g[1] = at
                g[2] += 1
        out: list[Pending] = []
        for (user, rest, subject, _), (first, last, count, item) in groups.items():
            outcome: Outcome = item[4]
            client, _, tail = rest.rstrip(b"\r").partition(b" ")
            detail = dict(outcome.detail or {})
            detail["client"] = _decode(client)
            detail["method"] = _decode(tail.split(b" ", 1)[0])
            detail["user"] = _decode(user)
            if count > 1:
                detail["count"] = count
                detail["last"] = last.isoformat()
            out.append(Pending(first, user_email(user, mail_domain) or "-", f"web-{outcome.action}", subject,
                               policy, detail))
        return out

    return coalesce


# -- serving on stdin/stdout -----------------------------------------------------------------------------


def serve(helper: Helper, fd_in: int = 0, fd_out: int = 1, *, read_size: int = 256 * 1024,
          on_ready: Callable[[], None] | None = None) -> int:
    """Answer Squid until end of input or SIGTERM; SIGHUP reloads. Returns the exit status (0)."""
    flags = {"stop": False, "hup": False}

    def on_term(_sig: int, _frame: Any) -> None:
        flags["stop"] = True

    def on_hup(_sig: int, _frame: Any) -> None:
        flags["hup"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    from civicaup import settings
    from civicaup.operations.reload import reread_settings

    settings.pin()  # the configuration changes on SIGHUP only

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd_out, view)
            view = view[n:]

    dog_stop = threading.Event()

    def watchdog() -> None:
        while not dog_stop.wait(min(0.1, helper.line_budget / 4)):
            try:
                helper.watchdog_check(write)
            except OSError:
                return

    threading.Thread(target=watchdog, name="civicaup-watchdog", daemon=True).start()
    if on_ready is not None:
        on_ready()
    buf = b""
    last_retry = time.monotonic()
    audit = helper.audit
    try:
        while not flags["stop"]:
            if flags["hup"] and helper.reload_done():  # a SIGHUP during a reload is served after it
                flags["hup"] = False
                log.info("SIGHUP: reloading policy %s, directory and index", helper.policy)
                if reread_settings("squid-helper"):  # a broken configuration: logged, the running one kept
                    helper.reload(sync=False)
            helper.housekeeping()
            st = helper.state
            if (st is None or st.index is None) and time.monotonic() - last_retry > 10:
                last_retry = time.monotonic()
                helper.reload(sync=False)
            ready, _, _ = select.select([fd_in], [], [], 0.5)
            if not ready:
                if audit is not None:
                    audit.tick()
                continue
            data = os.read(fd_in, read_size)
            if not data:
                break
            buf += data
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > MAX_LINE:  # a line longer than any URL Squid sends: refuse it whole
                    lines, buf = [buf], b""
                else:
                    continue
            else:
                lines, buf = buf[:cut].split(b"\n"), buf[cut + 1:]
            block = _Block()
            helper.run_block(lines, block)
            with helper.lock:
                helper._block = None
                if not block.abandoned and block.answers:
                    write(b"".join(block.answers))
            if audit is not None:
                audit.tick()
    except BrokenPipeError:
        pass
    finally:
        dog_stop.set()
        if audit is not None:
            audit.close()
    log.info("stopped after %d requests (%d bad, %d by the fail mode, %d watchdog answers)", helper.stats.lines,
             helper.stats.bad, helper.stats.failed, helper.stats.watchdog)
    return 0


def main(policy: str, *, index_path: Path | None = None, cache_size: int = 131_072, line_budget: float = 2.0,
         audit_interval: float = 1.0, audit_batch: int = 5000) -> int:
    """``civicaup squid-helper``: logging to stderr (Squid's cache.log), the audit writer, then serve."""
    from civicaup.operations import logs
    from civicaup.stores.db import open_store

    logs.configure()  # [log] format and level; the process id is on every line

    mail_domain = ""
    try:
        mail_domain = get_pack(policy).pack.city.mail_domain.lower()
    except CivicaupError:
        pass  # the helper still starts and answers 'unavailable' until the pack loads
    # the writer process forks: before the store is opened and before any thread starts
    writer = ProcessAuditWriter(open_store, interval=audit_interval, batch=audit_batch,
                                coalesce=coalescer(policy, mail_domain))
    helper = Helper(policy, index_path=index_path, cache_size=cache_size, audit=writer, line_budget=line_budget)
    if helper.state is not None:
        log.info("ready: policy %s, %s, fail mode %s", policy, helper.state.index,
                 "open" if helper.state.fail_open else "closed")
    # The caches hold hundreds of thousands of small tuples and nothing here makes reference cycles worth
    # chasing often: keep what is loaded out of the collector's way and collect young objects less often.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    return serve(helper)
