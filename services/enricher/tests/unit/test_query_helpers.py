"""The pure pieces of the inventory queries: filter building, search patterns, endpoint references."""

from __future__ import annotations

import uuid

from contracts import Tenant
from enricher.queries import Where, add_endpoint, as_uuid, contains_pattern, tenant_where


def test_where_numbers_parameters_in_order_and_repeats_one_within_a_condition() -> None:
    where = Where()
    where.add("a.x = {p}", 1)
    where.add("(a.y ILIKE {p} OR a.z ILIKE {p})", "%q%")
    assert where.sql == "a.x = $1 AND (a.y ILIKE $2 OR a.z ILIKE $2)"
    assert where.args == [1, "%q%"]


def test_where_without_conditions_is_true() -> None:
    assert Where().sql == "true"
    assert Where().args == []


def test_add_if_skips_missing_and_blank_filters_only() -> None:
    where = Where()
    where.add_if("a.x = {p}", None)
    where.add_if("a.x = {p}", "")
    where.add_if("a.x = {p}", "  ")
    where.add_if("a.y = {p}", False)
    where.add_if("a.z = {p}", 0)
    where.add_if("a.w = {p}", " x ")
    assert where.sql == "a.y = $1 AND a.z = $2 AND a.w = $3"
    assert where.args == [False, 0, " x "]


def test_tenant_where_binds_both_tenant_ids_first() -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    where = tenant_where(tenant, "d")
    where.add("d.port = {p}", 443)
    assert where.sql == "d.client_account_id = $1 AND d.engagement_id = $2 AND d.port = $3"
    assert where.args == [tenant.client_account_id, tenant.engagement_id, 443]


def test_contains_pattern_takes_wildcards_and_backslash_literally() -> None:
    assert contains_pattern("web") == "%web%"
    assert contains_pattern("100%") == "%100\\%%"
    assert contains_pattern("app_01") == "%app\\_01%"
    assert contains_pattern("a\\b") == "%a\\\\b%"


def test_as_uuid() -> None:
    value = uuid.uuid4()
    assert as_uuid(str(value)) == value
    assert as_uuid(f"  {str(value).upper()} ") == value
    assert as_uuid("web-01") is None
    assert as_uuid("") is None


def test_add_endpoint_by_id_or_by_name() -> None:
    asset_id = uuid.uuid4()
    where = Where()
    add_endpoint(where, str(asset_id), "d.source_asset_id", "s.name")
    add_endpoint(where, " Web-01 ", "d.target_asset_id", "t.name")
    add_endpoint(where, None, "d.target_asset_id", "t.name")
    add_endpoint(where, " ", "d.target_asset_id", "t.name")
    assert where.sql == "d.source_asset_id = $1 AND lower(t.name) = lower($2)"
    assert where.args == [asset_id, "Web-01"]
