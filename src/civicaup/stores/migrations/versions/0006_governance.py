"""approvals, exemptions, inventory, acknowledgements, training, cases, API tokens (issue 7)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("requester", sa.String(320), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("approvers", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("valid_until", TZ, nullable=True),
        sa.Column("reminded_at", TZ, nullable=True),
    )
    op.create_index("ix_approval_requests_policy_status", "approval_requests", ["policy", "status"])
    op.create_index("ix_approval_requests_requester", "approval_requests", ["policy", "requester"])
    op.create_table(
        "approval_votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("approval_requests.id"), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("approver", sa.String(320), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint("request_id", "rule", "role", "verdict", name="uq_approval_votes_role"),
    )
    op.create_table(
        "inventory_machines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("machine", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("imported_at", TZ, nullable=False),
        sa.UniqueConstraint("policy", "machine", name="uq_inventory_machines"),
    )
    op.create_table(
        "inventory_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("machine_id", sa.Integer, sa.ForeignKey("inventory_machines.id"), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_table", sa.String(32), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("vendor", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approved_by", sa.String(300), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
    )
    op.create_index("ix_inventory_items_policy_status", "inventory_items", ["policy", "status"])
    op.create_table(
        "licences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("home_use", sa.Boolean, nullable=True),
        sa.Column("seats", sa.Integer, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("added_by", sa.String(320), nullable=False),
        sa.Column("added_at", TZ, nullable=False),
        sa.UniqueConstraint("policy", "kind", "name", name="uq_licences"),
    )
    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(320), nullable=False),
        sa.UniqueConstraint("policy", "email", "version", name="uq_acknowledgements"),
    )
    op.create_table(
        "training",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("course", sa.String(100), nullable=False),
        sa.Column("assigned_at", TZ, nullable=False),
        sa.Column("assigned_by", sa.String(320), nullable=False),
        sa.Column("due_at", TZ, nullable=True),
        sa.Column("completed_at", TZ, nullable=True),
        sa.UniqueConstraint("policy", "email", "course", name="uq_training"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("source_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reporter", sa.String(320), nullable=False),
        sa.Column("about", sa.String(320), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("routed_to", sa.JSON, nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("closed_by", sa.String(320), nullable=False),
        sa.UniqueConstraint("policy", "source_key", name="uq_cases_source_key"),
    )
    op.create_index("ix_cases_policy_status", "cases", ["policy", "status"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("last_used_at", TZ, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_cases_policy_status", "cases")
    op.drop_table("cases")
    op.drop_table("training")
    op.drop_table("acknowledgements")
    op.drop_table("licences")
    op.drop_index("ix_inventory_items_policy_status", "inventory_items")
    op.drop_table("inventory_items")
    op.drop_table("inventory_machines")
    op.drop_table("approval_votes")
    op.drop_index("ix_approval_requests_requester", "approval_requests")
    op.drop_index("ix_approval_requests_policy_status", "approval_requests")
    op.drop_table("approval_requests")
