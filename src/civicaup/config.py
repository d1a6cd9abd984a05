"""Where state lives: the data directory `$CIVICAUP_HOME` (default ~/.local/share/civicaup)."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The data directory; created on first use by whoever writes to it."""
    env = os.environ.get("CIVICAUP_HOME")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "civicaup"
