"""Staff calendar feeds: hashed, revocable feed tokens, and an index for the feed validator.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "feed_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinician_id"],
            ["clinician.id"],
            name=op.f("fk_feed_token_clinician_id_clinician"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feed_token_token_hash")),
    )
    op.create_index("ix_feed_token_clinician_id", "feed_token", ["clinician_id"])
    # Plain CREATE INDEX, not batch mode: rebuilding `booking` on SQLite would drop the
    # triggers that guard against overlapping bookings.
    op.create_index("ix_booking_updated_at", "booking", ["updated_at"])


def downgrade():
    op.drop_index("ix_booking_updated_at", table_name="booking")
    op.drop_index("ix_feed_token_clinician_id", table_name="feed_token")
    op.drop_table("feed_token")
