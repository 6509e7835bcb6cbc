"""staged rows retention: when a finished import's staged rows were deleted

Revision ID: 0013

The enricher deletes the staged rows of imports applied (or reverted) longer ago than
``staged_rows_retention_days`` (tributary_runtime.retention).
"""

from alembic import op

from tributary_runtime.retention import RETENTION_DDL, RETENTION_DOWNGRADE

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(RETENTION_DDL)


def downgrade() -> None:
    op.execute(RETENTION_DOWNGRADE)
