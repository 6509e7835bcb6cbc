"""identification, per-import claims with provenance, parked edges, duplicate candidates, reverts

The inventory is re-derived from claims (what each import asserted about each asset
and dependency), so the tables of 0001 are replaced: there was no way to know who set
what in them. Replaying the topics (or re-importing) rebuilds the inventory.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DROP TABLE asset_dependencies;
        DROP TABLE assets;

        CREATE TABLE assets (
            asset_id          uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            name              text NOT NULL,
            asset_type        text,
            hostname          text,
            fqdn              text,
            ip_address        text,
            mac_address       text,
            serial_number     text,
            external_id       text,
            source            text,
            environment       text,
            criticality       text,
            operating_system  text,
            attributes        jsonb  NOT NULL DEFAULT '{}',
            performance       jsonb  NOT NULL DEFAULT '{}',
            classification    jsonb  NOT NULL DEFAULT '{}',
            compliance_flags  text[] NOT NULL DEFAULT '{}',
            provenance        jsonb  NOT NULL DEFAULT '{}',
            is_placeholder    boolean NOT NULL DEFAULT false,
            created_by_import uuid NOT NULL,
            last_import_id    uuid NOT NULL,
            created_at        timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL
        );
        CREATE INDEX assets_tenant ON assets (client_account_id, engagement_id, asset_type);

        -- What one import asserted about one asset: the source of every current value.
        CREATE TABLE asset_claims (
            asset_id    uuid NOT NULL REFERENCES assets ON DELETE CASCADE,
            import_id   uuid NOT NULL,
            category    text NOT NULL,
            source      text NOT NULL,
            asserted_at timestamptz NOT NULL,
            row_number  integer,
            claims      jsonb NOT NULL,
            PRIMARY KEY (asset_id, import_id)
        );
        CREATE INDEX asset_claims_import ON asset_claims (import_id);

        -- Identifiers derived from current values (and every source's external id).
        CREATE TABLE asset_identifiers (
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            kind              text NOT NULL,
            value             text NOT NULL,
            asset_id          uuid NOT NULL REFERENCES assets ON DELETE CASCADE,
            PRIMARY KEY (client_account_id, engagement_id, kind, value, asset_id)
        );
        CREATE INDEX asset_identifiers_asset ON asset_identifiers (asset_id);

        CREATE TABLE asset_dependencies (
            dependency_id     uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            source_asset_id   uuid NOT NULL REFERENCES assets ON DELETE CASCADE,
            target_asset_id   uuid NOT NULL REFERENCES assets ON DELETE CASCADE,
            port              integer,
            protocol          text,
            dependency_type   text,
            criticality       text,
            confidence        numeric,
            provenance        jsonb NOT NULL DEFAULT '{}',
            created_by_import uuid NOT NULL,
            last_import_id    uuid NOT NULL,
            created_at        timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL
        );
        CREATE UNIQUE INDEX asset_dependencies_edge ON asset_dependencies
            (client_account_id, engagement_id, source_asset_id, target_asset_id, (coalesce(port, 0)),
             (coalesce(protocol, '')));
        CREATE INDEX asset_dependencies_target ON asset_dependencies (target_asset_id);

        CREATE TABLE dependency_claims (
            dependency_id uuid NOT NULL REFERENCES asset_dependencies ON DELETE CASCADE,
            import_id     uuid NOT NULL,
            asserted_at   timestamptz NOT NULL,
            row_number    integer NOT NULL,
            source_ref    text NOT NULL,
            target_ref    text NOT NULL,
            source_type   text,
            target_type   text,
            claims        jsonb NOT NULL,
            PRIMARY KEY (dependency_id, import_id)
        );
        CREATE INDEX dependency_claims_import ON dependency_claims (import_id);

        -- Edges with an endpoint not (yet) in the inventory; resolved when an import brings it.
        CREATE TABLE parked_dependencies (
            import_id         uuid    NOT NULL,
            row_number        integer NOT NULL,
            client_account_id uuid    NOT NULL,
            engagement_id     uuid    NOT NULL,
            asserted_at       timestamptz NOT NULL,
            source_ref        text NOT NULL,
            target_ref        text NOT NULL,
            source_type       text,
            target_type       text,
            port              integer,
            protocol          text,
            claims            jsonb NOT NULL,
            missing           text NOT NULL,
            PRIMARY KEY (import_id, row_number)
        );
        CREATE INDEX parked_dependencies_tenant ON parked_dependencies (client_account_id, engagement_id);

        -- Rows that matched more than one asset (or contradicted a stronger identifier): not merged.
        CREATE TABLE duplicate_candidates (
            import_id         uuid    NOT NULL,
            row_number        integer NOT NULL,
            client_account_id uuid    NOT NULL,
            engagement_id     uuid    NOT NULL,
            category          text    NOT NULL,
            matched_on        text    NOT NULL,
            reason            text    NOT NULL,
            asset_ids         uuid[]  NOT NULL,
            identifiers       jsonb   NOT NULL,
            claims            jsonb   NOT NULL,
            status            text    NOT NULL DEFAULT 'open',
            PRIMARY KEY (import_id, row_number)
        );
        CREATE INDEX duplicate_candidates_tenant ON duplicate_candidates (client_account_id, engagement_id);

        CREATE TABLE inventory_policies (
            client_account_id   uuid NOT NULL,
            engagement_id       uuid NOT NULL,
            source_priorities   jsonb   NOT NULL DEFAULT '{}',
            stale_after_days    integer CHECK (stale_after_days > 0),
            empty_overwrites    boolean NOT NULL DEFAULT false,
            create_placeholders boolean NOT NULL DEFAULT false,
            updated_at          timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (client_account_id, engagement_id)
        );

        CREATE TABLE import_reverts (
            import_id         uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            requested_at      timestamptz NOT NULL,
            counts            jsonb NOT NULL
        );
        ALTER TABLE enrichment_runs ADD COLUMN source text;
        """
    )


def downgrade() -> None:
    raise NotImplementedError("0002 replaced the inventory tables; restore from the event log instead")
