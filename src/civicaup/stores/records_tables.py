"""Records tables (issue 6): the mail archive, legal holds and public-records requests.

They share `civicaup.stores.tables.metadata`; migration 0004 creates them. The full-text index is not here:
it differs by database (an FTS5 virtual table on SQLite, a tsvector table with a GIN index on PostgreSQL)
and is reached through `civicaup.records.search` only.

An archived message's `id` is ordered by its date: (Unix seconds << 20) + a 20-bit tiebreak taken from
its hash. "The newest 50 that match" is then a backwards walk of the full-text index, never a sort of every
match, and a date range is a range of ids.

On PostgreSQL (migration 0007, civicaup.stores.partitions) archive_messages and the full-text index are
partitioned by policy, then by month of the id; a partitioned table's keys must hold its partition columns,
so there the key is (id, policy), (policy, sha256) is an index whose uniqueness the importer keeps (one
importer of a city at a time), and archive_addresses / archive_attachments have no foreign key to it (their
rows are deleted with the message, in one transaction). SQLite keeps the keys declared below.
"""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Column, Date, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        PrimaryKeyConstraint, String, Table, Text, UniqueConstraint)

from civicaup.stores.tables import metadata

ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid itself

archive_messages = Table(
    "archive_messages", metadata,
    Column("id", ID, primary_key=True, autoincrement=False),  # date-ordered, see the module docstring
    Column("policy", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the original bytes; archive_originals says where they are
    Column("message_id", String(998), nullable=False, default=""),
    Column("date", DateTime(timezone=True), nullable=False),
    Column("date_source", String(16), nullable=False, default="header"),  # header, received or imported
    Column("from_addr", String(320), nullable=False, default=""),
    Column("from_name", String(200), nullable=False, default=""),
    Column("to_addrs", Text, nullable=False, default=""),  # comma-separated, for display; search uses addresses
    Column("cc_addrs", Text, nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("attachments", Text, nullable=False, default=""),  # file names, one a line
    Column("size", Integer, nullable=False),
    Column("source", String(1000), nullable=False, default=""),  # where it came from: a path, "journal", ...
    Column("decision_action", String(16), nullable=True),  # the policy decision when the mail path made one
    Column("decision", JSON, nullable=True),
    Column("series", String(64), nullable=False),  # retention series id from the state's schedule
    Column("series_by", String(400), nullable=False, default=""),  # "rule:<id>", "default" or "clerk:<email>"
    Column("text_z", LargeBinary, nullable=True),  # SQLite: the indexed text (records.packing), to remove it from FTS5 exactly
    Column("imported_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("policy", "sha256", name="uq_archive_policy_sha256"),
)

# Where each original is kept (migration 0008): one row per distinct SHA-256, whatever the policy; see
# civicaup.records.segments. Originals stored before 0008 as files (archive/<aa>/<sha256>) have no row.
archive_originals = Table(
    "archive_originals", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("segment", Integer, nullable=False),  # archive/segments/<segment, 8 digits>.seg
    Column("byte_offset", BigInteger, nullable=False),  # of the record's header
    Column("byte_length", Integer, nullable=False),  # of the stored payload
    sqlite_with_rowid=False,
)
Index("ix_archive_originals_segment", archive_originals.c.segment, archive_originals.c.byte_offset)

archive_addresses = Table(
    "archive_addresses", metadata,
    Column("message", BigInteger, ForeignKey("archive_messages.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(4), nullable=False),  # from, to, cc
    Column("address", String(320), nullable=False),  # lowercased addr-spec
    Column("domain", String(255), nullable=False),  # labels reversed: org.kirkwoodmo
    PrimaryKeyConstraint("message", "kind", "address", name="pk_archive_addresses"),
    sqlite_with_rowid=False,
)
Index("ix_archive_addresses_address", archive_addresses.c.address, archive_addresses.c.message,
      archive_addresses.c.kind)
Index("ix_archive_addresses_domain", archive_addresses.c.domain, archive_addresses.c.message,
      archive_addresses.c.kind)

archive_attachments = Table(
    "archive_attachments", metadata,
    Column("message", BigInteger, ForeignKey("archive_messages.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(255), nullable=False),  # lowercased, for substring search
    PrimaryKeyConstraint("message", "position", name="pk_archive_attachments"),
    sqlite_with_rowid=False,
)

records_holds = Table(
    "records_holds", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("custodian", String(320), nullable=True),  # mail from, to or cc this address
    Column("since", Date, nullable=True),
    Column("until", Date, nullable=True),
    Column("query", Text, nullable=True),  # full-text query, as for archive search
    Column("reason", Text, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # active, released
    Column("released_by", String(320), nullable=True),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("release_reason", Text, nullable=True),
)
Index("ix_records_holds_policy_status", records_holds.c.policy, records_holds.c.status)

records_requests = Table(
    "records_requests", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("requester", String(200), nullable=False),
    Column("contact", String(320), nullable=False, default=""),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # public, data-subject
    Column("received", String(16), nullable=False),  # local time as given, YYYY-MM-DD[THH:MM]
    Column("state", String(2), nullable=False),
    Column("due", Date, nullable=True),  # null where the law sets no fixed day
    Column("statute", Text, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # open, closed
    Column("created_by", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
)
Index("ix_records_requests_policy_status", records_requests.c.policy, records_requests.c.status)

records_request_items = Table(
    "records_request_items", metadata,
    Column("request", Integer, ForeignKey("records_requests.id", ondelete="CASCADE"), nullable=False),
    Column("sha256", String(64), nullable=False),  # kept even if the record is later disposed of
    Column("status", String(16), nullable=False),  # responsive, withheld
    Column("note", Text, nullable=False, default=""),
    Column("tagged_by", String(320), nullable=False),
    Column("tagged_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("request", "sha256", name="pk_records_request_items"),
)
Index("ix_records_request_items_sha256", records_request_items.c.sha256)

records_redactions = Table(
    "records_redactions", metadata,
    Column("id", Integer, primary_key=True),
    Column("request", Integer, ForeignKey("records_requests.id", ondelete="CASCADE"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("text", Text, nullable=False),  # every occurrence is redacted in the produced copy
    Column("reason", Text, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request", "sha256", "text", name="uq_records_redactions_text"),
)
