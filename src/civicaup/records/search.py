"""Search for the clerk: full text (stemmed: "lobbyists" finds "lobbyist"), sender, recipient, any party,
date range, attachment name; newest first.

Query text: words are ANDed; "a phrase"; OR between two words or phrases; -word excludes; word* is a
prefix. The same query runs on SQLite (FTS5, Porter stemmer) and PostgreSQL (tsvector, english).

Ids are ordered by date, so the newest matches come from walking the index backwards and stopping at
the limit: the cost of "newest 50 of a common word" does not grow with the number of matches. When an
address filter is rare, the address index drives instead and the text is checked per message.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text

from civicaup.errors import InputError
from civicaup.records.archive import Record, date_key, records_by_id

_ITEM = re.compile(r'(-?)"([^"]*)"(\*?)|(\S+)')
_TOKEN = re.compile(r"[^\W_]+")
DRIVE_BY_ADDRESS_BELOW = 5_000  # an address filter with fewer messages than this drives the search
_ATT_LIKE = "t.name LIKE :att ESCAPE '\\'"
_TSQUERY = "f.tsv @@ to_tsquery('english', :q)"
_POLICY_NO_INDEX = "+m.policy = :policy"  # SQLite: '+' keeps the planner off the (policy, sha256) index


# ---------------------------------------------------------------- query text

@dataclass(frozen=True)
class Term:
    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Query:
    groups: tuple[tuple[Term, ...], ...]  # ANDed groups of ORed terms
    negated: tuple[Term, ...] = ()

    def fts5(self) -> str:
        def term(t: Term) -> str:
            return '"' + " ".join(t.tokens) + '"' + ("*" if t.prefix else "")

        pos = " AND ".join("(" + " OR ".join(term(t) for t in g) + ")" for g in self.groups)
        if self.negated:
            pos += " NOT (" + " OR ".join(term(t) for t in self.negated) + ")"
        return pos

    def tsquery(self) -> str:
        def term(t: Term) -> str:
            toks = list(t.tokens)
            if t.prefix:
                toks[-1] += ":*"
            return "(" + " <-> ".join(toks) + ")"

        pos = " & ".join("(" + " | ".join(term(t) for t in g) + ")" for g in self.groups)
        if self.negated:
            pos += " & !(" + " | ".join(term(t) for t in self.negated) + ")"
        return pos


def parse_query(q: str) -> Query | None:
    """None for an empty query; InputError when only exclusions are given."""
    groups: list[list[Term]] = []
    negated: list[Term] = []
    join_next = False
    for m in _ITEM.finditer(q):
        if m.group(4) is not None:
            word = m.group(4)
            if word == "OR":
                join_next = bool(groups)
                continue
            neg = word.startswith("-") and len(word) > 1
            prefix = word.endswith("*")
            body = word[1:] if neg else word
        else:
            neg, body, prefix = m.group(1) == "-", m.group(2), m.group(3) == "*"
        tokens = tuple(t.lower() for t in _TOKEN.findall(body))
        if not tokens:
            continue
        t = Term(tokens, prefix)
        if neg:
            negated.append(t)
        elif join_next and groups:
            groups[-1].append(t)
        else:
            groups.append([t])
        join_next = False
    if not groups:
        if negated:
            raise InputError("a search needs at least one word that is not excluded with '-'")
        return None
    return Query(tuple(tuple(g) for g in groups), tuple(negated))


# ---------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filters:
    text: str | None = None
    from_: str | None = None
    to: str | None = None  # to, cc or bcc
    party: str | None = None  # from, to, cc or bcc (custodians)
    since: date | None = None  # inclusive, the city's local day
    until: date | None = None  # inclusive
    attachment: str | None = None  # part of a file name


@dataclass
class SearchResult:
    records: list[Record]
    count: int | None  # all matches, when asked for
    more: bool  # more matches than returned
    ms: float
    plan: str = ""
    query: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"results": [r.to_json() for r in self.records], "returned": len(self.records),
                "count": self.count, "more": self.more, "ms": round(self.ms, 1)}


@dataclass
class _Sql:
    params: dict[str, Any] = field(default_factory=dict)
    exists: list[str] = field(default_factory=list)
    address: list[tuple[str, str, str]] = field(default_factory=list)  # (column, filter name, kinds)


def _address(value: str) -> tuple[str, str]:
    """('address', a@b) for a full address, ('domain', b) for '@b' or 'b.org'."""
    v = value.strip().lower().strip("<>")
    if not v:
        raise InputError("an address filter is empty")
    if v.startswith("@"):
        return "domain", v[1:]
    if "@" in v:
        return "address", v
    return "domain", v


_KINDS = {"from": "('from')", "to": "('to','cc','bcc')", "party": "('from','to','cc','bcc')"}


def reverse_domain(domain: str) -> str:
    return ".".join(reversed(domain.strip(".").split(".")))


def _addr_cond(alias: str, column: str, name: str) -> str:
    if column == "address":
        return f"{alias}.address = :{name}_v"
    return (f"({alias}.domain = :{name}_v OR ({alias}.domain >= :{name}_lo AND {alias}.domain < :{name}_hi))")


def _bounds(f: Filters, tz: ZoneInfo) -> tuple[int | None, int | None]:
    lo = date_key(datetime.combine(f.since, dtime(0), tz)) if f.since else None
    hi = date_key(datetime.combine(f.until + timedelta(days=1), dtime(0), tz)) if f.until else None
    return lo, hi


def _build(f: Filters, policy: str, tz: ZoneInfo, pg: bool) -> tuple[_Sql, Query | None]:
    sql = _Sql(params={"policy": policy})
    for name, value in (("from", f.from_), ("to", f.to), ("party", f.party)):
        if value:
            column, v = _address(value)
            if column == "domain":  # stored reversed (org.example.lists): a domain finds its subdomains too
                v = reverse_domain(v)
                sql.params[f"{name}_lo"], sql.params[f"{name}_hi"] = v + ".", v + "/"
            sql.params[f"{name}_v"] = v
            sql.address.append((column, name, _KINDS[name]))
            sql.exists.append(f"EXISTS (SELECT 1 FROM archive_addresses a_{name} WHERE a_{name}.message = m.id "
                              f"AND {_addr_cond(f'a_{name}', column, name)} AND a_{name}.kind IN {_KINDS[name]})")
    if f.attachment:
        needle = f.attachment.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql.params["att"] = f"%{needle}%"
        sql.exists.append("EXISTS (SELECT 1 FROM archive_attachments t WHERE t.message = m.id "
                          "AND t.name LIKE :att ESCAPE '\\')")
    lo, hi = _bounds(f, tz)
    if lo is not None:
        sql.params["lo"] = lo
    if hi is not None:
        sql.params["hi"] = hi
    query = parse_query(f.text) if f.text else None
    if query is not None:
        sql.params["q"] = query.tsquery() if pg else query.fts5()
    return sql, query


def _range(col: str, sql: _Sql) -> str:
    parts = []
    if "lo" in sql.params:
        parts.append(f"{col} >= :lo")
    if "hi" in sql.params:
        parts.append(f"{col} < :hi")
    return " AND ".join(parts)


def _where(*parts: str) -> str:
    kept = [p for p in parts if p]
    return " AND ".join(kept) if kept else "1=1"


def _sqlite_plan(conn: Connection, sql: _Sql, query: Query | None) -> tuple[str, str]:
    """(plan name, SELECT of matching message ids as `mid`, newest first)."""
    exists = list(sql.exists)
    if query is not None:
        if sql.address:
            column, key, kinds = sql.address[0]
            n = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM archive_addresses d WHERE "
                                  f"{_addr_cond('d', column, key)} LIMIT {DRIVE_BY_ADDRESS_BELOW})"),
                             sql.params).scalar_one()
            if n < DRIVE_BY_ADDRESS_BELOW:
                text_check = ("EXISTS (SELECT 1 FROM archive_fts WHERE archive_fts MATCH :q "
                              "AND archive_fts.rowid = m.id)")
                return "address-driven", (
                    f"SELECT DISTINCT d.message AS mid FROM archive_addresses d CROSS JOIN archive_messages m "
                    f"ON m.id = d.message WHERE {_where(_addr_cond('d', column, key), f'd.kind IN {kinds}', _range('d.message', sql), _POLICY_NO_INDEX, text_check, *exists)} "
                    f"ORDER BY d.message DESC")
        return "text-driven", (
            f"SELECT f.rowid AS mid FROM archive_fts f CROSS JOIN archive_messages m ON m.id = f.rowid "
            f"WHERE {_where('archive_fts MATCH :q', _range('f.rowid', sql), _POLICY_NO_INDEX, *exists)} "
            f"ORDER BY f.rowid DESC")
    if sql.address:
        column, key, kinds = sql.address[0]
        return "address-driven", (
            f"SELECT DISTINCT d.message AS mid FROM archive_addresses d CROSS JOIN archive_messages m "
            f"ON m.id = d.message WHERE {_where(_addr_cond('d', column, key), f'd.kind IN {kinds}', _range('d.message', sql), _POLICY_NO_INDEX, *exists)} "
            f"ORDER BY d.message DESC")
    if "att" in sql.params:
        others = [e for e in exists if "archive_attachments" not in e]
        return "attachment-driven", (
            f"SELECT DISTINCT t.message AS mid FROM archive_attachments t CROSS JOIN archive_messages m "
            f"ON m.id = t.message WHERE {_where(_ATT_LIKE, _range('t.message', sql), _POLICY_NO_INDEX, *others)} "
            f"ORDER BY t.message DESC")
    return "date-driven", (f"SELECT m.id AS mid FROM archive_messages m "
                           f"WHERE {_where(_POLICY_NO_INDEX, _range('m.id', sql))} ORDER BY m.id DESC")


def _pg_plan(sql: _Sql, query: Query | None) -> tuple[str, str]:
    exists = list(sql.exists)
    if query is not None:
        # both sides name the city: PostgreSQL reads only its partitions (and its own GIN indexes)
        return "text", (f"SELECT f.id AS mid FROM archive_fts f JOIN archive_messages m ON m.id = f.id "
                        f"AND m.policy = f.policy WHERE "
                        f"{_where(_TSQUERY, 'f.policy = :policy', _range('f.id', sql), 'm.policy = :policy', *exists)} "
                        f"ORDER BY f.id DESC")
    return "metadata", (f"SELECT m.id AS mid FROM archive_messages m "
                        f"WHERE {_where('m.policy = :policy', _range('m.id', sql), *exists)} ORDER BY m.id DESC")


def plan(conn: Connection, f: Filters, policy: str, tz: ZoneInfo) -> tuple[str, str, dict[str, Any], Query | None]:
    pg = conn.dialect.name == "postgresql"
    sql, query = _build(f, policy, tz, pg)
    name, select_ids = _pg_plan(sql, query) if pg else _sqlite_plan(conn, sql, query)
    return name, select_ids, sql.params, query


def search(engine: Engine, policy: str, f: Filters, *, tz: ZoneInfo | None = None, limit: int | None = 50,
           count: bool = False) -> SearchResult:
    """Newest first; `limit` None returns every match."""
    tz = tz or ZoneInfo("UTC")
    start = time.perf_counter()
    with engine.connect() as conn:
        name, select_ids, params, query = plan(conn, f, policy, tz)
        if limit is None:
            ids = list(conn.execute(text(select_ids), params).scalars())
            more = False
        else:
            ids = list(conn.execute(text(f"{select_ids} LIMIT {int(limit) + 1}"), params).scalars())
            more = len(ids) > limit
            ids = ids[:limit]
        total = None
        if count:
            total = len(ids) if (limit is None or not more) else int(conn.execute(
                text(f"SELECT count(*) FROM ({select_ids}) AS s"), params).scalar_one())
        records = records_by_id(conn, ids, policy)
    return SearchResult(records, total, more, (time.perf_counter() - start) * 1000, name,
                        params.get("q", ""))


def matching_ids(conn: Connection, policy: str, f: Filters, tz: ZoneInfo | None = None) -> set[int]:
    """Every message id that matches (for holds and requests)."""
    _, select_ids, params, _ = plan(conn, f, policy, tz or ZoneInfo("UTC"))
    return set(conn.execute(text(select_ids), params).scalars())


def parse_day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise InputError(f"{option} must be a date like 2026-07-02, not {value!r}") from None
