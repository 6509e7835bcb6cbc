"""staged rows retention: when a finished import's staged rows were deleted

Revision ID: 0006

The validator deletes the staged rows of imports validated longer ago than
``staged_rows_retention_days``, all but the rows with errors (tributary_runtime.retention).
"""

from alembic import op

from tributary_runtime.retention import RETENTION_DDL, RETENTION_DOWNGRADE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(RETENTION_DDL)


def downgrade() -> None:
    op.execute(RETENTION_DOWNGRADE)
