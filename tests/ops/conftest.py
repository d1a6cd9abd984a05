"""Operations fixtures: the session's real PostgreSQL (shared with the records tests' fixture code)."""
from __future__ import annotations

from tests.records.conftest import new_pg_database, pg_server  # noqa: F401 - re-exported fixtures

__all__ = ["new_pg_database", "pg_server"]
