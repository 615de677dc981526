"""The email outbox and patients' manage links.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KINDS = "'confirmation', 'invite', 'update', 'cancellation', 'reminder'"
ROLES = "'patient', 'clinician', 'clinic'"
STATUSES = "'pending', 'sent', 'failed', 'skipped'"


def upgrade():
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("recipient_role", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("previous_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=100), nullable=True),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_outbox_message_known_kind")),
        sa.CheckConstraint(
            f"recipient_role IN ({ROLES})", name=op.f("ck_outbox_message_known_role")
        ),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_outbox_message_known_status")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_outbox_message_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["clinician_id"],
            ["clinician.id"],
            name=op.f("fk_outbox_message_clinician_id_clinician"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_message_dedupe_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_message_due", ["status", "next_attempt_at"])
        batch_op.create_index("ix_outbox_message_booking_id", ["booking_id"])
    op.create_table(
        "manage_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_manage_link_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manage_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_manage_link_token_hash")),
    )
    with op.batch_alter_table("manage_link", schema=None) as batch_op:
        batch_op.create_index("ix_manage_link_booking_id", ["booking_id"])


def downgrade():
    with op.batch_alter_table("manage_link", schema=None) as batch_op:
        batch_op.drop_index("ix_manage_link_booking_id")
    op.drop_table("manage_link")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_booking_id")
        batch_op.drop_index("ix_outbox_message_due")
    op.drop_table("outbox_message")
