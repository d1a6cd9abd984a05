"""The one schema, for SQLite and PostgreSQL alike. Changes go through an Alembic migration."""
from __future__ import annotations

from sqlalchemy import (JSON, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()

people = Table(
    "people", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("department", String(200), nullable=False, default=""),
    Column("title", String(200), nullable=False, default=""),
    Column("roles", JSON, nullable=False),  # role vocabulary words, title roles plus extra ones
    Column("active", Boolean, nullable=False, default=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("policy", "email", name="uq_people_policy_email"),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("policy", String(64), nullable=False, default=""),
    Column("detail", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),  # two writers racing: one wins, one retries
)
Index("ix_audit_action", audit.c.action)
