"""asset_identifiers: a name that is one of its asset's FQDN, host or address identifiers goes

Revision ID: 0011

An asset named after its host name (as most are: the name falls back to it) held that value
twice, once as its FQDN or host identifier and once as its name: a fifth of a 1M-row import's
identifiers (docs/performance.md, eleventh pass). Identification now looks a name up under those
kinds too, for the asset that bears it (``identification.identifier_matches``), and
``reconciliation.IDENTIFIER_VALUES`` leaves such a name out; here the ones stored before go.
The downgrade indexes every asset's name again.
"""

from alembic import op

from enricher.reconciliation import derived_identifiers

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(f"""
        DELETE FROM asset_identifiers ai USING assets t
        WHERE ai.kind = 'name' AND ai.asset_id = t.asset_id
          AND NOT EXISTS (SELECT 1 FROM ({derived_identifiers('a.asset_id = t.asset_id')}) d
                          WHERE d.kind = 'name' AND d.value = ai.value)""")


def downgrade() -> None:
    op.execute("""
        INSERT INTO asset_identifiers (client_account_id, engagement_id, kind, value, asset_id)
        SELECT client_account_id, engagement_id, 'name', lower(name), asset_id FROM assets
        ON CONFLICT DO NOTHING""")
