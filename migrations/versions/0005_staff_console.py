"""Staff console: accounts, sessions, recovery codes, sign-in failures, notes, the audit trail,
and the booking statuses attended and no_show.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('confirmed', 'cancelled')"
NEW_STATUSES = "status IN ('confirmed', 'cancelled', 'attended', 'no_show')"
APPEND_ONLY_MESSAGE = "audit_event is append-only"


def _utc(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    # First, while no table of this migration points at booking yet (SQLite rebuilds it).
    _replace_status_check(NEW_STATUSES)
    op.create_table(
        "staff_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        _utc("mfa_enrolled_at", nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        _utc("locked_at", nullable=True),
        _utc("created_at"),
        _utc("password_changed_at"),
        sa.CheckConstraint(
            "role IN ('admin', 'clinician', 'frontdesk')", name=op.f("ck_staff_account_known_role")
        ),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["clinician.id"], name=op.f("fk_staff_account_clinician_id_clinician")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_account")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_account_email")),
    )
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("mfa_passed", sa.Boolean(), nullable=False),
        sa.Column("mfa_failures", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("last_seen_at"),
        _utc("ended_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["staff_account.id"],
            name=op.f("fk_staff_session_account_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_session_token_hash")),
    )
    op.create_index("ix_staff_session_account_id", "staff_session", ["account_id"])
    op.create_table(
        "staff_recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        _utc("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["staff_account.id"],
            name=op.f("fk_staff_recovery_code_account_id_staff_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_code")),
    )
    op.create_index("ix_staff_recovery_code_account_id", "staff_recovery_code", ["account_id"])
    op.create_table(
        "staff_login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        _utc("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_login_failure")),
    )
    op.create_index("ix_staff_login_failure_key_at", "staff_login_failure", ["key", "at"])
    op.create_table(
        "staff_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff_account.id"], name=op.f("fk_staff_note_author_id_staff_account")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_staff_note_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_note")),
    )
    op.create_index("ix_staff_note_booking_id", "staff_note", ["booking_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("at"),
        sa.Column("actor_account_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_account_id"],
            ["staff_account.id"],
            name=op.f("fk_audit_event_actor_account_id_staff_account"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_audit_event_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_booking_id", "audit_event", ["booking_id"])
    _create_append_only_guard()


def downgrade():
    # Attendance marks have no place in the old schema: they go back to "confirmed".
    _drop_append_only_guard()
    op.drop_table("audit_event")
    op.drop_table("staff_note")
    op.drop_table("staff_login_failure")
    op.drop_table("staff_recovery_code")
    op.drop_table("staff_session")
    op.drop_table("staff_account")
    op.execute("UPDATE booking SET status = 'confirmed' WHERE status IN ('attended', 'no_show')")
    _replace_status_check(OLD_STATUSES)


def _create_append_only_guard():
    """The database itself refuses to change or remove an audit row, whoever asks."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change()"
        )
    elif dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{event.lower()} BEFORE {event} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    else:
        raise NotImplementedError(f"no append-only guard for {dialect}")


def _drop_append_only_guard():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_refuse_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")


def _replace_status_check(status_sql):
    """Swap the booking status CHECK. SQLite rebuilds the table for it (batch mode), so first
    the rows of tables that point at booking are set aside (dropping a referenced parent row
    would break their foreign keys) and the overlap triggers saved; both are put back after."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        with op.batch_alter_table("booking") as batch_op:
            batch_op.drop_constraint(op.f("ck_booking_known_status"), type_="check")
            batch_op.create_check_constraint(op.f("ck_booking_known_status"), sa.text(status_sql))
        return
    triggers = [
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'booking'"
        )
    ]
    tables = [
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    children = [
        table
        for table in tables
        if any(
            fk[2] == "booking" for fk in bind.exec_driver_sql(f"PRAGMA foreign_key_list('{table}')")
        )
    ]
    for child in children:
        op.execute(f'CREATE TEMP TABLE "_keep_{child}" AS SELECT * FROM "{child}"')
        op.execute(f'DELETE FROM "{child}"')
    with op.batch_alter_table("booking", recreate="always") as batch_op:
        batch_op.drop_constraint(op.f("ck_booking_known_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_booking_known_status"), sa.text(status_sql))
    remaining = {
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'booking'"
        )
    }
    for sql in triggers:
        if sql.split()[2] not in remaining:  # "CREATE TRIGGER <name> ..."
            op.execute(sql)
    for child in children:
        op.execute(f'INSERT INTO "{child}" SELECT * FROM "_keep_{child}"')
        op.execute(f'DROP TABLE "_keep_{child}"')
