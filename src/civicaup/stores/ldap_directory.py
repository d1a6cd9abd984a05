"""People from LDAP / Active Directory (ldap3), mapped and upserted exactly like the HR export (CSV).

The bind password is read from an environment variable named by the caller; it is never stored, logged
or put in an error message. Accounts disabled in AD (userAccountControl bit 2, ACCOUNTDISABLE) are not
imported, so with `leavers` they lose access at once, as does anyone absent from the result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.stores.directory import ImportReport, people_from_rows, upsert_people

# Our field -> LDAP attributes tried in order (the first with a value wins).
DEFAULT_ATTRS: dict[str, tuple[str, ...]] = {
    "email": ("mail",),
    "name": ("displayName", "cn"),
    "department": ("department", "ou"),
    "title": ("title",),
}
ACCOUNTDISABLE = 0x2
PAGE_SIZE = 500  # AD returns at most 1000 entries per page; ask for pages


@dataclass(frozen=True)
class LdapImportReport(ImportReport):
    disabled: int = 0
    without_mail: int = 0


def _attr_map(attrs: Mapping[str, str | Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    out = dict(DEFAULT_ATTRS)
    for field, names in (attrs or {}).items():
        if field not in DEFAULT_ATTRS:
            raise InputError(f"unknown directory field {field!r} (use {', '.join(DEFAULT_ATTRS)})")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(n.strip() for n in names):
            raise InputError(f"no LDAP attribute given for {field!r}")
        out[field] = tuple(n.strip() for n in names)
    return out


def _first(entry: Mapping[str, Any], names: Sequence[str]) -> str:
    for name in names:
        value = entry.get(name.lower())
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            if v is not None and str(v).strip():
                return str(v).strip()
    return ""


def _password(bind_dn: str | None, password_env: str | None, password_file: Path | None = None) -> str | None:
    if not bind_dn:
        return None
    if password_file is not None:
        try:
            password = password_file.expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the bind password file {password_file}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        if not password:
            raise InputError(f"the bind password file {password_file} is empty")
        return password
    if not password_env:
        raise InputError("--bind-dn needs --password-env VAR (the bind password is read from that variable)")
    password = os.environ.get(password_env)
    if not password:
        raise InputError(f"environment variable {password_env} (the bind password) is not set")
    return password


def fetch_people(url: str, base_dn: str, *, bind_dn: str | None = None, password_env: str | None = None,
                 filter: str = "(objectClass=person)", attrs: Mapping[str, str | Sequence[str]] | None = None,
                 timeout: int = 10, password_file: Path | None = None) -> list[dict[str, Any]]:
    """Entries under `base_dn` matching `filter` as {dn, email, name, department, title, disabled}.

    Every failure (unreachable server, wrong password, bad filter or base DN) is a one-line InputError."""
    import ldap3
    from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPSocketOpenError

    amap = _attr_map(attrs)
    password = _password(bind_dn, password_env, password_file)
    if not url.lower().startswith(("ldap://", "ldaps://")):
        raise InputError(f"{url!r} is not an LDAP URL (ldap://HOST[:PORT] or ldaps://HOST[:PORT])")
    wanted = sorted({a for names in amap.values() for a in names} | {"userAccountControl"})
    try:
        # get_info=NONE: no schema download, so AD-only attribute names (department, ...) are simply absent on
        # other servers instead of being rejected by ldap3's client-side schema check.
        server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=max(1, int(timeout)))
        conn = ldap3.Connection(server, user=bind_dn, password=password, receive_timeout=max(1, int(timeout)),
                                auto_bind=ldap3.AUTO_BIND_NO_TLS, read_only=True, raise_exceptions=False)
    except LDAPBindError:
        who = f"{bind_dn} (wrong DN, or wrong password in ${password_env})" if bind_dn else "anonymous"
        raise InputError(f"{url}: bind as {who} refused") from None
    except LDAPSocketOpenError:
        raise InputError(f"{url}: cannot reach the LDAP server") from None
    except LDAPException as exc:
        raise InputError(f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        entries = conn.extend.standard.paged_search(base_dn, filter, search_scope=ldap3.SUBTREE, attributes=wanted,
                                                    paged_size=PAGE_SIZE, generator=False)
        if conn.result and conn.result.get("result", 0) != 0:
            res = conn.result
            raise InputError(f"{url}: search of {base_dn!r} failed: {res.get('description')}"
                             + (f" ({res['message'].strip()})" if res.get("message", "").strip() else ""))
    except LDAPException as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise InputError(f"{url}: search of {base_dn!r} with {filter!r} failed: {first}") from None
    finally:
        conn.unbind()
    out: list[dict[str, Any]] = []
    for e in entries or []:
        if e.get("type") != "searchResEntry":
            continue  # referrals
        raw = {k.lower(): v for k, v in (e.get("attributes") or {}).items()}
        uac = _first(raw, ("userAccountControl",))
        try:
            disabled = bool(int(uac) & ACCOUNTDISABLE) if uac else False
        except ValueError:
            disabled = False
        row: dict[str, Any] = {"dn": e.get("dn", "")}
        row.update({field: _first(raw, names) for field, names in amap.items()})
        row["disabled"] = disabled
        out.append(row)
    return out


def import_ldap(engine: Engine, pack: CompiledPack, url: str, base_dn: str, *, bind_dn: str | None = None,
                password_env: str | None = None, filter: str = "(objectClass=person)",
                attrs: Mapping[str, str | Sequence[str]] | None = None, leavers: bool = False,
                password_file: Path | None = None) -> LdapImportReport:
    """Upsert the enabled people with a mail address; with `leavers`, disabled and absent accounts lose access."""
    rows = fetch_people(url, base_dn, bind_dn=bind_dn, password_env=password_env, filter=filter, attrs=attrs,
                        password_file=password_file)
    disabled = [r for r in rows if r["disabled"]]
    without_mail = [r for r in rows if not r["disabled"] and not r["email"]]
    enabled = [r for r in rows if not r["disabled"] and r["email"]]
    if leavers and not enabled:
        raise InputError(f"{url}: no enabled people with mail under {base_dn!r} matching {filter!r}; "
                         "refusing to remove everyone's access with --leavers")
    persons = people_from_rows(((f"{url} {r['dn']}", r) for r in enabled), pack)
    report = upsert_people(engine, pack, persons, leavers=leavers)
    return LdapImportReport(imported=report.imported, deactivated=report.deactivated, disabled=len(disabled),
                            without_mail=len(without_mail))
