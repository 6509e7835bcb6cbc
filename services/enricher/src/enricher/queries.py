"""Reads of the inventory (the enricher schema) for the query API; every statement filters by tenant.

Lists are paged (a count plus one page in a stable order); filters are bound parameters,
never text pasted into SQL. Value filters compare case-insensitively, because values a
vocabulary did not recognise are kept as given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from contracts import Tenant

from .reconciliation import provenance_by_attribute

ASSET_SUMMARY = ("asset_id", "name", "asset_type", "hostname", "fqdn", "ip_address", "environment", "criticality",
                 "operating_system", "is_placeholder", "compliance_flags", "updated_at")
ASSET_DETAIL = ("asset_id", "name", "asset_type", "hostname", "fqdn", "ip_address", "mac_address", "serial_number",
                "external_id", "source", "environment", "criticality", "operating_system", "attributes",
                "performance", "classification", "compliance_flags", "provenance", "is_placeholder",
                "created_by_import", "last_import_id", "created_at", "updated_at")
ASSET_ORDER = "lower(a.name), a.asset_id"
# The labels of an asset's classification: canonically the text "PII,PCI"; a JSON array is read as well.
CLASSIFICATION_LABELS = (
    "CASE jsonb_typeof(a.classification -> 'classification')"
    " WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(a.classification -> 'classification'))"
    " ELSE string_to_array(a.classification ->> 'classification', ',') END"
)

# One edge with both endpoints' names; ``d`` the edge, ``s``/``t`` its source/target assets.
DEPENDENCY_SELECT = (
    "SELECT d.dependency_id, d.source_asset_id, s.name AS source_name, d.target_asset_id, t.name AS target_name,"
    " d.port, d.protocol, d.dependency_type, d.criticality, d.confidence::float8 AS confidence, d.provenance,"
    " d.created_by_import, d.last_import_id, d.created_at, d.updated_at"
)
DEPENDENCY_FROM = (" FROM asset_dependencies d JOIN assets s ON s.asset_id = d.source_asset_id"
                   " JOIN assets t ON t.asset_id = d.target_asset_id")
DEPENDENCY_ORDER = "lower(s.name), lower(t.name), d.port NULLS FIRST, d.protocol NULLS FIRST, d.dependency_id"

PARKED = ("import_id", "row_number", "asserted_at", "source_ref", "target_ref", "source_type", "target_type", "port",
          "protocol", "missing", "claims")
CANDIDATE = ("import_id", "row_number", "category", "matched_on", "reason", "status", "identifiers", "claims")
CLAIM = ("import_id", "category", "source", "asserted_at", "row_number", "claims")


@dataclass
class Where:
    """A conjunction of SQL conditions and their positional parameters, built up one filter at a time.

    ``add("a.port = {p}", 443)`` binds 443 as the next ``$n`` and puts ``$n`` wherever ``{p}`` stands
    (a condition is a ``str.format`` template: literal braces are doubled).
    """

    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, condition: str, value: Any) -> None:
        self.args.append(value)
        self.conditions.append(condition.format(p=f"${len(self.args)}"))

    def add_if(self, condition: str, value: Any) -> None:
        """``add`` unless the filter was not given: None or a blank string (``?asset_type=`` from a form)."""
        if not is_blank(value):
            self.add(condition, value)

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "true"


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def tenant_where(tenant: Tenant, alias: str) -> Where:
    where = Where()
    where.add(f"{alias}.client_account_id = {{p}}", tenant.client_account_id)
    where.add(f"{alias}.engagement_id = {{p}}", tenant.engagement_id)
    return where


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def as_uuid(text: str) -> uuid.UUID | None:
    """``text`` as a UUID when it is one (an asset referred to by id rather than by name)."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def add_endpoint(where: Where, ref: str | None, id_column: str, name_column: str) -> None:
    """Filter one end of an edge by asset id or, when ``ref`` is not a UUID, by name (any case)."""
    if ref is None or not ref.strip():
        return
    asset_id = as_uuid(ref)
    if asset_id is not None:
        where.add(f"{id_column} = {{p}}", asset_id)
    else:
        where.add(f"lower({name_column}) = lower({{p}})", ref.strip())


def _page(limit: int, offset: int) -> str:
    return f" LIMIT {int(limit)} OFFSET {int(offset)}"


# -- assets ---------------------------------------------------------------------------------------


async def list_assets(conn: asyncpg.Connection, tenant: Tenant, *, asset_type: str | None = None,
                      environment: str | None = None, criticality: str | None = None,
                      classification: str | None = None, import_id: uuid.UUID | None = None,
                      placeholder: bool | None = None, q: str | None = None, limit: int = 50, offset: int = 0
                      ) -> tuple[int, list[dict[str, Any]]]:
    """A page of the tenant's assets by name. ``classification`` is one label of the asset's
    comma-separated classification list; ``import_id`` an import that made a claim about the asset;
    ``q`` a substring of name, hostname, fqdn or IP address."""
    where = tenant_where(tenant, "a")
    where.add_if("lower(a.asset_type) = lower({p})", asset_type)
    where.add_if("lower(a.environment) = lower({p})", environment)
    where.add_if("lower(a.criticality) = lower({p})", criticality)
    if not is_blank(classification):
        where.add(f"EXISTS (SELECT 1 FROM unnest({CLASSIFICATION_LABELS}) AS l"
                  f" WHERE lower(btrim(l)) = lower(btrim({{p}})))", classification)
    where.add_if("EXISTS (SELECT 1 FROM asset_claims c WHERE c.asset_id = a.asset_id AND c.import_id = {p})",
                 import_id)
    where.add_if("a.is_placeholder = {p}", placeholder)
    if q is not None and q.strip():
        where.add("(a.name ILIKE {p} OR a.hostname ILIKE {p} OR a.fqdn ILIKE {p} OR a.ip_address ILIKE {p})",
                  contains_pattern(q.strip()))
    total = await conn.fetchval(f"SELECT count(*) FROM assets a WHERE {where.sql}", *where.args)
    rows = await conn.fetch(
        f"SELECT {', '.join('a.' + c for c in ASSET_SUMMARY)} FROM assets a WHERE {where.sql}"
        f" ORDER BY {ASSET_ORDER}{_page(limit, offset)}", *where.args)
    return total, [dict(r) for r in rows]


async def get_asset(conn: asyncpg.Connection, tenant: Tenant, asset_id: uuid.UUID) -> dict[str, Any] | None:
    """One asset with its edges both ways and every import's claims about it; None when it is not the tenant's."""
    where = tenant_where(tenant, "a")
    where.add("a.asset_id = {p}", asset_id)
    columns = ", ".join(f"{provenance_by_attribute('a.provenance')} AS provenance" if c == "provenance" else f"a.{c}"
                        for c in ASSET_DETAIL)
    row = await conn.fetchrow(f"SELECT {columns} FROM assets a WHERE {where.sql}", *where.args)
    if row is None:
        return None
    outgoing = await _edges(conn, tenant, "d.source_asset_id", asset_id)
    incoming = await _edges(conn, tenant, "d.target_asset_id", asset_id)
    claims = await conn.fetch(
        f"SELECT {', '.join(CLAIM)} FROM asset_claims WHERE asset_id = $1 ORDER BY asserted_at, row_number, import_id",
        asset_id)
    return dict(row) | {"dependencies": {"outgoing": outgoing, "incoming": incoming},
                        "claims": [dict(c) for c in claims]}


async def _edges(conn: asyncpg.Connection, tenant: Tenant, end: str, asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's edges whose ``end`` column is ``asset_id``."""
    where = tenant_where(tenant, "d")
    where.add(f"{end} = {{p}}", asset_id)
    rows = await conn.fetch(f"{DEPENDENCY_SELECT}{DEPENDENCY_FROM} WHERE {where.sql} ORDER BY {DEPENDENCY_ORDER}",
                            *where.args)
    return [dict(r) for r in rows]


# -- dependencies -----------------------------------------------------------------------------------


async def list_dependencies(conn: asyncpg.Connection, tenant: Tenant, *, source: str | None = None,
                            target: str | None = None, protocol: str | None = None, port: int | None = None,
                            criticality: str | None = None, import_id: uuid.UUID | None = None, limit: int = 50,
                            offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """A page of the tenant's edges. ``source``/``target``: an asset id or an asset name (any case);
    ``import_id``: an import that claimed the edge."""
    where = tenant_where(tenant, "d")
    add_endpoint(where, source, "d.source_asset_id", "s.name")
    add_endpoint(where, target, "d.target_asset_id", "t.name")
    where.add_if("lower(d.protocol) = lower({p})", protocol)
    where.add_if("d.port = {p}", port)
    where.add_if("lower(d.criticality) = lower({p})", criticality)
    where.add_if("EXISTS (SELECT 1 FROM dependency_claims c WHERE c.dependency_id = d.dependency_id"
                 " AND c.import_id = {p})", import_id)
    total = await conn.fetchval(f"SELECT count(*){DEPENDENCY_FROM} WHERE {where.sql}", *where.args)
    rows = await conn.fetch(f"{DEPENDENCY_SELECT}{DEPENDENCY_FROM} WHERE {where.sql}"
                            f" ORDER BY {DEPENDENCY_ORDER}{_page(limit, offset)}", *where.args)
    return total, [dict(r) for r in rows]


async def list_parked(conn: asyncpg.Connection, tenant: Tenant, *, import_id: uuid.UUID | None = None,
                      limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Edges waiting for an endpoint the inventory does not have yet, by import and row."""
    where = tenant_where(tenant, "p")
    where.add_if("p.import_id = {p}", import_id)
    total = await conn.fetchval(f"SELECT count(*) FROM parked_dependencies p WHERE {where.sql}", *where.args)
    rows = await conn.fetch(
        f"SELECT {', '.join('p.' + c for c in PARKED)} FROM parked_dependencies p WHERE {where.sql}"
        f" ORDER BY p.asserted_at, p.import_id, p.row_number{_page(limit, offset)}", *where.args)
    return total, [dict(r) for r in rows]


# -- duplicate candidates ------------------------------------------------------------------------------

# The assets a candidate row matched, in the order recorded; name null for an asset since removed.
MATCHED_ASSETS = (
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('asset_id', m.asset_id, 'name', a.name) ORDER BY m.ord),"
    " '[]'::jsonb) FROM unnest(c.asset_ids) WITH ORDINALITY AS m(asset_id, ord)"
    " LEFT JOIN assets a ON a.asset_id = m.asset_id AND a.client_account_id = c.client_account_id"
    " AND a.engagement_id = c.engagement_id) AS matched_assets"
)


async def list_duplicate_candidates(conn: asyncpg.Connection, tenant: Tenant, *, import_id: uuid.UUID | None = None,
                                    status: str | None = None, limit: int = 50, offset: int = 0
                                    ) -> tuple[int, list[dict[str, Any]]]:
    """Rows not merged because they matched several assets (or contradicted one), with those assets."""
    where = tenant_where(tenant, "c")
    where.add_if("c.import_id = {p}", import_id)
    where.add_if("c.status = lower({p})", status)
    total = await conn.fetchval(f"SELECT count(*) FROM duplicate_candidates c WHERE {where.sql}", *where.args)
    rows = await conn.fetch(
        f"SELECT {', '.join('c.' + col for col in CANDIDATE)}, {MATCHED_ASSETS} FROM duplicate_candidates c"
        f" WHERE {where.sql} ORDER BY c.import_id, c.row_number{_page(limit, offset)}", *where.args)
    return total, [dict(r) for r in rows]
