"""official social-media accounts, moderation queue and commenters (issue 8)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "social_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(40), nullable=False),
        sa.Column("handle", sa.String(160), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("director", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("moderators", sa.JSON, nullable=False),
        sa.Column("credentials_changed_at", TZ, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("policy", "key", name="uq_social_accounts_policy_key"),
    )
    op.create_table(
        "social_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("closed_by", sa.String(320), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_social_tasks_policy_status", "social_tasks", ["policy", "status"])
    op.create_table(
        "social_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("mod_action", sa.String(8), nullable=False),
        sa.Column("author_answer", sa.String(8), nullable=False),
        sa.Column("strike_scope", sa.String(200), nullable=False),
        sa.Column("review", sa.String(12), nullable=False),
        sa.Column("reviewed_by", sa.String(320), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.Column("revisions", sa.Integer, nullable=False),
        sa.UniqueConstraint("policy", "item_id", name="uq_social_items_policy_item"),
    )
    op.create_index("ix_social_items_account_at", "social_items", ["policy", "account", "at"])
    op.create_index("ix_social_items_review", "social_items", ["policy", "review"])
    op.create_table(
        "social_removals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("posted_at", TZ, nullable=False),
        sa.Column("removed_at", TZ, nullable=False),
        sa.Column("removed_by", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("quote", sa.Text, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("restored_at", TZ, nullable=True),
        sa.Column("restored_by", sa.String(320), nullable=True),
    )
    op.create_index("ix_social_removals_policy_account", "social_removals", ["policy", "account"])
    op.create_table(
        "social_commenters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("strikes", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("policy", "scope", "author", name="uq_social_commenters"),
    )
    op.create_table(
        "social_strikes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("event", sa.String(12), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("by", sa.String(320), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_index("ix_social_strikes_author", "social_strikes", ["policy", "scope", "author"])


def downgrade() -> None:
    op.drop_index("ix_social_strikes_author", "social_strikes")
    op.drop_table("social_strikes")
    op.drop_table("social_commenters")
    op.drop_index("ix_social_removals_policy_account", "social_removals")
    op.drop_table("social_removals")
    op.drop_index("ix_social_items_review", "social_items")
    op.drop_index("ix_social_items_account_at", "social_items")
    op.drop_table("social_items")
    op.drop_index("ix_social_tasks_policy_status", "social_tasks")
    op.drop_table("social_tasks")
    op.drop_table("social_accounts")
