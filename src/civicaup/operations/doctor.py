"""``civicaup doctor``: is this installation able to run? One line per check, ``ok``, ``warn`` or ``fail``, each
saying what was found and what to do about it. Nothing is changed: the store is opened without migrating, the
mail server and proxy are only asked (see :mod:`civicaup.operations.probes`).

Checks, in order: the configuration (as ``config check``), the store (reachable, schema at the newest migration,
``SELECT 1``, SQLite's ``quick_check``), every enabled pack (loads, coverage without gaps), the URL category index
(there, readable, not older than ``INDEX_MAX_DAYS``), the clock (each pack's time zone known, NTP-synchronised
when ``time_zone_check`` is on, not behind the newest audit entry), the metrics directory, then Postfix and
Squid. A check that itself breaks is a ``fail`` naming the error, never a traceback.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from civicaup import settings

INDEX_MAX_DAYS = 30
CLOCK_SLACK_S = 60.0  # audit entries written by another host's clock may be this far ahead


@dataclass(frozen=True)
class Check:
    status: str  # ok, warn or fail
    name: str
    message: str

    def line(self, width: int = 14) -> str:
        return f"{self.status:<4}  {self.name:<{width}}  {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "name": self.name, "message": self.message}


class _Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def __call__(self, status: str, name: str, message: str) -> None:
        self.checks.append(Check(status, name, " ".join(message.split())))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# ---------------------------------------------------------------- configuration

def config(report: _Report) -> settings.Settings | None:
    from civicaup.interfaces.cli.config import problems

    found = problems()
    for line in found:
        report("fail", "config", f"{line}; fix it (civicaup config check lists every problem)")
    try:
        cfg = settings.read()
    except settings.ConfigError:
        return None
    if not found:
        path = settings.config_file()
        report("ok", "config", f"{path}: valid" if path else "no configuration file; defaults and environment: valid")
    return cfg


# ---------------------------------------------------------------- the store

def _masked(url: str) -> str:
    return settings._mask_url(url)


def store(cfg: settings.Settings, report: _Report) -> Any:
    """Returns an engine on the store when it is usable (for the checks that read it), else None."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = cfg.database_url()
    shown = _masked(url)
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database and not Path(parsed.database).exists():
        report("warn", "store", f"{shown}: no store yet; it is created and migrated by the first command or "
                                "service that uses it (e.g. 'civicaup directory import')")
        return None
    args: dict[str, Any] = {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}
    engine = create_engine(url, connect_args=args, poolclass=_null_pool())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = _revision(conn)
            integrity = (conn.exec_driver_sql("PRAGMA quick_check").scalar() or "") if sqlite else "ok"
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy or driver errors alike
        orig = getattr(exc, "orig", exc)
        report("fail", "store", f"cannot use {shown}: {_first_line(orig)}; check store_url, that the database "
                                "server runs and that this user may connect")
        return None
    head = _head(url)
    if integrity != "ok":
        report("fail", "store", f"{shown}: SQLite quick_check reports {integrity[:200]!r}; stop the services and "
                                "restore the latest backup")
    elif current != head:
        known = current is None or _known(url, current)
        report("fail", "store", (f"{shown}: schema at {current or 'nothing'}, newest is {head}: any civicaup command "
                                 "that opens the store migrates it (e.g. 'civicaup quarantine list')") if known else
               (f"{shown}: schema at {current}, which this civicaup does not know (newest {head}): the store was "
                "made by a newer civicaup; upgrade civicaup"))
    else:
        report("ok", "store", f"{shown}: answers, schema at {head} (newest)"
                              + (", SQLite quick_check ok" if sqlite else ""))
        return engine
    return None


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool
    return NullPool


def _revision(conn: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext
    return MigrationContext.configure(conn).get_current_revision()


def _scripts(url: str) -> Any:
    from alembic.script import ScriptDirectory

    from civicaup.stores.db import alembic_config
    return ScriptDirectory.from_config(alembic_config(url))


def _head(url: str) -> str | None:
    return _scripts(url).get_current_head()


def _known(url: str, revision: str) -> bool:
    try:
        return _scripts(url).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises for unknown ids
        return False


# ---------------------------------------------------------------- packs

def enabled_packs(cfg: settings.Settings) -> list[str]:
    from civicaup.policy.registry import pack_ids
    return list(cfg.packs) or pack_ids()


def packs(cfg: settings.Settings, report: _Report) -> list[Any]:
    from civicaup.policy.coverage import coverage
    from civicaup.policy.registry import get_pack

    loaded = []
    ids = enabled_packs(cfg)
    if not ids:
        report("fail", "packs", "no policy pack is installed: add one under DATA_DIR/packs/<id>/pack.yaml")
    for pid in ids:
        try:
            cp = get_pack(pid)
        except Exception as exc:  # noqa: BLE001 - PackError, unknown policy, YAML errors
            report("fail", f"pack {pid}", f"does not load: {_first_line(exc)}; fix the pack (civicaup policy show "
                                          f"{pid})")
            continue
        loaded.append(cp)
        gaps = coverage(cp).gaps
        if gaps:
            report("fail", f"pack {pid}", f"{len(gaps)} coverage gap(s), first: {gaps[0][:120]}; see 'civicaup policy "
                                          f"coverage {pid}'")
        else:
            report("ok", f"pack {pid}", f"loads, {len(cp.pack.rules)} rules, every sentence of the source text "
                                        "accounted for")
    return loaded


# ---------------------------------------------------------------- the category index

def category_index(cfg: settings.Settings, report: _Report) -> None:
    from civicaup.channels.web.categories import CategoryIndex

    path = cfg.category_index
    if not path.is_file():
        report("fail", "category-index", f"{path} does not exist: URL decisions fall back to the small starter "
                                         "lists; build it ('civicaup categories build DIR', e.g. the UT1 lists)")
        return
    try:
        index = CategoryIndex.load(path)
    except Exception as exc:  # noqa: BLE001 - IndexError_ for corrupt files, OSError for permissions
        report("fail", "category-index", f"{path} cannot be read: {_first_line(exc)}; rebuild it "
                                         "('civicaup categories build DIR')")
        return
    built = index.built_at if index.built_at.tzinfo else index.built_at.replace(tzinfo=timezone.utc)
    days = (datetime.now(timezone.utc) - built).total_seconds() / 86400
    what = f"{path}: {index.entries:,} entries, built {built:%Y-%m-%d} ({days:.0f} days ago)"
    if days > INDEX_MAX_DAYS:
        report("warn", "category-index", f"{what}; lists change daily: rebuild it from fresh lists (e.g. a weekly "
                                         "timer running 'civicaup categories build')")
    else:
        report("ok", "category-index", what)


# ---------------------------------------------------------------- the clock

def clock(cfg: settings.Settings, loaded: list[Any], engine: Any, report: _Report) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zones: dict[str, list[str]] = {}
    for cp in loaded:
        zones.setdefault(cp.pack.city.time_zone, []).append(cp.id)
    for zone, ids in sorted(zones.items()):
        try:
            ZoneInfo(zone)
            report("ok", "time-zone", f"{zone} ({', '.join(ids)}) is known")
        except (ZoneInfoNotFoundError, ValueError):
            report("fail", "time-zone", f"{zone} ({', '.join(ids)}) is not a known time zone: install the tzdata "
                                        "package or fix city.time_zone in the pack")
    if cfg.time_zone_check:
        report(*_ntp())
    if engine is not None:
        _audit_clock(engine, report)


def _ntp() -> tuple[str, str, str]:
    tool = shutil.which("timedatectl")
    if tool is None:
        return "warn", "ntp", "cannot tell whether the clock is synchronised (no timedatectl); make sure a time " \
                              "service (chrony, systemd-timesyncd) runs, or set time_zone_check = false"
    try:
        r = subprocess.run([tool, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return "warn", "ntp", f"timedatectl failed ({_first_line(exc)}); make sure a time service runs"
    answer = r.stdout.strip()
    if r.returncode != 0 or answer not in ("yes", "no"):
        why = (r.stderr.strip().splitlines() or ["no answer"])[0][:120]
        return "warn", "ntp", f"cannot tell whether the clock is synchronised (timedatectl: {why}); make sure a " \
                              "time service runs on the host, or set time_zone_check = false"
    if answer == "no":
        return "warn", "ntp", "the system clock is not NTP-synchronised: working-hours rules and audit times " \
                              "depend on it; enable a time service (timedatectl set-ntp true)"
    return "ok", "ntp", "the system clock is NTP-synchronised"


def _audit_clock(engine: Any, report: _Report) -> None:
    from sqlalchemy import func, select

    from civicaup.stores import tables

    with engine.connect() as conn:
        newest = None
        heads = getattr(tables, "audit_chains", None)  # one row a chain: cheaper than the whole log
        if heads is not None:
            newest = conn.execute(select(func.max(heads.c.at))).scalar()
        if newest is None:
            newest = conn.execute(select(func.max(tables.audit.c.at))).scalar()
    if newest is None:
        report("ok", "clock", "no audit entries yet to compare the clock with")
        return
    if isinstance(newest, str):
        newest = datetime.fromisoformat(newest)
    newest = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    ahead = (newest - now).total_seconds()
    if ahead > CLOCK_SLACK_S:
        report("fail", "clock", f"the clock ({now:%Y-%m-%d %H:%M:%S}Z) is {ahead:.0f} s behind the newest audit "
                                f"entry ({newest:%Y-%m-%d %H:%M:%S}Z): set the clock right before running services; "
                                "entries written now would look older than earlier ones")
    else:
        report("ok", "clock", f"not behind the newest audit entry ({newest:%Y-%m-%d %H:%M:%S}Z)")


# ---------------------------------------------------------------- metrics

def metrics_dir(cfg: settings.Settings, report: _Report) -> None:
    import os

    path = cfg.home / "metrics"  # as civicaup.operations.metrics.metrics_dir()
    if not path.exists():
        report("ok", "metrics", f"{path} is created by the first process that counts")
    elif os.access(path, os.W_OK | os.X_OK):
        report("ok", "metrics", f"{path} is writable: every process's counts reach GET /metrics")
    else:
        report("warn", "metrics", f"{path} is not writable by this user: its processes count only in memory; "
                                  "give the service users' group write access (chmod g+ws)")


# ---------------------------------------------------------------- all of them

def _guarded(report: _Report, name: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, never a traceback
        report("fail", name, f"the check itself failed: {type(exc).__name__}: {_first_line(exc)}")
        return None


def run() -> list[Check]:
    """Every check, in order."""
    from civicaup.operations import probes

    report = _Report()
    cfg = _guarded(report, "config", lambda: config(report))
    if cfg is None:
        report("fail", "doctor", "the other checks need a configuration that loads: fix the lines above first")
        return report.checks
    engine = _guarded(report, "store", lambda: store(cfg, report))
    loaded = _guarded(report, "packs", lambda: packs(cfg, report)) or []
    _guarded(report, "category-index", lambda: category_index(cfg, report))
    _guarded(report, "clock", lambda: clock(cfg, loaded, engine, report))
    _guarded(report, "metrics", lambda: metrics_dir(cfg, report))
    _guarded(report, "postfix", lambda: probes.postfix(cfg, report))
    _guarded(report, "squid", lambda: probes.squid(cfg, report))
    if engine is not None:
        engine.dispose()
    return report.checks


def summary(checks: list[Check]) -> dict[str, int]:
    out = {"ok": 0, "warn": 0, "fail": 0}
    for c in checks:
        out[c.status] = out.get(c.status, 0) + 1
    return out


def failed(checks: list[Check]) -> bool:
    return any(c.status == "fail" for c in checks)


def lines(checks: list[Check]) -> Iterator[str]:
    """``status  name  message`` a check, the names padded to one column."""
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        yield c.line(width)
