"""Reconciliation: an asset's current values are decided, attribute by attribute, from its claims.

Every import that says something about an asset leaves one claim (its values, source and
time). The current value of an attribute is the claim that wins:
1. a claim that has gone stale (older than the newest claim on that attribute by more than
   the tenant's ``stale_after_days``) loses to any fresh one;
2. then the higher source priority wins;
3. then the newer claim (event time, then import id, so the order is total).
An asset is a placeholder while no CMDB or application-discovery claim names it.
Because current values are a function of the claims, reverting an import is deleting its
claims and deciding again: what it overwrote comes back by itself. Each attribute's
provenance (import, source, time of the winning claim) is kept next to the values, grouped by
claim: ``assets.provenance`` is a JSON array with one entry per winning claim, ``{import_id,
source, set_at, attributes: [the attributes it wins]}``, oldest claim first. Keyed by attribute
instead, the same entry written once per attribute made it four fifths of an asset's row (1.3 kB
of 1.6 kB for a CMDB row of nine columns). The API shows it by attribute
(``provenance_by_attribute``).

Functions here work on the scratch table ``touched(asset_id)``: the assets to decide again, and
``created_assets(asset_id)``: those the import being applied created (``start_created``). An
asset is created with its decided values (``decided_values``: its one claim wins every
attribute), so deciding skips it: deciding it again, an UPDATE of every row a large import
inserts, was the largest statement of the apply. Sets
of asset ids stay in the database: a 1M-row import's ids, fetched into the process to be
counted, took the enricher past 500 MB. Deciding also keeps each asset's identifiers
(``asset_identifiers``) equal to what its values and claims derive (``derived_identifiers``),
noting in ``held_identifiers`` what they were before it changes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from . import scratch
from .policy import InventoryPolicy

TYPED = ("asset_type", "hostname", "fqdn", "ip_address", "mac_address", "serial_number", "external_id", "source",
         "environment", "criticality", "operating_system")
PERFORMANCE = ("cpu_avg_pct", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct", "memory_total", "disk_avg_pct",
               "disk_peak_pct", "disk_total", "network_avg_mbps", "network_peak_mbps", "collected_at")
CLASSIFICATION = ("classification", "regulation", "data_store", "data_owner", "record_count")
# Categories whose claims say an asset exists; an asset only measurements or classifications speak
# of (an infrastructure row's placeholder) is a placeholder until one of them names it.
VOUCHING = ("cmdb_export", "app_discovery")
NAME_FROM = ("name", "hostname", "fqdn", "ip_address", "serial_number", "external_id")
NUMERIC = r"^-?[0-9]+(\.[0-9]+)?$"


def _array(names: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{n}'" for n in names) + "]"


def _subset(vals: str, keys: tuple[str, ...], numeric: bool) -> str:
    value = f"CASE WHEN e.v ~ '{NUMERIC}' THEN to_jsonb(e.v::numeric) ELSE to_jsonb(e.v) END" if numeric else \
        "to_jsonb(e.v)"
    # Most assets have none of the keys: the operator test spares them a subquery each.
    return (f"CASE WHEN {vals} ?| {_array(keys)} THEN"
            f" (SELECT coalesce(jsonb_object_agg(e.k, {value}), '{{}}'::jsonb)"
            f" FROM jsonb_each_text({vals}) AS e(k, v) WHERE e.k = ANY({_array(keys)}) AND e.v IS NOT NULL)"
            f" ELSE '{{}}'::jsonb END")


def decided_values(vals: str, name: str) -> str:
    """SELECT list of an asset's current values from its winning values ``vals`` (a jsonb
    expression); ``name`` is the name kept when no winning value names the asset."""
    return f"""
    coalesce({', '.join(f"{vals}->>'{n}'" for n in NAME_FROM)}, {name}) AS name,
    {', '.join(f"{vals}->>'{c}' AS {c}" for c in TYPED)},
    jsonb_strip_nulls({vals} - {_array(("name", *TYPED, *PERFORMANCE, *CLASSIFICATION))}) AS attributes,
    {_subset(vals, PERFORMANCE, numeric=True)} AS performance,
    {_subset(vals, CLASSIFICATION, numeric=False)} AS classification,
    coalesce(string_to_array({vals}->>'regulation', ','), '{{}}') AS compliance_flags"""


def attribute_keys(won: str) -> str:
    """The keys of the jsonb object ``won`` as a jsonb array, in that object's own key order (so
    that creating an asset and deciding it again write the same array). Through
    ``jsonb_object_keys``: 1.9 s for 1M objects of ten keys, against 2.9 s by a JSON path
    (``$.keyvalue().key``), which builds an object for every key first."""
    return f"to_jsonb(ARRAY(SELECT jsonb_object_keys({won})))"


def provenance_entry(import_id: str, source: str, at: str, won: str | None = None) -> str:
    """A claim's element of ``assets.provenance``: which import set the values, from which source,
    when; with ``won`` (a jsonb object), the attributes it wins, its keys. Built as one object:
    building the entry, then adding the attributes to it, took a third longer."""
    attributes = "" if won is None else f", 'attributes', {attribute_keys(won)}"
    return f"jsonb_build_object('import_id', {import_id}, 'source', {source}, 'set_at', {at}{attributes})"


def claim_provenance(entry: str, won: str) -> str:
    """``provenance_entry`` for an ``entry`` object built already (that of a stored provenance)."""
    return f"({entry} || jsonb_build_object('attributes', {attribute_keys(won)}))"


def single_claim_provenance(vals: str, import_id: str, source: str, at: str) -> str:
    """Provenance when one claim, with values ``vals`` made by import ``import_id`` from ``source``
    at ``at``, wins every attribute: what deciding would give (no element when it wins none)."""
    return (f"CASE WHEN {vals} = '{{}}'::jsonb THEN '[]'::jsonb"
            f" ELSE jsonb_build_array({provenance_entry(import_id, source, at, vals)}) END")


def provenance_by_attribute(provenance: str) -> str:
    """The stored ``provenance`` (one element per winning claim) as the API shows it:
    ``{attribute: {import_id, source, set_at}}``."""
    return (f"(SELECT coalesce(jsonb_object_agg(k, e - 'attributes'), '{{}}'::jsonb)"
            f" FROM jsonb_array_elements({provenance}) AS e, jsonb_array_elements_text(e -> 'attributes') AS k)")


_NEW_VALUES = f"""{decided_values("cur.vals", "t.name")},
    NOT EXISTS (SELECT 1 FROM asset_claims x WHERE x.asset_id = t.asset_id
                AND x.category = ANY({_array(VOUCHING)})) AS is_placeholder,
    prov.prov AS provenance"""
_COLUMNS = ("name", *TYPED, "attributes", "performance", "classification", "compliance_flags", "is_placeholder")

_MATERIALISE = f"""
WITH c AS (
    SELECT cl.asset_id, cl.import_id, cl.source, cl.asserted_at, kv.key, kv.value,
           coalesce(($1::jsonb ->> cl.source)::integer, 0) AS priority
    FROM asset_claims cl JOIN deciding USING (asset_id), jsonb_each_text(cl.claims) AS kv(key, value)
), w AS (
    SELECT c.*, max(asserted_at) OVER (PARTITION BY asset_id, key) AS newest FROM c
), win AS (
    SELECT DISTINCT ON (asset_id, key) asset_id, key, value, import_id, source, asserted_at FROM w
    ORDER BY asset_id, key, ($2::integer IS NOT NULL AND asserted_at < newest - make_interval(days => $2::integer)),
             priority DESC, asserted_at DESC, import_id DESC
), cur AS (
    SELECT asset_id, jsonb_object_agg(key, value) AS vals FROM win GROUP BY asset_id
), claim AS (
    SELECT asset_id, asserted_at, import_id,
           {provenance_entry("import_id", "source", "asserted_at", "jsonb_object_agg(key, true)")} AS entry
    FROM win GROUP BY asset_id, import_id, source, asserted_at
), prov AS (
    SELECT asset_id, jsonb_agg(entry ORDER BY asserted_at, import_id) AS prov FROM claim GROUP BY asset_id
), next AS (
    SELECT t.asset_id, {_NEW_VALUES}
    FROM cur JOIN prov USING (asset_id) JOIN assets t USING (asset_id)
), diff AS (
    SELECT n.*, ({', '.join(f't.{c}' for c in _COLUMNS)}) IS DISTINCT FROM
                ({', '.join(f'n.{c}' for c in _COLUMNS)}) AS changed
    FROM next n JOIN assets t USING (asset_id)
)
UPDATE assets t SET {', '.join(f'{c} = d.{c}' for c in _COLUMNS)}, provenance = d.provenance,
       last_import_id = CASE WHEN d.changed THEN coalesce($3::uuid, t.last_import_id) ELSE t.last_import_id END,
       updated_at = CASE WHEN d.changed THEN $4::timestamptz ELSE t.updated_at END
FROM diff d WHERE t.asset_id = d.asset_id AND (d.changed OR t.provenance IS DISTINCT FROM d.provenance)
RETURNING t.asset_id, d.changed
"""

# How many assets' values changed.
_DECIDE = f"""
WITH decided AS ({_MATERIALISE})
SELECT count(*) FILTER (WHERE changed) FROM decided
"""

# The touched assets to decide: those the import did not create (created_assets, which every
# caller starts: ``start_created``; a revert creates none). Temp tables get no
# statistics from autovacuum: 20,000 assets planned as a handful turn the claim and
# identifier joins into nested loops.
_DECIDING = scratch.starting("deciding") + """
INSERT INTO deciding
SELECT asset_id FROM touched t WHERE NOT EXISTS (SELECT 1 FROM created_assets n WHERE n.asset_id = t.asset_id);
ANALYZE pg_temp.touched, pg_temp.deciding;
"""

# The identifiers an asset ``a`` is found by, from its current values: (kind, value expression)
# pairs; NULL values are none, and no (kind, value) comes twice. Its source keys come from its claims.
# Its name is left out where it is one of its FQDN, host or address identifiers (an asset named
# after its host name, as most are): identification looks a name up under those kinds too
# (``identification.identifier_matches``). Indexed twice, it was a fifth of a 1M-row import's
# identifiers.
_KIND_VALUES = (
    ("fqdn", "lower(coalesce(a.fqdn, CASE WHEN a.hostname LIKE '%.%' THEN a.hostname END))"),
    ("fqdn", "CASE WHEN a.hostname LIKE '%.%' AND a.fqdn IS NOT NULL AND lower(a.hostname) <> lower(a.fqdn)"
             " THEN lower(a.hostname) END"),
    ("host", "NULLIF(split_part(lower(coalesce(a.hostname, a.fqdn)), '.', 1), '')"),
    ("ip", "lower(a.ip_address)"), ("mac", "lower(a.mac_address)"), ("serial", "upper(a.serial_number)"),
)
# The kinds a name is also looked up under (``identification.lookups``).
NAME_ALSO_UNDER = ("fqdn", "host", "ip")
_HELD_ELSEWHERE = ", ".join(value for kind, value in _KIND_VALUES if kind in NAME_ALSO_UNDER)
IDENTIFIER_KINDS = (*_KIND_VALUES,
                    ("name", f"CASE WHEN lower(a.name) IN ({_HELD_ELSEWHERE}) THEN NULL ELSE lower(a.name) END"))
# The same as a LATERAL FROM item ``k(kind, value)``. Two arrays unnested side by side: a VALUES
# list, evaluated as a scan of its own for every asset, took 8.6 s for 1M assets, this 3.9 s.
IDENTIFIER_VALUES = ("unnest(ARRAY[" + ", ".join(f"'{kind}'" for kind, _ in IDENTIFIER_KINDS) + "], ARRAY["
                     + ", ".join(value for _, value in IDENTIFIER_KINDS) + "]) AS k(kind, value)")


# The collation of the identifiers' kind and value (migration 0014): byte order, compared with
# memcmp and sorted with abbreviated keys. The database's own ("C.UTF-8" here) compares through the
# C library and sorts without them: a 1M-row import's identifiers took 18.6 s to sort and insert in
# it, 16.5 s in "C". Identifiers are only ever looked up by equality, which no collation changes.
KEY_COLLATION = '"C"'


def in_key_collation(value: str) -> str:
    """``value`` (a text expression) as the identifiers' key compares it."""
    return f"({value}) COLLATE {KEY_COLLATION}"


def identifiers_in_key_order(assets: str) -> str:
    """SELECT of (kind, value, asset_id): the identifiers of the assets ``a`` of the FROM item
    ``assets`` derive from their values, in (kind, value) order: one scan and one sort of the
    values per kind, one after the other, in the key's collation. One sort of every (kind, value)
    took 18.5 s for 1M assets (their kinds compared as text too, 4M rows past ``work_mem``), this
    7.0 s."""
    return "\nUNION ALL\n".join(
        f"(SELECT '{kind}'::text, {in_key_collation(value)}, a.asset_id FROM {assets} a"
        f" WHERE {value} IS NOT NULL ORDER BY 2)"
        for kind, value in sorted(IDENTIFIER_KINDS, key=lambda entry: entry[0]))


def source_key(claimed_source: str, claim_source: str, external_id: str) -> str:
    return f"lower(coalesce({claimed_source}, {claim_source})) || '|' || lower({external_id})"


def derived_identifiers(assets: str) -> str:
    """SELECT of (client_account_id, engagement_id, kind, value, asset_id): the identifiers the assets
    ``a`` for which ``assets`` holds are found by, from their current values and the source keys of
    their claims. A (kind, value) may come twice (two claims with one source key).

    ``asset_identifiers`` holds exactly these for every asset: the import that creates an asset
    writes them from the values it creates it with (its one claim), deciding writes them again
    from what it decided. So what an asset holds is found from its values and claims by primary
    key, and the table needs no index by asset id: keeping one up took a third of creating a 1M-row
    import's assets (its entries land at random).
    """
    return f"""
SELECT a.client_account_id, a.engagement_id, k.kind, k.value, a.asset_id
FROM assets a CROSS JOIN LATERAL {IDENTIFIER_VALUES}
WHERE ({assets}) AND k.value IS NOT NULL
UNION ALL
SELECT a.client_account_id, a.engagement_id, 'source_key',
       {source_key("cl.claims->>'source'", "cl.source", "cl.claims->>'external_id'")}, a.asset_id
FROM assets a JOIN asset_claims cl USING (asset_id)
WHERE ({assets}) AND cl.claims->>'external_id' IS NOT NULL"""


def same_identifier(x: str, y: str) -> str:
    """Condition: the identifier rows ``x`` and ``y`` of scratch tables are the same row."""
    return " AND ".join(f"{x}.{c} = {y}.{c}"
                        for c in ("client_account_id", "engagement_id", "kind", "value", "asset_id"))


def stored_identifier(ai: str, y: str, tn: str) -> str:
    """Condition: the stored identifier ``ai`` is the scratch row ``y``, whose tenant is the row ``tn``
    of ``tenants`` (by ``ai``'s primary key)."""
    return (f"{ai}.tenant_no = {tn}.tenant_no AND {ai}.kind = {y}.kind AND {ai}.value = {y}.value"
            f" AND {ai}.asset_id = {y}.asset_id")


def forget_held(which: str) -> str:
    """DELETE of the stored identifiers among ``held_identifiers h`` for which ``which`` holds.

    Each is looked up by primary key (a LATERAL subquery with OFFSET 0 is never turned into a
    join): on statistics that trail the inventory, a join may read every identifier there is.
    """
    return f"""
DELETE FROM asset_identifiers WHERE ctid = ANY(ARRAY(
    SELECT ai.ctid FROM held_identifiers h JOIN tenants tn USING (client_account_id, engagement_id)
    CROSS JOIN LATERAL (SELECT ai.ctid FROM asset_identifiers ai WHERE {stored_identifier("ai", "h", "tn")} OFFSET 0) ai
    WHERE {which}))"""


_DECIDING_ASSETS = "a.asset_id IN (SELECT asset_id FROM deciding)"
_TOUCHED_ASSETS = "a.asset_id IN (SELECT asset_id FROM touched)"

# Before deciding changes them: the identifiers the deciding assets may hold now (a revert has
# noted those of the claims it deletes already, ``note_held``). An import of the same tenant on
# another partition may be deciding some of them: their rows are locked first (as the UPDATE
# would lock them, in asset id order), so that what they hold is read after that import commits.
# Read before, the identifiers it gave them would be missed and outlive their next change.
_HOLDING = f"""
SELECT count(*) FROM (SELECT 1 FROM assets a WHERE {_DECIDING_ASSETS} ORDER BY a.asset_id FOR NO KEY UPDATE) l;
INSERT INTO held_identifiers {derived_identifiers(_DECIDING_ASSETS)};
ANALYZE pg_temp.held_identifiers;
"""

_UNWANTED = f"NOT EXISTS (SELECT 1 FROM wanted_identifiers w WHERE {same_identifier('w', 'h')})"

# Only the difference is written: an import that changes no identifier (measurements,
# classifications, a re-import) must not delete and re-insert every identifier of its assets,
# which costs index churn and dead rows in the table every identification reads. Created assets
# are left out: they were given their identifiers as they were created.
_REFRESH_IDENTIFIERS = scratch.starting("wanted_identifiers") + f"""
INSERT INTO wanted_identifiers SELECT DISTINCT * FROM ({derived_identifiers(_DECIDING_ASSETS)}) d;
ANALYZE pg_temp.wanted_identifiers;
{forget_held(_UNWANTED)};
INSERT INTO asset_identifiers (tenant_no, client_account_id, engagement_id, kind, value, asset_id)
SELECT tn.tenant_no, w.client_account_id, w.engagement_id, w.kind, w.value, w.asset_id
FROM wanted_identifiers w LEFT JOIN tenants tn USING (client_account_id, engagement_id)  -- unnumbered: refused
WHERE NOT EXISTS (SELECT 1 FROM asset_identifiers ai WHERE {stored_identifier("ai", "w", "tn")})
ON CONFLICT DO NOTHING;
"""


async def start_touched(conn: asyncpg.Connection) -> None:
    """Empty ``touched`` and ``held_identifiers`` for the import (or revert) about to be applied."""
    await scratch.start(conn, "touched", "held_identifiers")


async def note_held(conn: asyncpg.Connection) -> None:
    """Note the identifiers the touched assets hold, before a revert deletes claims they come from."""
    await conn.execute(f"INSERT INTO held_identifiers {derived_identifiers(_TOUCHED_ASSETS)}")


async def start_created(conn: asyncpg.Connection) -> None:
    """An empty ``created_assets`` for the import (or revert) about to be applied."""
    await scratch.start(conn, "created_assets")


async def decide(conn: asyncpg.Connection, policy: InventoryPolicy, import_id: uuid.UUID | None,
                 at: datetime) -> int:
    """Decide the current values of every touched asset the import did not create, and refresh
    their identifiers; returns how many assets' values changed.

    ``import_id`` becomes the changed assets' last import (None keeps theirs: a revert).
    """
    await conn.execute(_DECIDING)
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deciding)"):
        return 0
    await conn.execute(_HOLDING)
    changed = await conn.fetchval(_DECIDE, {k.lower(): v for k, v in policy.source_priorities.items()},
                                  policy.stale_after_days, import_id, at)
    await conn.execute(_REFRESH_IDENTIFIERS)
    return changed
