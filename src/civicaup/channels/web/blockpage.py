"""What the Squid helper tells Squid, and the page Squid shows: the clause quoted, the category, whom to ask.

* :func:`answer_for` turns a Decision into the helper's answer (``OK`` / ``ERR message=... log=...``).
* :func:`contacts_for` finds whom a person asks for an exemption: the rule's approvers, else the IT role,
  named by the city's own titles and, where the directory knows them, their addresses.
* :func:`error_page` is the ``ERR_CIVICAUP`` template (Squid %-codes: ``%o`` is the helper's message,
  ``%U`` the URL); :func:`squid_conf_lines` the squid.conf lines that wire it all up.
"""
from __future__ import annotations

import html
import shlex
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from civicaup.engine.decision import Decision, Finding
from civicaup.policy.compile import CompiledPack

TEMPLATE_NAME = "ERR_CIVICAUP"
ACL_NAME = "civicaup_allowed"
HELPER_NAME = "civicaup"
MAX_QUOTE = 600

Contacts = Mapping[str, tuple[str, tuple[str, ...]]]
"""role -> (how the city calls it, e-mail addresses of people who hold it)."""


def enc(text: str) -> str:
    """A helper keyword value: one token, URL-escaped (Squid decodes it)."""
    return quote(text, safe="")


def role_title(pack: CompiledPack, role: str) -> str:
    """How the city names a role: its first title that maps to it ('MIS Department'), else the role word."""
    for title, roles in pack.pack.titles.items():
        if role in roles:
            return title
    return role.replace("-", " ")


def contacts_for(pack: CompiledPack, people: Iterable[tuple[str, Sequence[str]]],
                 roles: Iterable[str], *, per_role: int = 2) -> dict[str, tuple[str, tuple[str, ...]]]:
    """role -> (title, up to *per_role* addresses) from ``(email, roles)`` pairs of the directory."""
    people = list(people)
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for role in roles:
        emails = tuple(sorted(e for e, r in people if role in r))[:per_role]
        out[role] = (role_title(pack, role), emails)
    return out


def _who(roles: Sequence[str], mode: str, contacts: Contacts) -> str:
    parts = []
    for role in roles:
        title, emails = contacts.get(role, (role.replace("-", " "), ()))
        parts.append(f"the {title}" + (f" ({', '.join(emails)})" if emails else ""))
    joiner = " and " if mode == "all" else " or "
    return joiner.join(parts) if parts else "the IT department"


def message_for(pack: CompiledPack, decision: Decision, contacts: Contacts) -> str:
    """The sentence shown on the block page: rule, clause, the clause quoted, category, whom to ask."""
    top = decision.findings[0]
    cats = _categories([f for f in decision.findings if f.action == top.action and f.rule == top.rule])
    quote_text = top.quote if len(top.quote) <= MAX_QUOTE else top.quote[:MAX_QUOTE].rstrip() + " ..."
    verb = "Blocked" if top.action == "block" else "Held for approval"
    text = (f'{verb} by {pack.id} rule {top.rule}, clause {top.clause}: "{quote_text}" '
            f"(category {', '.join(cats)}).")
    if top.action == "hold" and top.approvers:
        text += (f" This site needs the approval of {_who(top.approvers, top.approvers_needed, contacts)}:"
                 " ask them for an exemption.")
    else:
        text += f" To ask for an exemption, contact {_who(['it'], 'any', contacts)}."
    return text


def log_value(decision: Decision, matched: Sequence[str]) -> str:
    """``log=`` for access.log (%ea): ``action:categories``, with the exemption when one applied."""
    if decision.findings:
        cats = _categories(decision.findings)
        exempt = sorted({f.exempted_by for f in decision.findings if f.exempted_by})
        return f"{decision.action}:{','.join(cats)}" + (f" exempted-by={','.join(exempt)}" if exempt else "")
    return f"allow:{','.join(matched)}" if matched else ""


def answer_for(pack: CompiledPack, decision: Decision, matched: Sequence[str], contacts: Contacts) -> bytes:
    """The helper's answer after the channel id: ``b" OK log=...\\n"`` or ``b" ERR message=... log=...\\n"``."""
    logv = log_value(decision, matched)
    tail = f" log={enc(logv)}" if logv else ""
    if decision.action in ("block", "hold"):
        return f" ERR message={enc(message_for(pack, decision, contacts))}{tail}\n".encode()
    return f" OK{tail}\n".encode()


def _categories(findings: Iterable[Finding]) -> list[str]:
    out: list[str] = []
    for f in findings:
        if f.category not in out:
            out.append(f.category)
    return out


# -- the error page and the squid.conf lines ---------------------------------------------------------


def error_page(pack: CompiledPack) -> str:
    """The ERR_CIVICAUP template. Squid replaces %o (helper message, HTML-escaped), %U (URL), %T, %h, %w."""
    city = html.escape(pack.pack.city.name)
    return f"""<!DOCTYPE html>
<html lang="en"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>Blocked by the City's computer use policy</title>
<style type="text/css">
 body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.45; color: #222; }}
 h1 {{ font-size: 1.4em; }}
 blockquote {{ border-left: 4px solid #b33; margin: 1em 0; padding: .4em 1em; background: #faf4f4; }}
 .small {{ color: #666; font-size: .85em; }}
</style>
</head><body id="civicaup">
<h1>{city}: this page is not available</h1>
<p>The address <a href="%U">%U</a> was not opened because of the City's computer, network, Internet and
e-mail use policy.</p>
<blockquote id="civicaup-reason"><p>%o</p></blockquote>
<p>If you need this site for City business, ask for an exemption as described above. Every refused request
is recorded, with the rule and clause that refused it.</p>
<p class="small">Generated %T by %h (civicaup, policy {html.escape(pack.id)}). Proxy administrator: %w.</p>
</body></html>
"""


def squid_conf_lines(pack: CompiledPack, helper_argv: Sequence[str], errors_dir: str, *,
                     env: Mapping[str, str] | None = None, concurrency: int = 100, children: int = 2) -> str:
    """The squid.conf lines: the helper, the ACL, the deny line, the page. Auth lines must come before them."""
    cmd = list(helper_argv)
    if env:
        cmd = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *cmd]
    command = " ".join(shlex.quote(c) for c in cmd)
    return "\n".join([
        f"# civicaup: web policy {pack.id} ({pack.pack.city.name}). Put these lines after your auth_param /",
        "# 'http_access deny !authenticated' lines (so %un is the user) and before any 'http_access allow'.",
        "# ttl=0 cache=0: Squid keeps no answers (the helper caches them itself, keyed on the work-time window).",
        f"external_acl_type {HELPER_NAME} concurrency={concurrency} ttl=0 negative_ttl=0 cache=0 "
        f"children-max={children} children-startup=1 %>ru %un %>a %rm {command}",
        f"acl {ACL_NAME} external {HELPER_NAME}",
        f"http_access deny !{ACL_NAME}",
        f"deny_info {TEMPLATE_NAME} {ACL_NAME}",
        f"error_directory {errors_dir}",
        "",
    ])
