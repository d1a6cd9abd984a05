"""Where state lives: the data directory (`data_dir` in civicaup.toml, `$CIVICAUP_HOME`; default
~/.local/share/civicaup). The rest of the configuration is in `civicaup.settings`."""
from __future__ import annotations

from pathlib import Path


def home() -> Path:
    """The data directory; created on first use by whoever writes to it."""
    from civicaup import settings

    return settings.load().home
