"""Prometheus metrics: what every civicaup process counts, and the aggregate ``GET /metrics`` serves.

civicaup runs as several processes (the milter, the relay, N Squid helpers started by Squid, ``serve``, CLI
commands), so the counters use prometheus_client's multiprocess mode: each process writes its values to
memory-mapped files in ``<data_dir>/metrics`` (put there in ``$PROMETHEUS_MULTIPROC_DIR`` for the library;
make the folder a symlink to tmpfs if you like), and ``serve`` adds up every file when scraped. The directory
is created on first use and the mode chosen before the first value exists. When it cannot be written the
process counts in memory only (logged once), and only ``serve``'s own counts are visible.

A process that exits cleanly folds its files into the archive files (:mod:`civicaup.operations.metric_files`),
so restarts of the Squid helpers do not pile up files. Decisions are batched in memory and written by a
background thread every ``FLUSH_S`` seconds (a decision then costs a lock and two dict updates, not three
locked file writes); exit and a scrape flush first. Every function here swallows its own failures: counting never breaks a decision.

Metrics (labels in braces):

* ``civicaup_decisions_total{pack,channel,action,category}``: engine decisions; category is the first
  (most severe) finding's, ``none`` for allow. For ``web`` every answered Squid request counts, cached or not.
* ``civicaup_decision_seconds{pack,channel}``: engine decision latency (for ``web``: cache misses only).
* ``civicaup_milter_errors_total{kind}``, ``civicaup_relay_errors_total{kind}``,
  ``civicaup_helper_errors_total{kind}``: see docs/operations.md for the kinds.
* ``civicaup_archive_ingested_total{pack,result}``: result imported, duplicate or failed.
* ``civicaup_quarantine_messages{pack}``, ``civicaup_quarantine_oldest_age_seconds{pack}``: read from the
  store at scrape time (:mod:`civicaup.operations.quarantine_gauges`, in ``serve``).
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("civicaup.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0)
FLUSH_S = 1.0  # batched decision counts reach the metric files within this


class _Set:
    """This process's metric objects, and their label children cached (``labels()`` takes a lock)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return Counter(name, doc, labels, registry=None)

        self.decisions = counter("civicaup_decisions", "Engine decisions by pack, channel, action and the first "
                                 "finding's category", ("pack", "channel", "action", "category"))
        self.latency = Histogram("civicaup_decision_seconds", "Engine decision latency", ("pack", "channel"),
                                 buckets=LATENCY_BUCKETS, registry=None)
        self.milter_errors = counter("civicaup_milter_errors", "Milter errors by kind", ("kind",))
        self.relay_errors = counter("civicaup_relay_errors", "SMTP relay errors by kind", ("kind",))
        self.helper_errors = counter("civicaup_helper_errors", "Squid helper errors by kind", ("kind",))
        self.archive = counter("civicaup_archive_ingested", "Messages offered to the records archive, by result",
                               ("pack", "result"))
        self.children: dict[tuple[Any, ...], Any] = {}

    def all(self) -> tuple[Any, ...]:
        return (self.decisions, self.latency, self.milter_errors, self.relay_errors, self.helper_errors,
                self.archive)

    def child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        key = (id(metric), *labels)
        c = self.children.get(key)
        if c is None:
            c = self.children[key] = metric.labels(*labels)
        return c


_lock = threading.Lock()
_set: _Set | None = None
_disabled = False
_mode = ""  # "multiprocess" or "in-process"
_dir: Path | None = None
_warned: set[str] = set()


def _warn_once(what: str, exc: BaseException | str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("metrics: %s failed (%s); counting goes on where it can", what,
                    exc if isinstance(exc, str) else f"{type(exc).__name__}: {str(exc)[:200]}")


def metrics_dir() -> Path:
    """``<data_dir>/metrics``: every process of one installation finds the same folder from its configuration
    (an inherited ``PROMETHEUS_MULTIPROC_DIR`` is replaced: it may belong to another installation)."""
    from civicaup import settings
    return settings.load().home / "metrics"


def _choose_dir() -> Path | None:
    """The multiprocess directory if this process can write there, else None (in-process counting)."""
    path = metrics_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _warn_once("creating " + str(path), exc.strerror or str(exc))
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        _warn_once("writing to " + str(path), "not writable by this user: counting in this process only")
        return None
    return path


def _start() -> None:
    global _set, _disabled, _mode, _dir
    try:
        from prometheus_client import values
        path = _choose_dir()
        if path is not None:
            os.environ[ENV] = str(path)
            if not getattr(values.ValueClass, "_multiprocess", False):
                values.ValueClass = values.MultiProcessValue()
            _mode, _dir = "multiprocess", path
        else:
            values.ValueClass = values.MutexValue
            _mode, _dir = "in-process", None
        _set = _Set()
    except Exception as exc:  # noqa: BLE001 - no metrics rather than no decisions
        _disabled = True
        _warn_once("starting", exc)


def _metrics() -> _Set | None:
    if _set is None and not _disabled:
        with _lock:
            if _set is None and not _disabled:
                _start()
    return _set


def mode() -> str:
    """``multiprocess``, ``in-process`` or ``off`` (after a failure to start)."""
    _metrics()
    return _mode or "off"


def directory() -> Path | None:
    _metrics()
    return _dir


# ---------------------------------------------------------------- counting (never raises)

class _Batch:
    """Decisions counted since the last flush: a lock and two dict updates a decision (well under a
    microsecond), where writing the metric files directly costs several. A daemon thread flushes every
    ``FLUSH_S`` seconds; exit and ``exposition()`` flush too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str, str, str], int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}  # [sum, n per bucket..., n over the last bound]
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    def add(self, key: tuple[str, str, str, str] | None, n: int, where: tuple[str, str] | None,
            seconds: float) -> None:
        with self.lock:
            if key is not None:
                self.counts[key] = self.counts.get(key, 0) + n
            if where is not None:
                slot = self.latency.get(where)
                if slot is None:
                    slot = self.latency[where] = [0.0] * (len(LATENCY_BUCKETS) + 2)
                slot[0] += seconds
                slot[1 + bisect_left(LATENCY_BUCKETS, seconds)] += 1
            if self.thread is not None:
                return
            thread = self.thread = threading.Thread(target=self._run, name="civicaup-metrics", daemon=True)
        thread.start()  # the first count of this process: the flushing thread, and a way out past os._exit
        _exit_with_multiprocessing()

    def take(self) -> tuple[dict[tuple[str, str, str, str], int], dict[tuple[str, str], list[float]]]:
        with self.lock:
            counts, latency = self.counts, self.latency
            self.counts, self.latency = {}, {}
        return counts, latency

    def _run(self) -> None:
        while not self.stop.wait(FLUSH_S):
            flush()


_batch = _Batch()


def _forget_after_fork() -> None:
    """In a forked child: the parent's pending counts are the parent's to write, its flushing thread is not
    here, and the library's lock may have been copied held: start afresh (the child gets files of its own)."""
    global _batch, _set, _disabled, _mode, _dir, _lock
    _batch = _Batch()
    _lock = threading.Lock()
    if _set is not None:
        _set, _disabled, _mode, _dir = None, False, "", None
        with contextlib.suppress(Exception):
            from prometheus_client import values
            values.ValueClass = values.MutexValue  # _start() chooses again, with new locks


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(lambda: _at_exit())  # a clean exit writes what is batched and folds this process's files


def flush() -> None:
    """Write the batched decisions into the metric values (files, in multiprocess mode)."""
    counts, latency = _batch.take()
    if not counts and not latency:
        return  # nothing counted: no need to set up (a command that decided nothing makes no files)
    s = _set or _metrics()
    if s is None:
        return
    try:
        for key, n in counts.items():
            s.child(s.decisions, key).inc(n)
        for where, slot in latency.items():
            h = s.child(s.latency, where)
            # n observations at once: the histogram's own sum and per-bucket values (what observe() adds to,
            # one bucket per observation, summed across buckets when collected)
            h._sum.inc(slot[0])
            for bucket, n in zip(h._buckets, slot[1:]):
                if n:
                    bucket.inc(n)
    except Exception as exc:  # noqa: BLE001
        _warn_once("writing decision counts", exc)


def decided(decision: Any, seconds: float, *, count: bool = True) -> None:
    """One engine decision and how long it took (``engine.evaluate`` calls this)."""
    if _disabled:
        return
    try:
        f = decision.findings
        where = (decision.policy, decision.channel)
        _batch.add((*where, decision.action, f[0].category if f else "none") if count else None, 1, where, seconds)
    except Exception as exc:  # noqa: BLE001
        _warn_once("counting a decision", exc)


def decisions(pack: str, channel: str, tally: Mapping[tuple[str, str], int]) -> None:
    """Many decisions at once: ``{(action, category): n}``."""
    if _disabled:
        return
    try:
        for (action, category), n in tally.items():
            if n > 0:
                _batch.add((pack, channel, action, category), n, None, 0.0)
    except Exception as exc:  # noqa: BLE001
        _warn_once("counting decisions", exc)


def _error(which: str, kind: str, n: float = 1) -> None:
    s = _set or _metrics()
    if s is None or n <= 0:
        return
    try:
        s.child(getattr(s, which), (kind,)).inc(n)
    except Exception as exc:  # noqa: BLE001
        _warn_once("counting an error", exc)


def milter_error(kind: str) -> None:
    _error("milter_errors", kind)


def relay_error(kind: str) -> None:
    _error("relay_errors", kind)


def helper_error(kind: str, n: int = 1) -> None:
    _error("helper_errors", kind, n)


_seen: dict[int, tuple[Any, tuple[int, ...]]] = {}  # id(counts object) -> (weak reference, counts already added)


def _delta(obj: Any, now: tuple[int, ...]) -> tuple[int, ...]:
    """What *obj*'s running counts added since the last call with it (the first call: all of them)."""
    key = id(obj)
    entry = _seen.get(key)
    before = entry[1] if entry is not None and entry[0]() is obj else (0,) * len(now)
    if entry is None or entry[0]() is not obj:
        _seen[key] = (weakref.ref(obj, lambda _r, k=key: _seen.pop(k, None)), now)
    else:
        _seen[key] = (entry[0], now)
    return tuple(a - b for a, b in zip(now, before))


def archived(pack: str, report: Any) -> None:
    """An archive import's running ImportReport (imported, duplicate, failed): adds what is new since the
    last call with the same report, so calling it after every batch gives a live rate."""
    s = _set or _metrics()
    if s is None:
        return
    try:
        new = _delta(report, (report.imported, report.duplicate, report.failed))
        for result, n in zip(("imported", "duplicate", "failed"), new):
            if n > 0:
                s.child(s.archive, (pack, result)).inc(n)
    except Exception as exc:  # noqa: BLE001
        _warn_once("counting archived messages", exc)


def helper_block(pack: str, block: Any, stats: Any) -> None:
    """One block of Squid helper answers: ``block.allowed`` allow answers and ``block.decided`` outcomes
    (action, detail) of the others; the helper's running ``stats`` give the errors (bad requests, fail-mode
    answers, watchdog answers) since the last block."""
    s = _set or _metrics()
    if s is None:
        return
    try:
        tally: dict[tuple[str, str], int] = {}
        if block.allowed > 0:
            tally[("allow", "none")] = block.allowed
        for o in block.decided:
            if o.action in ("bad-request", "error"):
                continue  # in stats: not decisions
            findings = (o.detail or {}).get("findings") or ()
            key = (o.action, findings[0].get("category", "none") if findings else "none")
            tally[key] = tally.get(key, 0) + 1
        if tally:
            decisions(pack, "web", tally)
        bad, failed, watchdog = _delta(stats, (stats.bad, stats.failed, stats.watchdog))
        for kind, n in (("bad-request", bad), ("fail-mode", failed), ("timeout", watchdog)):
            if n > 0:
                s.child(s.helper_errors, (kind,)).inc(n)
    except Exception as exc:  # noqa: BLE001
        _warn_once("counting helper answers", exc)


# ---------------------------------------------------------------- exit, and the scrape

def _exit_with_multiprocessing() -> None:
    """A multiprocessing child (the milter's decision processes) leaves through os._exit, past atexit: have
    its exit function run ours too."""
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.current_process().name != "MainProcess":
        from multiprocessing.util import Finalize
        Finalize(None, _at_exit, exitpriority=0)


_exited: list[int] = []  # the pid that already ran _at_exit (a process may reach it by two ways)


def exit_child() -> None:
    """A forked child (a process of ``--processes``) about to leave through os._exit: what atexit would do for
    it (the parent's other exit functions are not the child's to run)."""
    _at_exit()


def _at_exit() -> None:
    """A clean exit: write what is batched, close this process's files, drop its live gauges, fold its counts
    into the archive."""
    if os.getpid() in _exited:
        return
    _exited.append(os.getpid())
    batch = _batch
    batch.stop.set()
    if batch.thread is not None and batch.thread is not threading.current_thread():
        batch.thread.join(5)
    flush()
    path = _dir
    if _mode != "multiprocess" or path is None:
        return
    try:
        from prometheus_client import multiprocess, values

        from civicaup.operations import metric_files
        closer = getattr(values, "close_all_multiprocess_files", None)
        if closer is not None:
            closer()
        elif hasattr(values.ValueClass, "close_all_files"):
            values.ValueClass.close_all_files()
        multiprocess.mark_process_dead(os.getpid(), str(path))
        metric_files.fold(path, os.getpid())
    except Exception as exc:  # noqa: BLE001 - the files stay and are still counted
        _warn_once("folding this process's files", exc)


def exposition(*collectors: Any) -> tuple[bytes, str]:
    """The text exposition of every process's metrics plus *collectors*, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    s = _metrics()
    flush()  # this process's own batched decisions
    if _mode == "multiprocess" and _dir is not None:
        from civicaup.operations.metric_files import Files
        registry.register(Files(_dir))
    elif s is not None:
        for metric in s.all():
            registry.register(metric)
    for c in collectors:
        registry.register(c)
    return generate_latest(registry), CONTENT_TYPE_LATEST
