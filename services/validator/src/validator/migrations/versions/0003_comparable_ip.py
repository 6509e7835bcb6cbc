"""comparable_ip(): one text form per IP address, for duplicate detection over raw cells

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A cell that is not an address (it has an error finding already) compares as written.
    op.execute(
        """
        CREATE FUNCTION comparable_ip(value text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            RETURN host(btrim(value)::inet);
        EXCEPTION WHEN others THEN
            RETURN lower(btrim(value));
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION comparable_ip(text)")
