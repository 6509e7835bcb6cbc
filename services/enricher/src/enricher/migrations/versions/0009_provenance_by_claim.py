"""assets.provenance by claim: one element per winning claim, naming the attributes it wins

Revision ID: 0009

Keyed by attribute, the provenance repeated its claim's entry (import, source, time) for every
attribute: 1.3 kB of a CMDB asset's 1.6 kB row, which made a 1M-row import's assets 1.5 GB to
write through the server's shared buffers. Grouped by claim it is a fifth of that
(docs/performance.md, eleventh pass). The API still shows it by attribute.
"""

from alembic import op

from enricher.reconciliation import claim_provenance, provenance_by_attribute

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The stored object's entries, grouped by claim and ordered as deciding orders them.
_BY_CLAIM = f"""
UPDATE assets a SET provenance = coalesce((
    SELECT jsonb_agg({claim_provenance("g.entry", "g.won")}
                     ORDER BY (g.entry ->> 'set_at')::timestamptz, (g.entry ->> 'import_id')::uuid)
    FROM (SELECT p.value AS entry, jsonb_object_agg(p.key, true) AS won
          FROM jsonb_each(a.provenance) AS p GROUP BY p.value) g), '[]'::jsonb)
WHERE jsonb_typeof(a.provenance) = 'object'
"""


def upgrade() -> None:
    op.execute("ALTER TABLE assets ALTER COLUMN provenance SET DEFAULT '[]'::jsonb")
    op.execute(_BY_CLAIM)


def downgrade() -> None:
    op.execute("ALTER TABLE assets ALTER COLUMN provenance SET DEFAULT '{}'::jsonb")
    op.execute(f"UPDATE assets a SET provenance = {provenance_by_attribute('a.provenance')}"
               " WHERE jsonb_typeof(a.provenance) = 'array'")
