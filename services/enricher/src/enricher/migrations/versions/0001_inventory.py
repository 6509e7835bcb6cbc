"""staging, asset inventory, dependencies, enrichment runs, offset store

Revision ID: 0001
"""

from alembic import op

from tributary_runtime.offsets import PLUMBING_DDL
from tributary_runtime.staging import STAGING_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(PLUMBING_DDL)
    op.execute(STAGING_DDL)
    op.execute(
        """
        CREATE TABLE assets (
            asset_id          uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            identity_key      text NOT NULL,
            name              text NOT NULL,
            hostname          text,
            fqdn              text,
            ip_address        text,
            mac_address       text,
            serial_number     text,
            external_id       text,
            asset_type        text,
            environment       text,
            criticality       text,
            operating_system  text,
            attributes        jsonb NOT NULL DEFAULT '{}',
            performance       jsonb NOT NULL DEFAULT '{}',
            classification    jsonb NOT NULL DEFAULT '{}',
            first_import_id   uuid NOT NULL,
            last_import_id    uuid NOT NULL,
            created_at        timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL,
            UNIQUE (client_account_id, engagement_id, identity_key)
        );

        CREATE TABLE asset_dependencies (
            dependency_id     uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            source_asset_id   uuid NOT NULL REFERENCES assets,
            target_asset_id   uuid NOT NULL REFERENCES assets,
            port              integer,
            protocol          text,
            dependency_type   text,
            criticality       text,
            confidence        numeric,
            first_import_id   uuid NOT NULL,
            last_import_id    uuid NOT NULL,
            created_at        timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL
        );
        CREATE UNIQUE INDEX asset_dependencies_edge ON asset_dependencies
            (client_account_id, engagement_id, source_asset_id, target_asset_id, (coalesce(port, 0)),
             (coalesce(protocol, '')));
        CREATE INDEX asset_dependencies_target ON asset_dependencies (target_asset_id);

        CREATE TABLE enrichment_runs (
            import_id         uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            category          text NOT NULL,
            counts            jsonb NOT NULL,
            applied_at        timestamptz NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE enrichment_runs; DROP TABLE asset_dependencies; DROP TABLE assets;")
