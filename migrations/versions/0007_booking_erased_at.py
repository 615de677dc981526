"""When a booking's patient details were erased (retention purge or a patient's request).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # Adding a nullable column is done in place on SQLite too (no table copy).
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Not batch mode: a copied booking table would lose 0001's SQLite overlap triggers.
    # SQLite 3.35+ drops a column in place, as PostgreSQL does.
    op.drop_column("booking", "erased_at")
