"""Platform exports -> the generic intake items (see intake.py), oldest first.

- Facebook Graph API: a page feed (`/{page-id}/feed?fields=id,message,created_time,from,comments{...}`),
  a post's comments (`/{post-id}/comments?fields=id,message,created_time,from,attachment,comments`) or the
  page's conversations (`/{page-id}/conversations?fields=messages{id,message,created_time,from}`): the
  `{"data": [...], "paging": ...}` shape, nested `comments`/`messages` followed. Items from the page itself
  are the account's own (post, or reply to a comment); other people's comments and replies are comments;
  Messenger messages are chat.
- X (Twitter) API v2: `{"data": [tweets], "includes": {"users": [...]}}` with `author_id`, `created_at`,
  `referenced_tweets` and `entities.urls` (t.co links are expanded so the link checks see the real site);
  also the account archive's `tweets.js` (`window.YTD.tweets.part0 = [{"tweet": {...}}]`), the account's own
  tweets. Tweets by the account are post or reply; anyone else's are comments.

Ids are prefixed with the platform ("facebook:1234_5678", "x:1765...") so they are unique in the store.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Iterator

from civicaup.errors import InputError

PLATFORMS = ("facebook", "x")


def _iso(value: Any, fmt: str | None = None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        at = datetime.strptime(value.strip(), fmt) if fmt else datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).isoformat()


def _load(text: str) -> Any:
    s = text.lstrip("\ufeff").strip()
    if s.startswith("window.YTD."):  # X archive: "window.YTD.tweets.part0 = [...]"
        s = s.partition("=")[2].strip()
    try:
        return json.loads(s)
    except ValueError as exc:
        raise InputError(f"not a JSON export ({str(exc).splitlines()[0]})") from None


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: i.get("at") or "")


# Facebook ---------------------------------------------------------------------------------------------------

def from_facebook(data: Any, *, account: str | None = None, self_id: str | None = None) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "data" in data:
        nodes = data["data"]
    elif isinstance(data, list):
        nodes = data
    else:
        raise InputError("not a Facebook Graph API export: expected {\"data\": [...]}")
    if not isinstance(nodes, list):
        raise InputError("not a Facebook Graph API export: \"data\" is not a list")
    page = self_id or _page_id(nodes)
    acct = account or (f"facebook:{page}" if page else None)
    if not acct:
        raise InputError("cannot tell which page this export is from: give --account")
    out: list[dict[str, Any]] = []
    for node in nodes:
        if isinstance(node, dict):
            out.extend(_fb_node(node, acct, page, top=True))
    return _sorted(out)


def _page_id(nodes: list[Any]) -> str | None:
    """Feed and comment ids are "PAGEID_POSTID"/"POSTID_COMMENTID"; a feed's posts share the page's id."""
    for n in nodes:
        if isinstance(n, dict) and isinstance(n.get("id"), str) and "_" in n["id"] and "messages" not in n:
            if isinstance(n.get("from"), dict) and n["from"].get("id") == n["id"].split("_")[0]:
                return n["id"].split("_")[0]
    return None


def _fb_author(node: dict[str, Any]) -> tuple[str, str | None]:
    frm = node.get("from") if isinstance(node.get("from"), dict) else {}
    fid = frm.get("id") if isinstance(frm.get("id"), str) else None
    name = frm.get("name") if isinstance(frm.get("name"), str) else None
    # Without a page token the Graph API leaves `from` out: each such item gets an author of its own, so no one
    # is warned or blocked for someone else's comment.
    return (f"facebook:{fid}" if fid else f"facebook:unknown:{node.get('id')}"), fid or name


def _fb_text(node: dict[str, Any]) -> str:
    text = node.get("message") if isinstance(node.get("message"), str) else ""
    att = node.get("attachment") if isinstance(node.get("attachment"), dict) else None
    if att:
        target = att.get("target") if isinstance(att.get("target"), dict) else {}
        url = target.get("url") or att.get("url")
        if isinstance(url, str) and url:
            text = f"{text} {url}".strip()
    return text


def _fb_node(node: dict[str, Any], acct: str, page: str | None, *, top: bool,
             parent_is_post: bool = True) -> Iterator[dict[str, Any]]:
    if isinstance(node.get("messages"), dict):  # a Messenger conversation
        for m in node["messages"].get("data") or []:
            if isinstance(m, dict) and m.get("id"):
                author, _ = _fb_author(m)
                yield {"id": f"facebook:{m['id']}", "account": acct, "author": author, "kind": "chat",
                       "text": _fb_text(m), "at": _iso(m.get("created_time"))}
        return
    if not node.get("id"):
        return
    author, fid = _fb_author(node)
    own = page is not None and fid == page
    if top and own and "_" in str(node["id"]) and str(node["id"]).split("_")[0] == page:
        kind = "post"  # a post of the page's feed
    elif own:
        kind = "reply"  # the page answering a comment
    else:
        kind = "comment"
    yield {"id": f"facebook:{node['id']}", "account": acct, "author": author, "kind": kind,
           "text": _fb_text(node), "at": _iso(node.get("created_time"))}
    comments = node.get("comments")
    for c in (comments.get("data") if isinstance(comments, dict) else None) or []:
        if isinstance(c, dict):
            yield from _fb_node(c, acct, page, top=False)


# X / Twitter ------------------------------------------------------------------------------------------------

_TCO = re.compile(r"https://t\.co/\w+")


def from_x(data: Any, *, account: str | None = None, self_id: str | None = None) -> list[dict[str, Any]]:
    if isinstance(data, list):  # the archive's tweets.js
        return _x_archive(data, account)
    if not isinstance(data, dict) or not isinstance(data.get("data"), (list, dict)):
        raise InputError("not an X API v2 export: expected {\"data\": [...], \"includes\": {\"users\": [...]}}")
    tweets = data["data"] if isinstance(data["data"], list) else [data["data"]]
    users = {u.get("id"): u for u in ((data.get("includes") or {}).get("users") or []) if isinstance(u, dict)}
    handle = account.partition(":")[2].lstrip("@").lower() if account and ":" in account else \
        (account or "").lstrip("@").lower() or None
    own_ids = {self_id} if self_id else {uid for uid, u in users.items()
                                         if handle and str(u.get("username", "")).lower() == handle}
    if not account:
        if self_id and self_id in users:
            account = f"x:{str(users[self_id].get('username') or self_id).lower()}"
        elif self_id:
            account = f"x:{self_id}"
        else:
            raise InputError("cannot tell which account this export is for: give --account (e.g. x:wdmpolice)")
    elif ":" not in account:
        account = f"x:{account.lstrip('@').lower()}"
    out = []
    for t in tweets:
        if not isinstance(t, dict) or not t.get("id"):
            continue
        uid = t.get("author_id")
        user = users.get(uid) or {}
        author = f"@{user['username']}" if user.get("username") else f"x:{uid or 'unknown:' + str(t['id'])}"
        refs = {r.get("type") for r in t.get("referenced_tweets") or [] if isinstance(r, dict)}
        if uid in own_ids:
            kind = "reply" if "replied_to" in refs else "post"
        else:
            kind = "comment"
        out.append({"id": f"x:{t['id']}", "account": account, "author": author, "kind": kind,
                    "text": _expand(t.get("text") or "", (t.get("entities") or {}).get("urls")),
                    "at": _iso(t.get("created_at"))})
    return _sorted(out)


def _expand(text: str, urls: Any) -> str:
    """t.co links replaced by the links they stand for."""
    table = {u.get("url"): u.get("expanded_url") for u in urls or [] if isinstance(u, dict) and u.get("expanded_url")}
    return _TCO.sub(lambda m: table.get(m.group(0), m.group(0)), text) if table else text


def _x_archive(rows: list[Any], account: str | None) -> list[dict[str, Any]]:
    if not account:
        raise InputError("an X archive (tweets.js) holds the account's own tweets: give --account (e.g. x:wdmpolice)")
    if ":" not in account:
        account = f"x:{account.lstrip('@').lower()}"
    out = []
    for row in rows:
        t = row.get("tweet") if isinstance(row, dict) else None
        if not isinstance(t, dict) or not (t.get("id_str") or t.get("id")):
            continue
        tid = t.get("id_str") or t.get("id")
        kind = "reply" if t.get("in_reply_to_status_id_str") or t.get("in_reply_to_status_id") else "post"
        out.append({"id": f"x:{tid}", "account": account, "author": "@" + account.partition(":")[2], "kind": kind,
                    "text": _expand(t.get("full_text") or t.get("text") or "", (t.get("entities") or {}).get("urls")),
                    "at": _iso(t.get("created_at"), "%a %b %d %H:%M:%S %z %Y")})
    return _sorted(out)


def convert(platform: str, text: str, *, account: str | None = None, self_id: str | None = None) -> list[dict[str, Any]]:
    """A platform's export (its text) -> generic items."""
    p = {"twitter": "x", "fb": "facebook"}.get(platform.strip().lower(), platform.strip().lower())
    if p not in PLATFORMS:
        raise InputError(f"--from must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    data = _load(text)
    items = (from_facebook if p == "facebook" else from_x)(data, account=account, self_id=self_id)
    for i in items:  # an item without a time would be stamped "now" at ingest; keep the export's order visible
        if i["at"] is None:
            del i["at"]
    return items
