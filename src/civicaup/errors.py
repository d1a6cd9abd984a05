"""Error families. The CLI, the API and the mail adapters translate these once, at their boundary."""
from __future__ import annotations


class CivicaupError(Exception):
    """Base of every error civicaup raises on purpose; its message is one line for a person."""


class InputError(CivicaupError):
    """Bad input from outside: a file, a URL, a message, an argument. CLI exit 2, API 400."""


class BadURLError(InputError):
    """A URL that cannot be normalised."""


class MailParseError(InputError):
    """A message that cannot be read at all (not merely malformed: malformed mail is parsed)."""


class PackError(CivicaupError):
    """A policy pack that does not load; the message names the file, line, rule and field."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, rule: str | None = None,
                 field: str | None = None) -> None:
        where = file + (f":{line}" if line else "")
        parts = [p for p in (where, f"rule {rule}" if rule else "", f"field {field}" if field else "") if p]
        super().__init__(": ".join([", ".join(parts), message]) if parts else message)
        self.file, self.line, self.rule, self.field = file, line, rule, field


class UnknownPolicyError(InputError):
    """No pack with that id."""


class IndexError_(CivicaupError):
    """The URL category index is missing or unreadable."""
