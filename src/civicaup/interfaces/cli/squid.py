"""`civicaup squid-helper`: the Squid external ACL helper on stdin/stdout (see `civicaup setup squid`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from civicaup.errors import InputError, PackError
from civicaup.policy.registry import get_pack


def squid_helper(policy: str = typer.Option(..., "--policy", help="pack id"),
                 index: Optional[Path] = typer.Option(None, "--index",
                                                      help="category index (default $CIVICAUP_HOME/categories.idx)"),
                 cache_size: int = typer.Option(131_072, "--cache-size",
                                                help="answers kept in memory (about 300 bytes each)"),
                 line_budget: float = typer.Option(2.0, "--line-budget",
                                                   help="seconds a request may take before the fail mode answers"),
                 audit_interval: float = typer.Option(1.0, "--audit-interval",
                                                      help="seconds between audit log writes")) -> None:
    """Squid external ACL helper: reads 'CHANNEL URL USER CLIENT-IP METHOD' lines, answers OK or ERR.

    squid.conf: external_acl_type civicaup concurrency=100 ttl=0 %>ru %un %>a %rm <this command>.
    SIGHUP reloads the pack, the directory and the index; SIGTERM stops after answering what was read.
    """
    from civicaup.channels.web.squid_helper import main

    if cache_size < 2 or line_budget <= 0 or audit_interval <= 0:
        raise InputError("--cache-size must be at least 2, --line-budget and --audit-interval above 0")
    try:
        get_pack(policy)
    except PackError:
        pass  # a broken pack: the helper starts anyway and fails closed until it loads (logged)
    raise typer.Exit(main(policy, index_path=index, cache_size=cache_size, line_budget=line_budget,
                          audit_interval=audit_interval))
