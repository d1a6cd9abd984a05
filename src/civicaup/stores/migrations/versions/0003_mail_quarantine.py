"""held messages and their approvals (issue 5)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("sender_department", sa.String(200), nullable=False),
        sa.Column("mail_from", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("message_id", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("approvers", sa.JSON, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("next_hop", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mail_quarantine_policy_status", "mail_quarantine", ["policy", "status"])
    op.create_table(
        "mail_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quarantine_id", sa.Integer, sa.ForeignKey("mail_quarantine.id"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(320), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("clause", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("quarantine_id", "rule", "role", "verdict", name="uq_mail_approvals_role"),
    )


def downgrade() -> None:
    op.drop_table("mail_approvals")
    op.drop_index("ix_mail_quarantine_policy_status", "mail_quarantine")
    op.drop_table("mail_quarantine")
