"""sequenced dead letters: an import's later events parked behind its dead-lettered one until a retry

Revision ID: 0004
"""

from alembic import op

from tributary_runtime.sequencing import SEQUENCED_DEAD_LETTERS_DDL

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(SEQUENCED_DEAD_LETTERS_DDL)


def downgrade() -> None:
    op.execute("DROP TABLE dead_letter_sequences")
