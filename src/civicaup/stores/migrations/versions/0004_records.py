"""archive, retention, legal holds and public-records requests (issue 6)

Revision ID: 0004
Revises: 0003

The full-text index depends on the database: SQLite gets an FTS5 table with the Porter stemmer (so
"lobbyists" finds "lobbyist"), contentless to keep the store small; PostgreSQL gets a tsvector table
(english configuration, which stems too) with a GIN index. Both are keyed by archive_messages.id.
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FTS5_TOKENIZE = "porter unicode61 remove_diacritics 2"


def upgrade() -> None:
    op.create_table(
        "archive_messages",
        # SQLite: INTEGER PRIMARY KEY makes the date-ordered id the rowid itself (no second index)
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_source", sa.String(16), nullable=False),
        sa.Column("from_addr", sa.String(320), nullable=False),
        sa.Column("from_name", sa.String(200), nullable=False),
        sa.Column("to_addrs", sa.Text, nullable=False),
        sa.Column("cc_addrs", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("attachments", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("decision_action", sa.String(16), nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.Column("series", sa.String(64), nullable=False),
        sa.Column("series_by", sa.String(400), nullable=False),
        sa.Column("text_z", sa.LargeBinary, nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("policy", "sha256", name="uq_archive_policy_sha256"),
    )
    op.create_table(
        "archive_addresses",
        sa.Column("message", sa.BigInteger, sa.ForeignKey("archive_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(4), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("message", "kind", "address", name="pk_archive_addresses"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_archive_addresses_address", "archive_addresses", ["address", "message", "kind"])
    op.create_index("ix_archive_addresses_domain", "archive_addresses", ["domain", "message", "kind"])
    op.create_table(
        "archive_attachments",
        sa.Column("message", sa.BigInteger, sa.ForeignKey("archive_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("message", "position", name="pk_archive_attachments"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "records_holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("custodian", sa.String(320), nullable=True),
        sa.Column("since", sa.Date, nullable=True),
        sa.Column("until", sa.Date, nullable=True),
        sa.Column("query", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("released_by", sa.String(320), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_records_holds_policy_status", "records_holds", ["policy", "status"])
    op.create_table(
        "records_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received", sa.String(16), nullable=False),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("due", sa.Date, nullable=True),
        sa.Column("statute", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_records_requests_policy_status", "records_requests", ["policy", "status"])
    op.create_table(
        "records_request_items",
        sa.Column("request", sa.Integer, sa.ForeignKey("records_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("tagged_by", sa.String(320), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request", "sha256", name="pk_records_request_items"),
    )
    op.create_index("ix_records_request_items_sha256", "records_request_items", ["sha256"])
    op.create_table(
        "records_redactions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request", sa.Integer, sa.ForeignKey("records_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request", "sha256", "text", name="uq_records_redactions_text"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("CREATE VIRTUAL TABLE archive_fts USING fts5(subject, body, content='', "
                   f"tokenize='{FTS5_TOKENIZE}')")
    elif dialect == "postgresql":
        op.execute("CREATE TABLE archive_fts (id BIGINT PRIMARY KEY REFERENCES archive_messages(id) "
                   "ON DELETE CASCADE, tsv TSVECTOR NOT NULL)")
        op.execute("CREATE INDEX ix_archive_fts_tsv ON archive_fts USING GIN (tsv)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS archive_fts")
    for table in ("records_redactions", "records_request_items", "records_requests", "records_holds",
                  "archive_attachments", "archive_addresses", "archive_messages"):
        op.drop_table(table)
