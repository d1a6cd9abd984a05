"""The journaling hook: every message that passed the filter, with its decision, for the records archive.

A `Journal` receives each accepted message (allow, log, flag) before the MTA is answered. The default writes a
Maildir under `$CIVICAUP_HOME/journal/` (tmp/ then an atomic rename into new/, as Maildir delivery does): the
original bytes, preceded by one `X-Civicaup-Journal` header carrying the envelope and the Decision as base64 JSON.
The records archive (its own issue) imports that Maildir, or replaces this class with its own `Journal`.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from civicaup.config import home

if TYPE_CHECKING:
    from civicaup.channels.mail.gateway import Envelope
    from civicaup.channels.mail.spool import Spool
    from civicaup.engine.decision import Decision

JOURNAL_HEADER = "X-Civicaup-Journal"


class Journal(Protocol):
    fsync: bool  # True when record() waits for the disk; the gateway then calls it from a worker thread

    def record(self, spool: "Spool", decision: "Decision", envelope: "Envelope") -> None:
        """Keep one passed message with its decision; raise if it could not be kept (the MTA is told to retry)."""


class NullJournal:
    fsync = False

    def record(self, spool: "Spool", decision: "Decision", envelope: "Envelope") -> None:
        return None


def journal_record(decision: "Decision", envelope: "Envelope") -> dict[str, Any]:
    return {"at": datetime.now(timezone.utc).isoformat(), "policy": decision.policy, "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_to), "auth_user": envelope.auth_user, "queue_id": envelope.queue_id,
            "decision": decision.to_json()}


def encode_header(record: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    lines = [data[i:i + 76] for i in range(0, len(data), 76)] or [b""]
    return JOURNAL_HEADER.encode() + b": " + b"\r\n ".join(lines) + b"\r\n"


def decode_header(value: str) -> dict[str, Any]:
    """The record from an `X-Civicaup-Journal` header value (folding whitespace allowed)."""
    return json.loads(base64.b64decode("".join(value.split())).decode("utf-8"))


class MaildirJournal:
    """Appends passed messages to a Maildir (default `$CIVICAUP_HOME/journal`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, fsync: bool = False) -> None:
        self.root = Path(root) if root else home() / "journal"
        self.fsync = fsync
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_") or "localhost"
        self._n = itertools.count(1)
        # plain strings: three Path objects a message cost more than writing the message to the page cache
        self._tmp, self._new = os.path.join(self.root, "tmp", ""), os.path.join(self.root, "new", "")

    def record(self, spool: "Spool", decision: "Decision", envelope: "Envelope") -> None:
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._n)}_{spool.sha256[:16]}.{self._host}"
        tmp = self._tmp + name
        with open(tmp, "wb") as out:
            out.write(encode_header(journal_record(decision, envelope)))
            with spool.open() as src:
                shutil.copyfileobj(src, out, 1 << 20)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, self._new + name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        """(record, path) of each journaled message, oldest first."""
        for sub in ("new", "cur"):
            for p in sorted((self.root / sub).iterdir()):
                head = p.read_bytes()[:65536].split(b"\r\n")
                value = []
                for i, line in enumerate(head):
                    if i == 0:
                        value.append(line.partition(b":")[2].decode())
                    elif line.startswith(b" "):
                        value.append(line.decode())
                    else:
                        break
                yield decode_header("".join(value)), p
