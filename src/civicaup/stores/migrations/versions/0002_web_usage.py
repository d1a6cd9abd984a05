"""web usage from Squid's access.log (issue 9)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_usage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("line_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("elapsed_ms", sa.Integer, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("login", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("categories", sa.String(500), nullable=False),
        sa.Column("work_time", sa.Boolean, nullable=False),
        sa.UniqueConstraint("policy", "line_hash", name="uq_web_usage_line"),
    )
    op.create_index("ix_web_usage_policy_at", "web_usage", ["policy", "at"])
    op.create_index("ix_web_usage_policy_email", "web_usage", ["policy", "email"])


def downgrade() -> None:
    op.drop_index("ix_web_usage_policy_email", "web_usage")
    op.drop_index("ix_web_usage_policy_at", "web_usage")
    op.drop_table("web_usage")
