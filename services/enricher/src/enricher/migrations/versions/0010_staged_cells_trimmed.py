"""Staged cells trimmed: the rows staged before the enricher trimmed them as it stages them

Revision ID: 0010

The enricher now stages each validated cell without the spaces at its ends, a blank one as
NULL (``inventory.TRIM_CELLS``), and its statements read the cells as they are: cleaning them in
the apply, a subquery per row, was half of filling ``incoming`` (docs/performance.md, eleventh
pass). Rows staged earlier (an import waiting for its marker, or for a retry) are cleaned here
the same way. The downgrade leaves them: the earlier statements trim what they read.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE staged_rows SET cells = ARRAY(SELECT NULLIF(btrim(u.v), '')
                                             FROM unnest(cells) WITH ORDINALITY AS u(v, n) ORDER BY u.n)
        WHERE EXISTS (SELECT 1 FROM unnest(cells) AS u(v) WHERE u.v = '' OR u.v LIKE ' %' OR u.v LIKE '% ')""")


def downgrade() -> None:
    pass
