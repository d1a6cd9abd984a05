"""What the milter and the relay share: who is sending, the decision, and what each action does to the message.

    envelope + spooled message --(directory)--> MailEvent --engine--> Decision --> Verdict
        allow / log / flag -> accept, with an X-Civicaup-Decision header (flag: also queued for review)
        block              -> reject, 550 5.7.1 naming the rule and the clause
        hold               -> the raw bytes and the decision committed to the quarantine (fsync), then discard
        any error / budget -> tempfail: the sending MTA keeps the message

A small message held in memory is decided in the event loop's own thread, its budget kept by SIGALRM
(`alarm.py`), and so are the side effects of allow, log and block (a journal file, a log line); anything larger,
any hold or flag (store writes), and every message when that thread cannot take signals, go to a worker (a thread,
or a process pool with `workers > 0`). Side effects run after the decision and before the answer, so a message is
never accepted and then lost.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import logging
import os
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from civicaup.channels.mail.alarm import ALARM, Overrun
from civicaup.channels.mail.journal import Journal, NullJournal
from civicaup.channels.mail.spool import Spool, parse_file
from civicaup.engine.decision import Decision
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import Actor, MailEvent
from civicaup.governance import grants_cache
from civicaup.policy.registry import get_pack

log = logging.getLogger("civicaup.mail")

HEADER = "X-Civicaup-Decision"
DEFAULT_BUDGET = 20.0
# Messages up to this size are decided in the event loop's thread (4,143 of the corpus's 4,150 ham messages; the
# slowest of those decides in about 25 ms). Bigger ones, which may carry documents to extract, keep the pool, so
# one of them does not hold up every other connection while it is read.
INLINE_MAX = 64 << 10


@dataclass
class Envelope:
    """What the MTA told us besides the message: envelope sender and recipients, the SASL login, the queue id."""
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    auth_user: str = ""
    queue_id: str = ""
    message_id: str = ""


@dataclass(frozen=True)
class Verdict:
    """The filter's answer: accept (with header), reject (reply), discard (held), tempfail (reply)."""
    kind: str
    decision: Decision | None = None
    header: str = ""
    reply: str = ""
    quarantine_id: int | None = None


def ascii_safe(text: str, limit: int = 200) -> str:
    """Printable ASCII for SMTP replies and headers: compatibility-folded, marks spelled out, the rest dropped."""
    text = text.replace("¶", "para ").replace("§", "sec. ").replace("\u2019", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "-").replace("\u2014", "-")
    text = unicodedata.normalize("NFKD", text)
    out = "".join(ch for ch in text if 32 <= ord(ch) < 127 and ch != "%")
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 3].rstrip() + "..."


def header_value(decision: Decision) -> str:
    """`<action>; <rule> (clause <c>), ...` for the findings that are not plain allow."""
    out = decision.action
    for i, f in enumerate(decision.findings):
        part = f"{ascii_safe(f.rule, 64)} (clause {ascii_safe(f.clause, 60)})"
        if len(out) + len(part) > 900:  # one header line stays well under SMTP's 998
            return out + ", ..."
        out += ("; " if i == 0 else ", ") + part
    return out


def reject_reply(decision: Decision) -> str:
    """`550 5.7.1 <rule> clause <c>: <quote, shortened, ASCII-safe>` from the first blocking finding."""
    f = next((f for f in decision.findings if f.action == "block"), decision.findings[0])
    return f"550 5.7.1 {ascii_safe(f.rule, 64)} clause {ascii_safe(f.clause, 60)}: {ascii_safe(f.quote, 160)}"


TEMPFAIL_REPLY = "451 4.7.1 civicaup could not check this message now; try again later"


class DirectoryCache:
    """The directory of one policy, read once and refreshed every `ttl` seconds (a filter never waits on it)."""

    def __init__(self, policy: str, engine: Any = None, ttl: float = 60.0) -> None:
        self.policy, self.engine, self.ttl = policy, engine, ttl
        self._people: dict[str, Any] = {}
        self.staff: frozenset[tuple[str, str]] = frozenset()
        self._loaded = -1e9

    def _load(self) -> None:
        from civicaup.stores.directory import list_people
        people = list_people(self.engine, self.policy) if self.engine is not None else []
        self._people = {p.email: p for p in people}
        self.staff = frozenset((p.name, p.email) for p in people if p.name)
        self._loaded = time.monotonic()

    def refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded > self.ttl:
            try:
                self._load()
            except Exception as exc:  # noqa: BLE001 - keep the last good copy; the engine still decides
                log.warning("directory refresh failed: %s", type(exc).__name__)
                self._loaded = time.monotonic()

    def person(self, email: str) -> Any:
        return self._people.get(email.lower())


def identity(envelope: Envelope, mail_domain: str) -> str:
    """The sender identity: the SASL login (a bare user name gets the city's domain), else the envelope sender."""
    user = envelope.auth_user.strip().lower()
    if user:
        return user if "@" in user else f"{user}@{mail_domain.lower()}"
    return envelope.mail_from.strip().lower()


def actor_for(email: str, person: Any) -> Actor:
    if person is None or not getattr(person, "active", True):
        return Actor(email=email)
    return Actor(email=email, roles=frozenset(person.roles) | {"employee"}, department=person.department,
                 name=person.name)


# ---------------------------------------------------------------- the decision (runs in a worker)

_PACKS: dict[str, tuple[float, Any]] = {}
PACK_TTL = 30.0
_PINNED: dict[str, Any] = {}  # in a decision process: the pack its pool was started with (MailGateway.use_pack)


def current_pack(policy: str) -> Any:
    """The pack a decision process was started with; elsewhere the compiled pack, looked up at most every
    PACK_TTL seconds (finding it on disk costs more than deciding a small message)."""
    pinned = _PINNED.get(policy)
    if pinned is not None:
        return pinned
    now = time.monotonic()
    hit = _PACKS.get(policy)
    if hit is None or now - hit[0] > PACK_TTL:
        hit = (now, get_pack(policy))
        _PACKS[policy] = hit
    return hit[1]


def decide(policy: str, source: bytes | str, actor: Actor, sender: str, recipients: tuple[str, ...],
           staff: frozenset[tuple[str, str]], at: datetime | None = None,
           grants: frozenset[str] = frozenset(), pack: Any = None, observe: bool = True) -> Decision:
    """Parse and evaluate one message. `source` is the message bytes or the path of the spooled file; `grants`
    the rule ids the sender holds a current exemption for. A pure function of its arguments (no store access),
    so it runs in a thread or another process. `pack`: the compiled pack (in a thread); None in a decision
    process, which decides with the pack its pool was started with. `observe=False`: not counted in /metrics."""
    pack = pack if pack is not None else current_pack(policy)
    if isinstance(source, (bytes, bytearray)):
        from civicaup.channels.mail.mime import parse_mail
        mail = parse_mail(bytes(source) or b"\r\n")
    else:
        mail = parse_file(source)
    when = (at or datetime.now(timezone.utc)).astimezone(pack.tz)
    event = MailEvent(actor=actor, at=when, mail=mail, sender=sender, recipients=recipients, staff_names=staff,
                      granted_exemptions=grants)
    return evaluate(event, pack, observe=observe)


def _warm(policy: str, pack: Any = None) -> None:
    if pack is not None:
        _PINNED[policy] = pack
    current_pack(policy)
    warm_up(policy, pack)


# A small message that reaches every text detector, so that a warm-up decision loads the word lists and the model.
WARM_MESSAGE = (b"From: warm-up@localhost\r\nTo: warm-up@localhost\r\nSubject: warm-up\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n\r\nA message a filter decides before its first "
                b"real one: call 555-0100, SSN 078-05-1120.\r\n")


def warm_up(policy: str, pack: Any = None) -> None:
    """Decide one synthetic message, so the first real one does not pay for loading word lists and models, and
    move everything loaded so far out of the garbage collector's way (gc.freeze): a full collection over the
    hundreds of thousands of loaded lexicon objects otherwise lands on some unlucky message's latency."""
    import gc

    try:
        decide(policy, WARM_MESSAGE, Actor(email="warm-up@localhost"), "warm-up@localhost", ("warm-up@localhost",),
               frozenset(), None, frozenset(), pack, observe=False)
    except Exception as exc:  # noqa: BLE001 - a real message will meet (and tempfail on) the same problem
        log.warning("warm-up decision failed: %s", type(exc).__name__)
    gc.freeze()


# ---------------------------------------------------------------- the gateway

class MailGateway:
    """One policy's mail filter core, shared by the milter and the relay (and their tests)."""

    def __init__(self, policy: str, *, store: Any = None, journal: Journal | None = None,
                 budget: float = DEFAULT_BUDGET, next_hop: str = "", channel: str = "milter", workers: int = 0,
                 threads: int = 4, inline_max: int = INLINE_MAX) -> None:
        self.pack = get_pack(policy)
        self.inline_max = inline_max
        self.policy = policy
        self.store = store
        self.journal = journal or NullJournal()
        self.budget = budget
        self.next_hop = next_hop
        self.channel = channel
        self.directory = DirectoryCache(policy, store)
        self.threads = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="civicaup-mail")
        self.workers = workers
        self.pool: concurrent.futures.Executor | None = None
        if workers > 0:
            self._new_pool()

    def _new_pool(self) -> None:
        import multiprocessing
        ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        self.pool = concurrent.futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                           initializer=_warm, initargs=(self.policy, self.pack))

    def use_pack(self, pack: Any) -> None:
        """Decide new messages with this pack (SIGHUP reload). Messages being decided finish with the pack they
        started with: in threads they hold it; with `workers`, a new pool starts with the new pack and the old
        one exits once its messages are answered."""
        if pack.id != self.policy:
            raise ValueError(f"pack {pack.id} is not policy {self.policy}")
        old = self.pool
        self.pack = pack
        if old is not None:
            self._new_pool()
            old.shutdown(wait=False)

    def reloader(self) -> Any:
        """SIGHUP's reload of the configuration and this gateway's pack (civicaup.operations.reload), logged
        under the channel's name."""
        from civicaup.operations.reload import Reloader

        return Reloader([self.policy], part=self.channel, apply=lambda packs: self.use_pack(packs[self.policy]))

    def _recycle_pool(self) -> None:
        """A worker overran its budget: stop that pool (killing its processes) and start a fresh one."""
        old = self.pool
        self._new_pool()
        if isinstance(old, concurrent.futures.ProcessPoolExecutor):
            for proc in list(getattr(old, "_processes", {}).values()):
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001
                    pass
            old.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # -- the one entry point

    async def handle(self, envelope: Envelope, spool: Spool, alive: Callable[[], bool] | None = None) -> Verdict:
        """Decide and act; every failure becomes a tempfail (logged with the queue and message id, never the body).
        `alive` tells whether the MTA still waits for the answer: if it gave up, nothing is stored (its retry will be
        decided afresh), so a stalled filter does not leave a held copy of a message the MTA kept."""
        loop = asyncio.get_running_loop()
        try:
            pack = self.pack  # this message is decided with the pack in use now, whatever a reload does meanwhile
            self.directory.refresh_if_stale()
            sender = identity(envelope, pack.pack.city.mail_domain)
            person = self.directory.person(sender)
            actor = actor_for(sender, person)
            grants = await self.grants_for(actor, person)
            spool.flush()
            source: bytes | str = spool.getvalue() if not spool.on_disk else str(spool.path)
            rcpts = tuple(r.lower() for r in envelope.rcpt_to)
            pool = self.pool
            if pool is None and not spool.on_disk and spool.size <= self.inline_max and ALARM.usable():
                try:
                    with ALARM.limit(self.budget):
                        decision = decide(self.policy, source, actor, sender, rcpts, self.directory.staff, None,
                                          grants, pack)
                except Overrun:
                    return self._tempfail(f"over the {self.budget:.0f} s budget", envelope)
                # a journal that does not say it skips fsync is taken to wait on the disk: not in this thread
                if decision.action in ("allow", "log", "block") and getattr(self.journal, "fsync", True) is False:
                    return self.act(decision, envelope, spool, sender, actor, alive)
            else:
                try:
                    decision = await asyncio.wait_for(loop.run_in_executor(
                        pool or self.threads, decide, self.policy, source, actor, sender, rcpts, self.directory.staff,
                        None, grants, None if pool else pack), self.budget)
                except (asyncio.TimeoutError, concurrent.futures.process.BrokenProcessPool) as exc:
                    if pool is not None and self.pool is pool:  # once per broken pool, not once per message in it
                        self._recycle_pool()
                    return self._tempfail(f"over the {self.budget:.0f} s budget" if isinstance(
                        exc, asyncio.TimeoutError) else "a decision process died", envelope)
            # The side effects are not cut short by the budget (a hold is committed, then answered); the extra
            # minute only guards against a store that hangs. Past it the MTA keeps the message (tempfail).
            return await asyncio.wait_for(
                loop.run_in_executor(self.threads, self.act, decision, envelope, spool, sender, actor, alive),
                self.budget + 60)
        except Exception as exc:  # noqa: BLE001 - fail safe: the MTA keeps the message
            log.error("%s: %s, tempfail (queue id %s, message id %s)", self.channel, type(exc).__name__,
                      envelope.queue_id or "-", envelope.message_id or "-")
            return Verdict("tempfail", reply=TEMPFAIL_REPLY)

    def _tempfail(self, why: str, envelope: Envelope) -> Verdict:
        log.warning("%s: %s, tempfail (queue id %s, message id %s)", self.channel, why, envelope.queue_id or "-",
                    envelope.message_id or "-")
        return Verdict("tempfail", reply=TEMPFAIL_REPLY)

    async def grants_for(self, actor: Actor, person: Any) -> frozenset[str]:
        """The rules the sender holds a current exemption from (personally or by role), from the process's grants
        cache (a store query at most once a minute, in a thread). Only senders the directory knows as active
        have grants; if the store cannot be read, none (the stricter decision), and the failure is logged."""
        if self.store is None or person is None or not getattr(person, "active", True):
            return frozenset()
        try:
            snap = grants_cache.peek(self.store, self.policy)
            if snap is None:
                snap = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                    self.threads, grants_cache.snapshot, self.store, self.policy), self.budget)
            return snap.for_actor(actor.email, actor.roles)
        except Exception as exc:  # noqa: BLE001 - decide without exemptions rather than not at all
            log.warning("%s: exemption grants unavailable (%s): deciding without them", self.channel,
                        type(exc).__name__)
            return frozenset()

    def act(self, decision: Decision, envelope: Envelope, spool: Spool, sender: str, actor: Actor,
            alive: Callable[[], bool] | None = None) -> Verdict:
        """The side effects of a decision, done before the MTA is answered. Runs in a thread."""
        action = decision.action
        if alive is not None and not alive() and action != "block":
            log.warning("%s: the MTA gave up waiting; nothing stored (queue id %s, message id %s)", self.channel,
                        envelope.queue_id or "-", envelope.message_id or "-")
            return Verdict("tempfail", decision, reply=TEMPFAIL_REPLY)
        if action == "block":
            f = next((f for f in decision.findings if f.action == "block"), None)
            log.info("%s: block %s clause %s (queue id %s, message id %s)", self.channel, f and f.rule,
                     f and f.clause, envelope.queue_id or "-", envelope.message_id or "-")
            return Verdict("reject", decision, reply=reject_reply(decision))
        if action in ("hold", "flag"):
            from civicaup.channels.mail import quarantine
            if self.store is None:
                raise RuntimeError("no store for the quarantine")
            qid = quarantine.put(self.store, spool, decision, envelope, sender=sender,
                                 department=actor.department, status="held" if action == "hold" else "flagged",
                                 channel=self.channel, next_hop=self.next_hop)
            log.info("%s: %s as quarantine %d (queue id %s, message id %s)", self.channel, action, qid,
                     envelope.queue_id or "-", envelope.message_id or "-")
            if action == "hold":
                return Verdict("discard", decision, quarantine_id=qid)
            self.journal.record(spool, decision, envelope)
            return Verdict("accept", decision, header=header_value(decision), quarantine_id=qid)
        self.journal.record(spool, decision, envelope)
        return Verdict("accept", decision, header=header_value(decision))
