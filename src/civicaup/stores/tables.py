"""The one schema, for SQLite and PostgreSQL alike. Changes go through an Alembic migration."""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String,
                        Table, Text, UniqueConstraint)

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

# Row ids of the tables that grow with a league's traffic: 64-bit on PostgreSQL (one global sequence each),
# SQLite's INTEGER PRIMARY KEY (the rowid) there.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

# The audit log: one hash chain per city (`chain` = the entry's policy; "" holds entries of no city and every
# entry written before migration 0007, when the install had a single chain). `seq` numbers a chain from 1.
# On PostgreSQL the table is partitioned by chain, then by month of `at` (stores/partitions.py); its key is
# (chain, seq, at) and the chain's head row in audit_chains serialises writers of one chain.
audit = Table(
    "audit", metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("chain", String(64), nullable=False, default=""),
    Column("seq", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("policy", String(64), nullable=False, default=""),
    Column("detail", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("chain", "seq", name="uq_audit_chain_seq"),  # SQLite; PostgreSQL: part of the primary key
)
Index("ix_audit_action", audit.c.action)

# The head of each audit chain: a writer locks its chain's row, appends after it and moves it on.
audit_chains = Table(
    "audit_chains", metadata,
    Column("chain", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # the last entry's seq, 0 for none
    Column("hash", String(64), nullable=False),  # the last entry's hash
    Column("at", DateTime(timezone=True), nullable=True),  # when it was written
)

# Web usage from Squid's access.log (issue 9): one row a logged request, categorised at ingest.
web_usage = Table(
    "web_usage", metadata,
    Column("id", BIG_ID, primary_key=True),  # PostgreSQL: partitioned by policy and month of `at`, key (id, policy, at)
    Column("policy", String(64), nullable=False),
    Column("line_hash", String(64), nullable=False),  # sha256 of the log line and its repeat number in the file
    Column("at", DateTime(timezone=True), nullable=False),  # when Squid logged it (UTC)
    Column("elapsed_ms", Integer, nullable=False),
    Column("client", String(64), nullable=False),
    Column("login", String(320), nullable=False),  # the user name as logged, "" for "-"
    Column("email", String(320), nullable=False),  # the directory address it maps to ("" if none)
    Column("department", String(200), nullable=False),  # from the directory at ingest
    Column("status", String(64), nullable=False),  # e.g. TCP_MISS/200, TCP_DENIED/403
    Column("bytes", BigInteger, nullable=False),
    Column("method", String(16), nullable=False),
    Column("host", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("category", String(64), nullable=False),  # the first category of the index, "" if unlisted
    Column("categories", String(500), nullable=False),  # all of them, comma-separated
    Column("work_time", Boolean, nullable=False),  # within the city's working hours (not lunch)
    UniqueConstraint("policy", "line_hash", name="uq_web_usage_line"),  # PostgreSQL: (policy, line_hash, at)
)
Index("ix_web_usage_policy_at", web_usage.c.policy, web_usage.c.at)
Index("ix_web_usage_policy_email", web_usage.c.policy, web_usage.c.email)

# Held and flagged mail (issue 5): the raw bytes live content-addressed under $CIVICAUP_HOME/quarantine/<sha256>.
mail_quarantine = Table(
    "mail_quarantine", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # held, flagged, approved (delivery pending), released, rejected
    Column("channel", String(16), nullable=False, default="milter"),  # milter or relay
    Column("queue_id", String(64), nullable=False, default=""),  # the MTA's queue id, for its logs
    Column("sender", String(320), nullable=False, default=""),  # authenticated user, else envelope sender
    Column("sender_department", String(200), nullable=False, default=""),  # from the directory when held
    Column("mail_from", String(320), nullable=False, default=""),  # envelope sender ("" = null sender)
    Column("recipients", JSON, nullable=False),  # envelope recipients
    Column("subject", String(500), nullable=False, default=""),
    Column("message_id", String(500), nullable=False, default=""),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rule", String(64), nullable=False, default=""),  # the first held (or flagged) finding
    Column("clause", String(200), nullable=False, default=""),
    Column("approvers", JSON, nullable=False),  # [{"rule","clause","roles","needed"}] one per held finding
    Column("decision", Text, nullable=False),  # the Decision as JSON
    Column("next_hop", String(300), nullable=False, default=""),  # where a release re-injects, as the filter knew it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_mail_quarantine_policy_status", mail_quarantine.c.policy, mail_quarantine.c.status)

mail_approvals = Table(
    "mail_approvals", metadata,
    Column("id", Integer, primary_key=True),
    Column("quarantine_id", Integer, ForeignKey("mail_quarantine.id"), nullable=False),
    Column("verdict", String(16), nullable=False),  # approve or reject
    Column("approver", String(320), nullable=False),
    Column("role", String(64), nullable=False),  # the role the approver acted in
    Column("rule", String(64), nullable=False),
    Column("clause", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("quarantine_id", "rule", "role", "verdict", name="uq_mail_approvals_role"),
)
