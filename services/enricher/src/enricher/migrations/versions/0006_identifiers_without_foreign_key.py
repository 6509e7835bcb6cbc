"""asset_identifiers without its foreign key: a derived index the enricher keeps in step itself

Revision ID: 0006

Every identifier row is derived from an asset's current values in the transaction that
decides them (reconciliation), and a revert deletes the identifiers of the assets it removes.
The foreign key's per-row check cost more than half of writing the identifiers: a 100,000-row
CMDB import inserts about 500,000 of them, 10.5 s with the check and 4.4 s without
(docs/performance.md). A rebuild's verification compares the table with one rebuilt from the
events, so an identifier left behind would show.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE asset_identifiers DROP CONSTRAINT IF EXISTS asset_identifiers_asset_id_fkey")


def downgrade() -> None:
    op.execute("DELETE FROM asset_identifiers i WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.asset_id = i.asset_id)")
    op.execute("ALTER TABLE asset_identifiers ADD CONSTRAINT asset_identifiers_asset_id_fkey FOREIGN KEY (asset_id)"
               " REFERENCES assets ON DELETE CASCADE")
