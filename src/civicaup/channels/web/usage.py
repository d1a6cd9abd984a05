"""Web usage from Squid's access.log: ingest (categorised, idempotent), reports per person and department.

Squid's native log format (``logformat squid``), one request a line::

    1709571600.123    180 10.0.0.5 TCP_MISS/200 4120 GET http://www.example.com/ alice HIER_DIRECT/1.2.3.4 text/html

Ingest stores each line once: its key is the SHA-256 of the line and of how many identical lines came
before it in the same file, so re-reading a file (or a file that has grown) adds only what is new.
Each request is categorised with the category index as the engine's web check would (the pack's
``category_map`` applies), and marked as within working hours or not, in the city's time zone.

Estimated time: a request is credited with the time until the same person's next request, at most
``idle_cap`` seconds (a longer gap means the person stopped browsing). It is an estimate, and says so.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import io
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.url import normalise_url
from civicaup.engine.decision import Decision
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import AccessEvent, Actor
from civicaup.engine.windows import is_work_time
from civicaup.errors import BadURLError, InputError
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit, partitions
from civicaup.stores.directory import find_person, list_people
from civicaup.stores.tables import web_usage

IDLE_CAP = 60
UNCATEGORISED = "uncategorised"


@dataclass(frozen=True)
class IngestReport:
    lines: int
    added: int
    duplicates: int
    skipped: int


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    elapsed_ms: int
    client: str
    status: str
    bytes: int
    method: str
    url: str
    login: str


def parse_line(line: str) -> LogLine | None:
    """One native-format line, or None if it is not one (blank, truncated, another format)."""
    f = line.split()
    if len(f) < 10:
        return None
    try:
        at = datetime.fromtimestamp(float(f[0]), timezone.utc)
        elapsed, size = int(f[1]), int(f[4])
    except (ValueError, OverflowError, OSError):
        return None
    if "/" not in f[3]:
        return None
    login = unquote(f[7]) if f[7] != "-" else ""
    return LogLine(at, elapsed, f[2], f[3], size, f[5][:16], f[6], login)


def _open_text(path: str) -> TextIO:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    try:
        if path.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


class _Categoriser:
    def __init__(self, pack: CompiledPack, index: CategoryIndex) -> None:
        self.remap = pack.pack.category_map
        self.index = index
        self.cache: dict[str, tuple[str, list[str]]] = {}

    def __call__(self, url: str) -> tuple[str, list[str]]:
        hit = self.cache.get(url)
        if hit is not None:
            return hit
        try:
            u = normalise_url(url)
        except BadURLError:
            result: tuple[str, list[str]] = ("", [])
        else:
            cats: list[str] = []
            for m in self.index.lookup(u):
                c = self.remap.get(m.list_name, self.remap.get(m.category, m.category))
                if c not in cats:
                    cats.append(c)
            result = (u.host, cats)
        if len(self.cache) > 100_000:
            self.cache.clear()
        self.cache[url] = result
        return result


def ingest(engine: Engine, pack: CompiledPack, path: str, index: CategoryIndex, *, batch: int = 2000) -> IngestReport:
    """Store every request of the log at *path* ('-' = stdin, .gz read as gzip) that is not stored yet."""
    categorise = _Categoriser(pack, index)
    hours, tz, domain = pack.pack.city.hours, pack.tz, pack.pack.city.mail_domain.lower()
    people: dict[str, tuple[str, str]] = {}  # login -> (email, department)
    seen: dict[bytes, int] = {}
    before = _count(engine, pack.id)
    lines = skipped = 0
    rows: list[dict[str, Any]] = []
    with _open_text(path) as f:
        for raw in f:
            if not raw.strip():
                continue
            lines += 1
            entry = parse_line(raw)
            if entry is None:
                skipped += 1
                continue
            digest = hashlib.sha256(raw.rstrip("\r\n").encode("utf-8", "replace")).digest()
            n = seen.get(digest, 0)
            seen[digest] = n + 1
            if len(seen) > 200_000:
                seen.clear()  # identical lines share a millisecond timestamp, so they are near each other
            key = hashlib.sha256(digest + str(n).encode()).hexdigest()
            who = people.get(entry.login)
            if who is None:
                who = _person(engine, pack, entry.login, domain)
                people[entry.login] = who
            host, cats = categorise(entry.url)
            rows.append({"policy": pack.id, "line_hash": key, "at": entry.at, "elapsed_ms": entry.elapsed_ms,
                         "client": entry.client[:64], "login": entry.login[:320], "email": who[0],
                         "department": who[1], "status": entry.status[:64], "bytes": entry.bytes,
                         "method": entry.method, "host": host[:255], "url": entry.url[:2000],
                         "category": cats[0] if cats else "", "categories": ",".join(cats)[:500],
                         "work_time": is_work_time(entry.at, hours, tz)})
            if len(rows) >= batch:
                _insert(engine, rows)
                rows = []
    if rows:
        _insert(engine, rows)
    added = _count(engine, pack.id) - before
    return IngestReport(lines=lines, added=added, duplicates=lines - skipped - added, skipped=skipped)


def _person(engine: Engine, pack: CompiledPack, login: str, domain: str) -> tuple[str, str]:
    name = login.strip().lower()
    if "\\" in name:
        name = name.rsplit("\\", 1)[1]
    if not name:
        return "", ""
    email = name if "@" in name else f"{name}@{domain}"
    p = find_person(engine, pack.id, email)
    return (p.email, p.department) if p is not None else (email, "")


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(engine.dialect.name)
    if dialect is None:
        raise InputError(f"unsupported database {engine.dialect.name}")
    # PostgreSQL partitions by policy and month of `at`, so its unique key on a line also holds `at` (which
    # comes from the same line): see stores/partitions.py
    pg = engine.dialect.name == "postgresql"
    stmt = dialect.insert(web_usage).on_conflict_do_nothing(
        index_elements=["policy", "line_hash", "at"] if pg else ["policy", "line_hash"])
    with engine.begin() as conn:
        for policy in {r["policy"] for r in rows}:
            partitions.before_insert(conn, "web_usage", policy, [r["at"] for r in rows if r["policy"] == policy])
        conn.execute(stmt, rows)


def _count(engine: Engine, policy: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(web_usage)
                                .where(web_usage.c.policy == policy)).scalar_one())


# -- reading one person's history ------------------------------------------------------------------------


class AccessRefused(InputError):
    """The pack's access rule does not let this approver read that person's history (CLI exit 2)."""


def check_history_access(engine: Engine, pack: CompiledPack, person: str, approver: str) -> Decision:
    """Reading one person's browsing history is an ``access`` event (kind ``monitor-web``) by *approver*,
    whose directory roles count as the approvals given. Returns the Decision if it proceeds (allow/log/flag);
    raises AccessRefused naming the clause and the roles needed if it is still held or blocked.
    The read, or the refusal, is written to the audit log either way."""
    who = approver.strip().lower()
    subject = person.strip().lower()
    if "@" not in who or "@" not in subject:
        raise InputError("--person and --as take e-mail addresses")
    found = find_person(engine, pack.id, who)
    roles = frozenset(found.roles) | {"employee"} if found is not None and found.active else frozenset({"employee"})
    event = AccessEvent(actor=Actor(email=who, roles=roles, department=found.department if found else ""),
                        at=datetime.now(timezone.utc).astimezone(pack.tz), kind="monitor-web", subject=subject,
                        reason="web usage report", approved_roles=roles)
    decision = evaluate(event, pack)
    detail = {"kind": "monitor-web", "decision": decision.action, "roles": sorted(roles),
              "findings": [{"rule": f.rule, "clause": f.clause, "action": f.action,
                            **({"exempted_by": f.exempted_by} if f.exempted_by else {})} for f in decision.findings]}
    if decision.action in ("hold", "block"):
        audit.append(engine, actor=who, action="monitor-web-refused", subject=subject, policy=pack.id, detail=detail)
        f = decision.findings[0]
        if f.approvers:
            need = (" and " if f.approvers_needed == "all" else " or ").join(f.approvers)
            why = f"needs the role {need}"
        else:
            why = "is not permitted"
        raise AccessRefused(f"reading {subject}'s web history {why} (policy {pack.id} rule {f.rule}, clause "
                            f"{f.clause}); {who} has {', '.join(sorted(roles))}")
    audit.append(engine, actor=who, action="monitor-web", subject=subject, policy=pack.id, detail=detail)
    return decision


# -- reports ---------------------------------------------------------------------------------------------


def parse_day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def _bucket() -> dict[str, Any]:
    return {"requests": 0, "seconds": 0.0, "categories": defaultdict(lambda: {"requests": 0, "seconds": 0.0})}


def _add(b: dict[str, Any], category: str, seconds: float) -> None:
    b["requests"] += 1
    b["seconds"] += seconds
    c = b["categories"][category]
    c["requests"] += 1
    c["seconds"] += seconds


def _finish(b: dict[str, Any]) -> dict[str, Any]:
    cats = sorted(b["categories"].items(), key=lambda kv: (-kv[1]["seconds"], -kv[1]["requests"], kv[0]))
    return {"requests": b["requests"], "seconds": round(b["seconds"], 1),
            "categories": {k: {"requests": v["requests"], "seconds": round(v["seconds"], 1)} for k, v in cats}}


def usage_report(engine: Engine, pack: CompiledPack, *, department: str | None = None, person: str | None = None,
                 start: date | None = None, end: date | None = None, idle_cap: int = IDLE_CAP) -> dict[str, Any]:
    """Requests and estimated time by category, work hours vs personal time, per person and department.

    *start* and *end* are inclusive local dates in the city's zone. With *person*, also that person's top
    hosts per category and daily totals (the caller must have checked the access rule first)."""
    tz = pack.tz
    q = select(web_usage.c.login, web_usage.c.email, web_usage.c.department, web_usage.c.client, web_usage.c.at,
               web_usage.c.category, web_usage.c.work_time, web_usage.c.host).where(web_usage.c.policy == pack.id)
    if start is not None:
        q = q.where(web_usage.c.at >= datetime.combine(start, time(0), tz).astimezone(timezone.utc))
    if end is not None:
        q = q.where(web_usage.c.at < datetime.combine(end + timedelta(days=1), time(0), tz).astimezone(timezone.utc))
    if department:
        q = q.where(func.lower(web_usage.c.department) == department.strip().lower())
    if person:
        q = q.where(web_usage.c.email == person.strip().lower())
    with engine.connect() as conn:
        rows = list(conn.execute(q))
    names = {p.email: p for p in list_people(engine, pack.id, active_only=False)}
    by_person: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        key = r.email or r.login or f"client:{r.client}"
        by_person[key].append(r)
    people_out = []
    depts: dict[str, dict[str, Any]] = {}
    detail: dict[str, Any] | None = None
    for key, reqs in by_person.items():
        reqs.sort(key=lambda r: _utc(r.at))
        work, personal = _bucket(), _bucket()
        hosts: dict[tuple[str, str], int] = defaultdict(int)
        days: dict[str, dict[str, float]] = defaultdict(lambda: {"requests": 0, "seconds": 0.0})
        for i, r in enumerate(reqs):
            at = _utc(r.at)
            secs = min((_utc(reqs[i + 1].at) - at).total_seconds(), idle_cap) if i + 1 < len(reqs) else 0.0
            cat = r.category or UNCATEGORISED
            _add(work if r.work_time else personal, cat, secs)
            if person:
                hosts[(cat, r.host)] += 1
                d = days[at.astimezone(tz).date().isoformat()]
                d["requests"] += 1
                d["seconds"] += secs
        known = names.get(key)
        dept = reqs[-1].department or (known.department if known else "") or "(unknown)"
        item = {"person": key, "name": known.name if known else "", "department": dept,
                "requests": len(reqs), "seconds": round(work["seconds"] + personal["seconds"], 1),
                "work": _finish(work), "personal": _finish(personal)}
        people_out.append(item)
        d = depts.setdefault(dept, {"department": dept, "people": 0, "work": _bucket(), "personal": _bucket()})
        d["people"] += 1
        for which, b in (("work", work), ("personal", personal)):
            agg = d[which]
            agg["requests"] += b["requests"]
            agg["seconds"] += b["seconds"]
            for cat, v in b["categories"].items():
                agg["categories"][cat]["requests"] += v["requests"]
                agg["categories"][cat]["seconds"] += v["seconds"]
        if person:
            top: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for (cat, host), n in sorted(hosts.items(), key=lambda kv: -kv[1]):
                if len(top[cat]) < 10:
                    top[cat].append({"host": host, "requests": n})
            detail = {"person": key, "hosts": dict(top),
                      "days": {k: {"requests": v["requests"], "seconds": round(v["seconds"], 1)}
                               for k, v in sorted(days.items())}}
    people_out.sort(key=lambda p: (p["department"], -p["seconds"], p["person"]))
    dept_out = []
    for dept, d in sorted(depts.items()):
        w, p = _finish(d["work"]), _finish(d["personal"])
        dept_out.append({"department": dept, "people": d["people"], "requests": w["requests"] + p["requests"],
                         "seconds": round(w["seconds"] + p["seconds"], 1), "work": w, "personal": p})
    out: dict[str, Any] = {
        "policy": pack.id, "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
        "department": department, "time_zone": str(tz), "working_hours": _hours_text(pack),
        "estimate": f"each request is credited with the time to the same person's next request, at most {idle_cap} s",
        "requests": len(rows), "people": people_out, "departments": dept_out,
    }
    if person:
        out["person"] = detail or {"person": person.strip().lower(), "hosts": {}, "days": {}}
    return out


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _hours_text(pack: CompiledPack) -> str:
    h = pack.pack.city.hours
    lunch = f", lunch {h.lunch[0]:%H:%M}-{h.lunch[1]:%H:%M}" if h.lunch else ""
    return f"{'/'.join(h.days)} {h.start:%H:%M}-{h.end:%H:%M}{lunch}"


def _minutes(seconds: float) -> str:
    m = seconds / 60
    return f"{m:.0f} min" if m >= 10 else f"{m:.1f} min"


def format_text(report: dict[str, Any]) -> str:
    """The report as a few tables a person reads."""
    span = f"{report['from'] or 'start'} .. {report['to'] or 'now'}"
    lines = [f"web usage, policy {report['policy']}, {span}"
             + (f", department {report['department']}" if report["department"] else ""),
             f"work hours: {report['working_hours']} ({report['time_zone']}); estimated time: {report['estimate']}",
             f"{report['requests']} requests", ""]

    def top(b: dict[str, Any]) -> str:
        return ", ".join(f"{c} {_minutes(v['seconds'])}" for c, v in list(b["categories"].items())[:4]) or "-"

    lines.append(f"{'department':28} {'people':>6} {'requests':>9} {'work time':>10} {'personal':>10}  top categories "
                 "(work | personal)")
    for d in report["departments"]:
        lines.append(f"{d['department'][:28]:28} {d['people']:>6} {d['requests']:>9} "
                     f"{_minutes(d['work']['seconds']):>10} {_minutes(d['personal']['seconds']):>10}  "
                     f"{top(d['work'])} | {top(d['personal'])}")
    lines.append("")
    lines.append(f"{'person':36} {'department':20} {'requests':>9} {'work time':>10} {'personal':>10}  top categories "
                 "(work | personal)")
    for p in report["people"]:
        lines.append(f"{p['person'][:36]:36} {p['department'][:20]:20} {p['requests']:>9} "
                     f"{_minutes(p['work']['seconds']):>10} {_minutes(p['personal']['seconds']):>10}  "
                     f"{top(p['work'])} | {top(p['personal'])}")
    if "person" in report:
        d = report["person"]
        lines += ["", f"{d['person']}: top hosts by category"]
        for cat, hosts in d["hosts"].items():
            lines.append(f"  {cat}: " + ", ".join(f"{h['host']} ({h['requests']})" for h in hosts))
        lines.append(f"{d['person']}: by day")
        for day, v in d["days"].items():
            lines.append(f"  {day}  {v['requests']:>6} requests  {_minutes(v['seconds'])}")
    return "\n".join(lines) + "\n"


# -- the chart ---------------------------------------------------------------------------------------------

_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
            "#bab0ac", "#86bcb6", "#d37295", "#fabfd2", "#b6992d", "#499894", "#8cd17d"]


def svg_chart(report: dict[str, Any], *, by: str | None = None) -> str:
    """A horizontal stacked bar chart: per department (or per person when the report is for one department
    or one person), two bars, work hours and personal time, split by category; minutes on the axis."""
    by = by or ("people" if report.get("department") or "person" in report else "departments")
    groups = [(g["person"] if by == "people" else g["department"], g) for g in report[by]]
    totals: dict[str, float] = defaultdict(float)
    for _, g in groups:
        for which in ("work", "personal"):
            for c, v in g[which]["categories"].items():
                totals[c] += v["seconds"]
    cats = [c for c, _ in sorted(totals.items(), key=lambda kv: -kv[1])]
    colour = {c: ("#cccccc" if c == UNCATEGORISED else _PALETTE[i % len(_PALETTE)]) for i, c in enumerate(cats)}
    longest = max([g[which]["seconds"] for _, g in groups for which in ("work", "personal")] + [60.0]) / 60
    label_w, plot_w, bar_h, gap, top = 230, 560, 14, 14, 56
    row_h = 2 * bar_h + 4 + gap
    legend_rows = (len(cats) + 3) // 4
    height = top + len(groups) * row_h + 40 + legend_rows * 18 + 20
    width = label_w + plot_w + 40
    step = _nice_step(longest)
    scale = plot_w / (step * max(1, -(-longest // step)))
    e = html.escape
    title = f"Web use by {'person' if by == 'people' else 'department'}, {report['policy']}"
    span = f"{report['from'] or 'start'} to {report['to'] or 'now'}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f"<title>{e(title)}</title>",
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{e(title)}</text>',
           f'<text x="10" y="38" fill="#555">{e(span)}; estimated minutes (upper bar: work hours, lower: '
           f'personal time)</text>']
    ticks = int(-(-longest // step))
    for t in range(ticks + 1):
        x = label_w + t * step * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{top + len(groups) * row_h}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{top + len(groups) * row_h + 14}" text-anchor="middle" '
                   f'fill="#555">{t * step:g}</text>')
    for i, (name, g) in enumerate(groups):
        y = top + i * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h + 4}" text-anchor="end">{e(name[:36])}</text>')
        for j, which in enumerate(("work", "personal")):
            x = float(label_w)
            by_ = y + j * (bar_h + 4)
            for c, v in g[which]["categories"].items():
                w = v["seconds"] / 60 * scale
                if w <= 0:
                    continue
                out.append(f'<rect x="{x:.1f}" y="{by_}" width="{w:.1f}" height="{bar_h}" fill="{colour[c]}">'
                           f"<title>{e(name)}, {which}: {e(c)} {v['seconds'] / 60:.1f} min, "
                           f"{v['requests']} requests</title></rect>")
                x += w
            out.append(f'<text x="{x + 4:.1f}" y="{by_ + bar_h - 3}" fill="#555" font-size="10">'
                       f"{which} {g[which]['seconds'] / 60:.0f} min</text>")
    ly = top + len(groups) * row_h + 36
    for k, c in enumerate(cats):
        lx = 10 + (k % 4) * 200
        yy = ly + (k // 4) * 18
        out.append(f'<rect x="{lx}" y="{yy - 10}" width="12" height="12" fill="{colour[c]}"/>')
        out.append(f'<text x="{lx + 16}" y="{yy}">{e(c)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_step(maximum: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 600, 1200, 2400, 6000):
        if maximum / step <= 8:
            return float(step)
    return float(10 ** len(str(int(maximum))) / 10)

