"""master and child flows, timeline, offset store

Revision ID: 0001
"""

from alembic import op

from tributary_runtime.offsets import PLUMBING_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(PLUMBING_DDL)
    op.execute(
        """
        CREATE TABLE master_flows (
            flow_id             uuid PRIMARY KEY,
            client_account_id   uuid NOT NULL,
            engagement_id       uuid NOT NULL,
            user_id             text NOT NULL,
            flow_type           text NOT NULL DEFAULT 'data_import',
            flow_name           text NOT NULL,
            status              text NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'failed')),
            current_phase       text NOT NULL,
            progress_percentage double precision NOT NULL DEFAULT 0,
            configuration       jsonb NOT NULL DEFAULT '{}',
            import_category     text,
            created_at          timestamptz NOT NULL,
            updated_at          timestamptz NOT NULL,
            completed_at        timestamptz,
            version             integer NOT NULL
        );
        CREATE INDEX master_flows_tenant ON master_flows (client_account_id, engagement_id, created_at DESC);

        CREATE TABLE child_flows (
            id                         uuid PRIMARY KEY,
            flow_id                    uuid NOT NULL UNIQUE,
            master_flow_id             uuid NOT NULL REFERENCES master_flows (flow_id),
            client_account_id          uuid NOT NULL,
            engagement_id              uuid NOT NULL,
            user_id                    text NOT NULL,
            flow_name                  text NOT NULL,
            status                     text NOT NULL,
            current_phase              text,
            progress_percentage        double precision NOT NULL DEFAULT 0,
            phase_state                jsonb NOT NULL DEFAULT '{}',
            agent_state                jsonb NOT NULL DEFAULT '{}',
            data_import_id             uuid,
            import_category            text,
            data_import_completed      boolean NOT NULL DEFAULT false,
            data_validation_completed  boolean NOT NULL DEFAULT false,
            field_mapping_completed    boolean NOT NULL DEFAULT false,
            asset_enrichment_completed boolean NOT NULL DEFAULT false,
            error_message              text,
            created_at                 timestamptz NOT NULL,
            updated_at                 timestamptz NOT NULL,
            completed_at               timestamptz
        );
        CREATE UNIQUE INDEX child_flows_import ON child_flows (data_import_id);

        CREATE TABLE flow_timeline (
            flow_id     uuid    NOT NULL,
            seq         integer NOT NULL,
            event_id    uuid    NOT NULL,
            event_type  text    NOT NULL,
            phase       text    NOT NULL,
            producer    text    NOT NULL,
            occurred_at timestamptz NOT NULL,
            detail      jsonb   NOT NULL DEFAULT '{}',
            PRIMARY KEY (flow_id, seq)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE flow_timeline; DROP TABLE child_flows; DROP TABLE master_flows;")
