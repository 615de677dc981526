"""An index on working_hours.clinician_id: every booking reads its clinician's hours again
under the write lock, and without an index both databases scan every clinician's hours.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_working_hours_clinician_id", "working_hours", ["clinician_id"])


def downgrade():
    op.drop_index("ix_working_hours_clinician_id", table_name="working_hours")
