"""league scale: one audit chain per city; on PostgreSQL the big tables partitioned by city, then by month

Revision ID: 0007
Revises: 0006

Both databases: the audit log gets `chain` (the city's policy id, "" for entries of no city) and `seq` (the
position in that chain, which the hash covers), and a table of chain heads that writers lock. Every entry
written before this revision stays in the chain "" with seq = its id, so its hashes still verify unchanged.

PostgreSQL only (see civicaup/stores/partitions.py for the layout and the partitions made on demand): audit,
web_usage, archive_messages and archive_fts become partitioned by LIST (city) then RANGE (month of the event
time; for the archive, of the date-ordered id), with every existing row copied. A partitioned table's unique
keys must hold its partition columns, so:
  audit             primary key (chain, seq, at); the chain's head row serialises its writers (no unique
                    prev_hash any more: every city's chain starts from the same genesis hash); id is 64-bit
  web_usage         primary key (id, policy, at), unique (policy, line_hash, at) (`at` comes from the same log
                    line the hash covers, so it is the same duplicate test); id is 64-bit
  archive_messages  primary key (id, policy); (policy, sha256) is no longer a unique key (an index on sha256;
                    importers of one city are serialised by an advisory lock, see records/ingest.py); the
                    foreign keys of archive_addresses and archive_attachments to it are dropped (deletion removes
                    them explicitly, in the same transaction)
  archive_fts       gets the policy column; primary key (id, policy); no foreign key
Sequences stay global (INSERT ... RETURNING id keeps working). Rows older than the current month go to each
city's history partition; this month and the next get their own.

Downgrade restores the 0006 tables with every row. The per-city chains cannot be one chain again without
rewriting hashes, so after a downgrade 0006's `audit verify` reports the first entry written by 0007 (and the
unique prev_hash key is restored only if no two chains share a starting point).
"""
from __future__ import annotations

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Connection, text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
AUDIT_COLUMNS = "at, actor, action, subject, policy, detail, prev_hash, hash"


def _audit_chains() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=True),
    )


def upgrade() -> None:
    bind = op.get_bind()
    _audit_chains()
    if bind.dialect.name == "postgresql":
        _pg_upgrade(bind)
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _pg_downgrade(bind)
    else:
        _sqlite_downgrade(bind)
    op.drop_table("audit_chains")


# ---------------------------------------------------------------- SQLite: the audit chains only

def _sqlite_upgrade() -> None:
    op.create_table(
        "audit_0007",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain", sa.String(64), nullable=False, server_default=""),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_audit_chain_seq"),
    )
    op.execute(f"INSERT INTO audit_0007 (id, chain, seq, {AUDIT_COLUMNS}) SELECT id, '', id, {AUDIT_COLUMNS} "
               "FROM audit ORDER BY id")
    op.execute("INSERT INTO audit_chains (chain, seq, hash, at) SELECT '', id, hash, at FROM audit "
               "ORDER BY id DESC LIMIT 1")
    op.drop_index("ix_audit_action", "audit")
    op.drop_table("audit")
    op.rename_table("audit_0007", "audit")
    op.create_index("ix_audit_action", "audit", ["action"])


def _sqlite_downgrade(bind: Connection) -> None:
    unique = _prev_hash_unique(bind)
    op.create_table(
        "audit_0006",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        *([sa.UniqueConstraint("prev_hash", name="uq_audit_prev_hash")] if unique else []),
    )
    op.execute(f"INSERT INTO audit_0006 (id, {AUDIT_COLUMNS}) SELECT id, {AUDIT_COLUMNS} FROM audit ORDER BY id")
    op.drop_index("ix_audit_action", "audit")
    op.drop_table("audit")
    op.rename_table("audit_0006", "audit")
    op.create_index("ix_audit_action", "audit", ["action"])


def _prev_hash_unique(bind: Connection) -> bool:
    return bool(bind.execute(text("SELECT count(*) = count(DISTINCT prev_hash) FROM audit")).scalar_one())


# ---------------------------------------------------------------- PostgreSQL: partitioned tables

def _retire(conn: Connection, table: str) -> str | None:
    """Rename *table* to <table>_old without its keys and indexes (their names are reused), dropping foreign
    keys that point at it. Returns the sequence of its id column, if any."""
    seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar_one_or_none() \
        if conn.execute(text("SELECT count(*) FROM information_schema.columns WHERE table_name = :t "
                             "AND column_name = 'id' AND table_schema = current_schema()"), {"t": table}).scalar_one() \
        else None
    for rel, con in conn.execute(text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE confrelid = to_regclass(:t) "
            "AND contype = 'f'"), {"t": table}).all():
        conn.exec_driver_sql(f'ALTER TABLE {rel} DROP CONSTRAINT "{con}"')
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_old")
    for con in conn.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) "
                                 "AND contype IN ('p', 'u', 'f', 'x')"), {"t": f"{table}_old"}).scalars().all():
        conn.exec_driver_sql(f'ALTER TABLE {table}_old DROP CONSTRAINT "{con}"')
    for idx in conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = :t "
                                 "AND schemaname = current_schema()"), {"t": f"{table}_old"}).scalars().all():
        conn.exec_driver_sql(f'DROP INDEX "{idx}"')
    return seq


def _cities(conn: Connection, table: str, column: str) -> list[str]:
    from civicaup.stores.partitions import _CITY

    values = conn.exec_driver_sql(f"SELECT DISTINCT {column} FROM {table}").scalars().all()
    return sorted(v for v in values if _CITY.match(v))  # any other value stays in the default partition


def _partition(conn: Connection, table: str, cities: list[str]) -> None:
    from civicaup.stores import partitions as P

    now = P.month_of(datetime.now(timezone.utc))
    P.create_parent_default(conn, table)
    for city in cities:
        P.create_city(conn, table, city, now, [now, P.next_month(now)])


def _own(conn: Connection, seq: str | None, table: str, bigint: bool = True) -> None:
    """Give the id sequence to the new table, past every id it holds (0006's audit writer set ids itself, so
    its sequence never moved)."""
    if seq:
        conn.exec_driver_sql(f"ALTER SEQUENCE {seq} {'AS bigint ' if bigint else ''}OWNED BY {table}.id")
        conn.exec_driver_sql(f"SELECT setval('{seq}', greatest((SELECT max(id) FROM {table}), "
                             f"(SELECT last_value FROM {seq}), 1))")


def _pg_upgrade(conn: Connection) -> None:
    # the audit log: chains, then partitions by chain and month
    seq = _retire(conn, "audit")
    conn.exec_driver_sql("CREATE TABLE audit (LIKE audit_old INCLUDING DEFAULTS, chain VARCHAR(64) NOT NULL "
                         "DEFAULT '', seq BIGINT NOT NULL, CONSTRAINT audit_pkey PRIMARY KEY (chain, seq, at)) "
                         "PARTITION BY LIST (chain)")
    conn.exec_driver_sql("ALTER TABLE audit ALTER COLUMN id TYPE BIGINT")
    conn.exec_driver_sql("CREATE INDEX ix_audit_action ON audit (action)")
    _partition(conn, "audit", [""] if conn.exec_driver_sql("SELECT 1 FROM audit_old LIMIT 1").first() else [])
    conn.exec_driver_sql(f"INSERT INTO audit (id, chain, seq, {AUDIT_COLUMNS}) SELECT id, '', id, {AUDIT_COLUMNS} "
                         "FROM audit_old")
    conn.exec_driver_sql("INSERT INTO audit_chains (chain, seq, hash, at) SELECT '', id, hash, at FROM audit_old "
                         "ORDER BY id DESC LIMIT 1")
    _own(conn, seq, "audit")
    conn.exec_driver_sql("DROP TABLE audit_old")

    # web usage: by policy and month
    seq = _retire(conn, "web_usage")
    conn.exec_driver_sql("CREATE TABLE web_usage (LIKE web_usage_old INCLUDING DEFAULTS, "
                         "CONSTRAINT web_usage_pkey PRIMARY KEY (id, policy, at), "
                         "CONSTRAINT uq_web_usage_line UNIQUE (policy, line_hash, at)) PARTITION BY LIST (policy)")
    conn.exec_driver_sql("ALTER TABLE web_usage ALTER COLUMN id TYPE BIGINT")
    conn.exec_driver_sql("CREATE INDEX ix_web_usage_policy_at ON web_usage (policy, at)")
    conn.exec_driver_sql("CREATE INDEX ix_web_usage_policy_email ON web_usage (policy, email)")
    _partition(conn, "web_usage", _cities(conn, "web_usage_old", "policy"))
    conn.exec_driver_sql("INSERT INTO web_usage SELECT * FROM web_usage_old")
    _own(conn, seq, "web_usage")
    conn.exec_driver_sql("DROP TABLE web_usage_old")

    # the archive and its full-text index: by policy and month of the (date-ordered) id
    _retire(conn, "archive_fts")
    _retire(conn, "archive_messages")
    conn.exec_driver_sql("CREATE TABLE archive_messages (LIKE archive_messages_old INCLUDING DEFAULTS, "
                         "CONSTRAINT archive_messages_pkey PRIMARY KEY (id, policy)) PARTITION BY LIST (policy)")
    conn.exec_driver_sql("CREATE INDEX ix_archive_messages_sha256 ON archive_messages (sha256)")
    conn.exec_driver_sql("CREATE TABLE archive_fts (id BIGINT NOT NULL, policy VARCHAR(64) NOT NULL, "
                         "tsv TSVECTOR NOT NULL, CONSTRAINT archive_fts_pkey PRIMARY KEY (id, policy)) "
                         "PARTITION BY LIST (policy)")
    conn.exec_driver_sql("CREATE INDEX ix_archive_fts_tsv ON archive_fts USING GIN (tsv)")
    cities = _cities(conn, "archive_messages_old", "policy")
    _partition(conn, "archive_messages", cities)
    _partition(conn, "archive_fts", cities)
    conn.exec_driver_sql("INSERT INTO archive_messages SELECT * FROM archive_messages_old")
    conn.exec_driver_sql("INSERT INTO archive_fts (id, policy, tsv) SELECT f.id, m.policy, f.tsv "
                         "FROM archive_fts_old f JOIN archive_messages_old m ON m.id = f.id")
    conn.exec_driver_sql("DROP TABLE archive_fts_old")
    conn.exec_driver_sql("DROP TABLE archive_messages_old")


def _unpartition(conn: Connection, table: str) -> str | None:
    """Rename the partitioned *table* to <table>_new without its keys and indexes; returns its id sequence."""
    return _retire(conn, table)


def _pg_downgrade(conn: Connection) -> None:
    seq = _unpartition(conn, "audit")
    unique = bool(conn.exec_driver_sql("SELECT count(*) = count(DISTINCT prev_hash) FROM audit_old").scalar_one())
    conn.exec_driver_sql("CREATE TABLE audit (id INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL, actor VARCHAR(320) NOT "
                         "NULL, action VARCHAR(64) NOT NULL, subject VARCHAR(500) NOT NULL, policy VARCHAR(64) NOT "
                         "NULL, detail TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, "
                         "CONSTRAINT audit_pkey PRIMARY KEY (id))")
    conn.exec_driver_sql(f"INSERT INTO audit (id, {AUDIT_COLUMNS}) SELECT id, {AUDIT_COLUMNS} FROM audit_old")
    if unique:
        conn.exec_driver_sql("ALTER TABLE audit ADD CONSTRAINT uq_audit_prev_hash UNIQUE (prev_hash)")
    conn.exec_driver_sql("CREATE INDEX ix_audit_action ON audit (action)")
    if seq:
        conn.exec_driver_sql(f"ALTER TABLE audit ALTER COLUMN id SET DEFAULT nextval('{seq}'::regclass)")
    _own(conn, seq, "audit", bigint=False)
    conn.exec_driver_sql("DROP TABLE audit_old CASCADE")

    seq = _unpartition(conn, "web_usage")
    conn.exec_driver_sql("CREATE TABLE web_usage (LIKE web_usage_old INCLUDING DEFAULTS, "
                         "CONSTRAINT web_usage_pkey PRIMARY KEY (id), "
                         "CONSTRAINT uq_web_usage_line UNIQUE (policy, line_hash))")
    conn.exec_driver_sql("ALTER TABLE web_usage ALTER COLUMN id TYPE INTEGER")
    conn.exec_driver_sql("INSERT INTO web_usage SELECT * FROM web_usage_old")
    conn.exec_driver_sql("CREATE INDEX ix_web_usage_policy_at ON web_usage (policy, at)")
    conn.exec_driver_sql("CREATE INDEX ix_web_usage_policy_email ON web_usage (policy, email)")
    _own(conn, seq, "web_usage", bigint=False)
    conn.exec_driver_sql("DROP TABLE web_usage_old CASCADE")

    _unpartition(conn, "archive_fts")
    _unpartition(conn, "archive_messages")
    conn.exec_driver_sql("CREATE TABLE archive_messages (LIKE archive_messages_old INCLUDING DEFAULTS, "
                         "CONSTRAINT archive_messages_pkey PRIMARY KEY (id), "
                         "CONSTRAINT uq_archive_policy_sha256 UNIQUE (policy, sha256))")
    conn.exec_driver_sql("INSERT INTO archive_messages SELECT * FROM archive_messages_old")
    conn.exec_driver_sql("CREATE TABLE archive_fts (id BIGINT PRIMARY KEY REFERENCES archive_messages(id) "
                         "ON DELETE CASCADE, tsv TSVECTOR NOT NULL)")
    conn.exec_driver_sql("INSERT INTO archive_fts (id, tsv) SELECT id, tsv FROM archive_fts_old")
    conn.exec_driver_sql("CREATE INDEX ix_archive_fts_tsv ON archive_fts USING GIN (tsv)")
    for child in ("archive_addresses", "archive_attachments"):
        conn.exec_driver_sql(f"ALTER TABLE {child} ADD CONSTRAINT {child}_message_fkey FOREIGN KEY (message) "
                             "REFERENCES archive_messages(id) ON DELETE CASCADE")
    conn.exec_driver_sql("DROP TABLE archive_fts_old CASCADE")
    conn.exec_driver_sql("DROP TABLE archive_messages_old CASCADE")
