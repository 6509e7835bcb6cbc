"""asset_identifiers without its index by asset id: what an asset holds is derived from its values

Revision ID: 0008

Every identifier row is what ``reconciliation.derived_identifiers`` gives for its asset (its
current values and the source keys of its claims), so the enricher finds an asset's identifiers
by deriving them and looking them up by primary key. The index by asset id cost a third of
creating a 1M-row import's assets: its entries land at random, and past the server's shared
buffers each one reads and writes a page (docs/performance.md, eighth pass).

The table is derived again here, so that rows an earlier version wrote differently cannot
outlive their assets' changes now that nothing finds them by asset id.
"""

from alembic import op

from enricher.reconciliation import derived_identifiers

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS asset_identifiers_asset")
    op.execute(f"CREATE TEMP TABLE derived_identifiers AS SELECT DISTINCT * FROM ({derived_identifiers('true')}) d")
    op.execute("TRUNCATE asset_identifiers")
    op.execute("INSERT INTO asset_identifiers (client_account_id, engagement_id, kind, value, asset_id)"
               " SELECT * FROM derived_identifiers ORDER BY 1, 2, 3, 4, 5")
    op.execute("DROP TABLE derived_identifiers")


def downgrade() -> None:
    op.execute("CREATE INDEX asset_identifiers_asset ON asset_identifiers (asset_id)")
