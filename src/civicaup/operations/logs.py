"""Logging for the long-running parts (milter, relay, Squid helper, serve): one JSON object a line on stderr.

``configure()`` reads ``[log] format`` and ``level`` from the configuration. In ``json`` format each line is::

    {"time": "2025-03-04T15:09:26.123Z", "level": "info", "logger": "civicaup.mail", "pid": 4711,
     "event": "milter: block mail-pii clause B.2 (queue id 4Xq1, ...)", "policy": "kirkwood-mo", ...}

``time`` is UTC, ``event`` the formatted message, and every ``extra=`` field of the call (policy, channel,
rule, clause, queue_id, ...) is a key of its own. ``text`` format is the same information for a person.

Logs never hold a message body: fields named like a body (``body``, ``raw``, ``text``, ...) are dropped, and
any string longer than ``MAX_FIELD`` characters -- the message itself included -- is cut, saying how much was
cut. Libraries that would log message data at debug level (aiosmtpd logs every DATA line) are held at warning.
"""
from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import Any, TextIO

MAX_FIELD = 500
BODY_KEYS = frozenset({"body", "raw", "text", "html", "content", "payload", "message_body", "mail_body",
                       "data", "bytes", "original"})
"""``extra=`` keys that would carry message content: never written."""
QUIET = {"mail.log": logging.WARNING, "mail.debug": logging.WARNING, "alembic": logging.WARNING,
         "uvicorn.access": logging.WARNING, "multipart": logging.WARNING, "asyncio": logging.WARNING}
"""Loggers held at this level or above whatever the configured level: aiosmtpd's ``mail.log`` writes message
lines and AUTH exchanges at debug and every sender and recipient at info."""

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "color_message"}  # color_message: uvicorn's message with terminal colours
_HANDLER_MARK = "_civicaup_handler"


def _cut(value: str, limit: int = MAX_FIELD) -> str:
    return value if len(value) <= limit else f"{value[:limit]}... [{len(value) - limit} more characters cut]"


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of an extra value: strings cut, body keys dropped, containers bounded."""
    if isinstance(value, str):
        return _cut(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[{len(value)} bytes]"
    if depth >= 4:
        return _cut(repr(value), 100)
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for i, (k, v) in enumerate(value.items())
                if i < 50 and str(k).lower() not in BODY_KEYS}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, datetime):
        return value.isoformat()
    return _cut(str(value))


class Redact(logging.Filter):
    """Cuts the message and every extra field, drops body fields; stores the result on the record for the
    formatters (``record.civicaup_event``, ``record.civicaup_fields``). Never rejects a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable: {type(exc).__name__})"
        record.civicaup_event = _cut(message)
        fields = {}
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith(("civicaup_", "_")) or key.lower() in BODY_KEYS:
                continue
            fields[key] = _clean(value)
        record.civicaup_fields = fields
        return True


def _exception(record: logging.LogRecord) -> dict[str, Any]:
    if not record.exc_info or record.exc_info[0] is None:
        return {}
    etype, exc, tb = record.exc_info
    frames = "".join(traceback.format_tb(tb))
    return {"exc_type": etype.__name__, "exc_message": _cut(str(exc)),
            "traceback": frames[-4000:]}  # the frames only: the message could quote input


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "civicaup_event"):
            Redact().filter(record)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                                                                        .replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "pid": record.process,
            "event": record.civicaup_event}  # type: ignore[attr-defined]
        for key, value in record.civicaup_fields.items():  # type: ignore[attr-defined]
            out.setdefault(key, value)
        out.update(_exception(record))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "civicaup_event"):
            Redact().filter(record)
        when = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        fields = " ".join(f"{k}={v}" for k, v in record.civicaup_fields.items())  # type: ignore[attr-defined]
        line = f"{when} {record.levelname} {record.name}[{record.process}] {record.civicaup_event}"  # type: ignore
        line += f" ({fields})" if fields else ""
        exc = _exception(record)
        if exc:
            line += f"\n{exc['traceback']}{exc['exc_type']}: {exc['exc_message']}"
        return line


def _defaults() -> tuple[str, str]:
    try:
        from civicaup import settings
        cfg = settings.load().log
        return cfg.format, cfg.level
    except Exception:  # noqa: BLE001 - a broken configuration is reported elsewhere; logging still works
        return "json", "info"


def configure(fmt: str | None = None, level: str | None = None, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to stderr in *fmt* (``json`` or ``text``) at *level* and above (both default to the
    configuration's ``[log]`` section). Calling it again replaces the handler it installed, nothing else."""
    default_fmt, default_level = _defaults()
    fmt = (fmt or default_fmt).lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"log format {fmt!r}: use json or text")
    name = (level or default_level).upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: use debug, info, warning or error")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redact())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False) or isinstance(old, logging.StreamHandler) and \
                getattr(old, "stream", None) in (sys.stderr, sys.__stderr__):
            root.removeHandler(old)  # ours from an earlier call, or a bare basicConfig one on stderr
    root.addHandler(handler)
    root.setLevel(numeric)
    for logger_name, floor in QUIET.items():
        logging.getLogger(logger_name).setLevel(max(floor, numeric))
    logging.captureWarnings(True)
    return handler


def level_name() -> str:
    """The root logger's level as a word uvicorn accepts (``warning``)."""
    return logging.getLevelName(logging.getLogger().level).lower()
