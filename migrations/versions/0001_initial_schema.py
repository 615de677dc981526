"""Initial schema: the schedule, bookings, and the database guard against overlapping bookings.

Revision ID: 0001
Revises:


"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "clinician",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinician")),
    )
    op.create_table(
        "consultation_type",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("slot_interval_minutes", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "mode IN ('in_person', 'video')", name=op.f("ck_consultation_type_known_mode")
        ),
        sa.CheckConstraint(
            "duration_minutes > 0", name=op.f("ck_consultation_type_positive_duration")
        ),
        sa.CheckConstraint(
            "slot_interval_minutes > 0", name=op.f("ck_consultation_type_positive_interval")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_type")),
        sa.UniqueConstraint("slug", name=op.f("uq_consultation_type_slug")),
    )
    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("consultation_type_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_name", sa.String(length=120), nullable=False),
        sa.Column("patient_email", sa.String(length=254), nullable=False),
        sa.Column("patient_phone", sa.String(length=20), nullable=False),
        sa.Column("patient_birth_date", sa.Date(), nullable=False),
        sa.Column("patient_note", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('confirmed', 'cancelled')", name=op.f("ck_booking_known_status")
        ),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_booking_start_before_end")),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["clinician.id"], name=op.f("fk_booking_clinician_id_clinician")
        ),
        sa.ForeignKeyConstraint(
            ["consultation_type_id"],
            ["consultation_type.id"],
            name=op.f("fk_booking_consultation_type_id_consultation_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_booking_idempotency_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_booking_reference")),
        sa.UniqueConstraint("uid", name=op.f("uq_booking_uid")),
    )
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.create_index("ix_booking_starts_at", ["starts_at"], unique=False)
        batch_op.create_index(
            "uq_booking_active_clinician_start",
            ["clinician_id", "starts_at"],
            unique=True,
            sqlite_where=sa.text("status <> 'cancelled'"),
            postgresql_where=sa.text("status <> 'cancelled'"),
        )

    op.create_table(
        "closure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_closure_start_before_end")),
        sa.ForeignKeyConstraint(
            ["clinician_id"],
            ["clinician.id"],
            name=op.f("fk_closure_clinician_id_clinician"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closure")),
    )
    op.create_table(
        "working_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_working_hours_start_before_end")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_working_hours_weekday_range")),
        sa.ForeignKeyConstraint(
            ["clinician_id"],
            ["clinician.id"],
            name=op.f("fk_working_hours_clinician_id_clinician"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_working_hours")),
    )
    create_overlap_guard()


def downgrade():
    drop_overlap_guard()
    op.drop_table("working_hours")
    op.drop_table("closure")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_booking_active_clinician_start",
            sqlite_where=sa.text("status <> 'cancelled'"),
            postgresql_where=sa.text("status <> 'cancelled'"),
        )
        batch_op.drop_index("ix_booking_starts_at")

    op.drop_table("booking")
    op.drop_table("consultation_type")
    op.drop_table("clinician")


# The promise that no clinician is booked twice at overlapping times is kept by the database
# itself, whatever process or server writes: on PostgreSQL an exclusion constraint over the
# time range; on SQLite (one writer at a time) triggers that refuse an overlapping row.
ACTIVE = "status <> 'cancelled'"
OVERLAP_MESSAGE = "booking_overlap: the clinician is already booked at an overlapping time"
SQLITE_OVERLAP_CHECK = f"""
    NEW.{ACTIVE} AND EXISTS (
        SELECT 1 FROM booking AS other
        WHERE other.clinician_id = NEW.clinician_id
          AND other.{ACTIVE}
          AND other.id IS NOT NEW.id
          AND julianday(other.starts_at) < julianday(NEW.ends_at)
          AND julianday(NEW.starts_at) < julianday(other.ends_at)
    )
"""


def create_overlap_guard():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE booking ADD CONSTRAINT ex_booking_no_overlap EXCLUDE USING gist "
            "(clinician_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
            f"WHERE ({ACTIVE})"
        )
    elif dialect == "sqlite":
        for event in ("INSERT", "UPDATE OF clinician_id, starts_at, ends_at, status"):
            name = "booking_no_overlap_" + event.split()[0].lower()
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON booking "
                f"WHEN {SQLITE_OVERLAP_CHECK} "
                f"BEGIN SELECT RAISE(ABORT, '{OVERLAP_MESSAGE}'); END"
            )
    else:
        raise NotImplementedError(f"no overlap guard for {dialect}: use SQLite or PostgreSQL")


def drop_overlap_guard():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE booking DROP CONSTRAINT IF EXISTS ex_booking_no_overlap")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS booking_no_overlap_insert")
        op.execute("DROP TRIGGER IF EXISTS booking_no_overlap_update")
