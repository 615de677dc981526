"""The database guard covers buffers: each booking stores its buffered span, and no two active
bookings of one clinician may have overlapping buffered spans.

The buffered span contains the appointment (a CHECK says so), so refusing overlapping buffered
spans also refuses overlapping appointments: the new guard replaces the plain one of 0001
under the same names, and a downgrade puts the plain one back.

Revision ID: 0006
Revises: 0005
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTIVE = "status <> 'cancelled'"
OVERLAP_MESSAGE = "booking_overlap: the clinician is already booked at an overlapping time"
SQLITE_TRIGGERS = ("booking_no_overlap_insert", "booking_no_overlap_update")
SQLITE_EVENTS = ("INSERT", "UPDATE OF clinician_id, starts_at, ends_at, status")


def _sqlite_check(start: str, end: str) -> str:
    return f"""
    NEW.{ACTIVE} AND EXISTS (
        SELECT 1 FROM booking AS other
        WHERE other.clinician_id = NEW.clinician_id
          AND other.{ACTIVE}
          AND other.id IS NOT NEW.id
          AND julianday(other.{start}) < julianday(NEW.{end})
          AND julianday(NEW.{start}) < julianday(other.{end})
    )
"""


def _create_guard(start: str, end: str, events: tuple[str, ...]) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "ALTER TABLE booking ADD CONSTRAINT ex_booking_no_overlap EXCLUDE USING gist "
            f"(clinician_id WITH =, tstzrange({start}, {end}, '[)') WITH &&) WHERE ({ACTIVE})"
        )
    elif dialect == "sqlite":
        for name, event in zip(SQLITE_TRIGGERS, events, strict=True):
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON booking "
                f"WHEN {_sqlite_check(start, end)} "
                f"BEGIN SELECT RAISE(ABORT, '{OVERLAP_MESSAGE}'); END"
            )
    else:
        raise NotImplementedError(f"no overlap guard for {dialect}: use SQLite or PostgreSQL")


def _drop_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE booking DROP CONSTRAINT IF EXISTS ex_booking_no_overlap")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    _drop_guard()  # batch mode copies the table on SQLite; triggers would not survive it
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blocked_starts_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("blocked_ends_at", sa.DateTime(timezone=True)))
    # Backfill: each existing booking holds its own type's buffers either side.
    booking = sa.table(
        "booking",
        sa.column("id", sa.Integer()),
        sa.column("consultation_type_id", sa.Integer()),
        sa.column("starts_at", sa.DateTime(timezone=True)),
        sa.column("ends_at", sa.DateTime(timezone=True)),
        sa.column("blocked_starts_at", sa.DateTime(timezone=True)),
        sa.column("blocked_ends_at", sa.DateTime(timezone=True)),
    )
    consultation_type = sa.table(
        "consultation_type",
        sa.column("id", sa.Integer()),
        sa.column("buffer_before_minutes", sa.Integer()),
        sa.column("buffer_after_minutes", sa.Integer()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            booking.c.id,
            booking.c.starts_at,
            booking.c.ends_at,
            consultation_type.c.buffer_before_minutes,
            consultation_type.c.buffer_after_minutes,
        ).join(consultation_type, booking.c.consultation_type_id == consultation_type.c.id)
    ).all()
    for booking_id, starts_at, ends_at, before, after in rows:
        bind.execute(
            booking.update()
            .where(booking.c.id == booking_id)
            .values(
                blocked_starts_at=starts_at - _minutes(before),
                blocked_ends_at=ends_at + _minutes(after),
            )
        )
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.alter_column(
            "blocked_starts_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            "blocked_ends_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_check_constraint(
            op.f("ck_booking_buffered_span_holds_appointment"),
            sa.text("blocked_starts_at <= starts_at AND ends_at <= blocked_ends_at"),
        )
    _create_guard(
        "blocked_starts_at",
        "blocked_ends_at",
        (
            "INSERT",
            "UPDATE OF clinician_id, starts_at, ends_at, blocked_starts_at, blocked_ends_at, "
            "status",
        ),
    )


def downgrade():
    _drop_guard()
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_booking_buffered_span_holds_appointment"), type_="check")
        batch_op.drop_column("blocked_ends_at")
        batch_op.drop_column("blocked_starts_at")
    _create_guard("starts_at", "ends_at", SQLITE_EVENTS)


def _minutes(count: int | None) -> timedelta:
    return timedelta(minutes=count or 0)
