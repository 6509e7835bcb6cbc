"""statistics_refreshes: where the changes-since-analyze counter stood at the enricher's last ANALYZE

Revision ID: 0007

The enricher analyzes some columns of the inventory tables around large imports
(planner_statistics). Such an ANALYZE leaves the server's changes-since-analyze counter as it
was, so the next large import found the tables stale and analyzed them again (1.4 s of a 6.5 s
10k-row import after large ones). Each ANALYZE notes here the counter as it stands for the rows
it saw, keyed by its time; the staleness check counts only the changes beyond it.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE statistics_refreshes (
            table_name text PRIMARY KEY,
            analyzed_at timestamptz NOT NULL,
            changes_counted bigint NOT NULL CHECK (changes_counted >= 0)
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE statistics_refreshes")
