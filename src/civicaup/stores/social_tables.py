"""Tables of the social-media moderation (issue 8), on the one `metadata` of civicaup.stores.tables.

Created by migration 0005_social. Times are stored in UTC (SQLite keeps no offset; read-back naive = UTC).
No password is ever stored: an account only records when its credentials were last changed.
"""
from __future__ import annotations

from sqlalchemy import (JSON, Boolean, Column, DateTime, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from civicaup.stores.tables import metadata

# Official accounts of the city's departments.
social_accounts = Table(
    "social_accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("key", String(200), nullable=False),  # "platform:handle", lower case: what ingest lines name
    Column("platform", String(40), nullable=False),
    Column("handle", String(160), nullable=False),  # as the city writes it (without a leading @)
    Column("department", String(200), nullable=False),
    Column("director", String(320), nullable=False),  # the Department Director responsible
    Column("email", String(320), nullable=False),  # the city address the account is tied to
    Column("moderators", JSON, nullable=False),  # e-mail addresses, sorted
    Column("credentials_changed_at", DateTime(timezone=True), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("policy", "key", name="uq_social_accounts_policy_key"),
)

# Tasks raised for an account: "rotate-credentials" when its moderators change.
social_tasks = Table(
    "social_tasks", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("account", String(200), nullable=False),  # social_accounts.key
    Column("kind", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("clause", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(320), nullable=True),
    Column("note", Text, nullable=True),
)
Index("ix_social_tasks_policy_status", social_tasks.c.policy, social_tasks.c.status)

# Every ingested item (drafts excepted): its decision and current moderation answer.
social_items = Table(
    "social_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("item_id", String(200), nullable=False),  # the platform's id, as a string
    Column("account", String(200), nullable=False),  # account key when registered, else as given
    Column("author", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),  # when posted (UTC)
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("decision", JSON, nullable=False),  # Decision.to_json()
    Column("mod_action", String(8), nullable=False),  # keep | remove
    Column("author_answer", String(8), nullable=False),  # ok | warned | blocked
    Column("strike_scope", String(200), nullable=False),  # commenter scope: account key, or "" for city-wide
    Column("review", String(12), nullable=False),  # "" | pending | kept | removed | warned
    Column("reviewed_by", String(320), nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    Column("revisions", Integer, nullable=False, default=1),  # edits of the same id seen
    UniqueConstraint("policy", "item_id", name="uq_social_items_policy_item"),
)
Index("ix_social_items_account_at", social_items.c.policy, social_items.c.account, social_items.c.at)
Index("ix_social_items_review", social_items.c.policy, social_items.c.review)

# The public record of removed content (WDM Prohibited Content ¶10): never deleted by civicaup.
social_removals = Table(
    "social_removals", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("account", String(200), nullable=False),
    Column("department", String(200), nullable=False),
    Column("author", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),  # the removed content, whole
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=False),
    Column("removed_by", String(320), nullable=False),  # "civicaup" (automatic) or the moderator's address
    Column("reason", Text, nullable=False),  # a sentence: why it was removed
    Column("rule", String(100), nullable=False),
    Column("clause", String(200), nullable=False),
    Column("quote", Text, nullable=False),
    Column("findings", JSON, nullable=False),  # every finding that called for removal
    Column("restored_at", DateTime(timezone=True), nullable=True),
    Column("restored_by", String(320), nullable=True),
)
Index("ix_social_removals_policy_account", social_removals.c.policy, social_removals.c.account)

# Commenters' standing per scope (an account key, or "" for the whole city).
social_commenters = Table(
    "social_commenters", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("author", String(320), nullable=False),
    Column("strikes", Integer, nullable=False, default=0),  # active strikes
    Column("status", String(8), nullable=False),  # ok | warned | blocked
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("policy", "scope", "author", name="uq_social_commenters"),
)

# History of warnings, blocks and withdrawn strikes.
social_strikes = Table(
    "social_strikes", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("author", String(320), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", String(12), nullable=False),  # warned | blocked | withdrawn
    Column("rule", String(100), nullable=False),
    Column("clause", String(200), nullable=False),
    Column("by", String(320), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)
Index("ix_social_strikes_author", social_strikes.c.policy, social_strikes.c.scope, social_strikes.c.author)

SOCIAL_TABLES = (social_accounts, social_tasks, social_items, social_removals, social_commenters, social_strikes)
