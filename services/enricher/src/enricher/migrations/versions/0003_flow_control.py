"""flow control: pauses per import (held staged sets) and the attempt of a retried enrichment

Revision ID: 0003
"""

from alembic import op

from tributary_runtime.staging import FLOW_CONTROL_DDL

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FLOW_CONTROL_DDL)


def downgrade() -> None:
    op.execute("DROP TABLE flow_control; ALTER TABLE staged_imports DROP COLUMN attempt")
