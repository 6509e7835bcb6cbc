"""asset_identifiers keyed by tenant number: a new tenant's identifiers go to the key's end

Revision ID: 0012

Tenants are numbered in the order they are first applied to (``tenants``, ``enricher.tenants``),
and the identifiers' primary key leads with that number instead of the tenant's two ids: a new
tenant's first import appends its identifiers at the right end of the index, where pages are
split to stay nine tenths full, instead of somewhere in its middle, where each split leaves two
pages half empty (docs/performance.md, sixteenth pass). The tenants found here are numbered in
the order of their first asset. The identifiers keep the tenant's ids as columns. The downgrade
keys them by those again.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE tenants (
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            tenant_no         integer GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (client_account_id, engagement_id),
            UNIQUE (tenant_no)
        );
        INSERT INTO tenants (client_account_id, engagement_id)
        SELECT client_account_id, engagement_id FROM (
            SELECT client_account_id, engagement_id, min(created_at) AS since FROM assets GROUP BY 1, 2
            UNION ALL
            SELECT DISTINCT client_account_id, engagement_id, NULL::timestamptz FROM asset_identifiers) t
        GROUP BY 1, 2 ORDER BY min(since) NULLS LAST, 1, 2;
        ALTER TABLE asset_identifiers ADD COLUMN tenant_no integer;
        UPDATE asset_identifiers ai SET tenant_no = tn.tenant_no FROM tenants tn
        WHERE tn.client_account_id = ai.client_account_id AND tn.engagement_id = ai.engagement_id;
        ALTER TABLE asset_identifiers ALTER COLUMN tenant_no SET NOT NULL,
            DROP CONSTRAINT asset_identifiers_pkey,
            ADD PRIMARY KEY (tenant_no, kind, value, asset_id);
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE asset_identifiers DROP CONSTRAINT asset_identifiers_pkey,
            ADD PRIMARY KEY (client_account_id, engagement_id, kind, value, asset_id);
        ALTER TABLE asset_identifiers DROP COLUMN tenant_no;
        DROP TABLE tenants;
    """)
