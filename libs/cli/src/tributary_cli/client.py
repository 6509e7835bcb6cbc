"""A small HTTP client for the ingest and flow APIs (used by the CLI, the demo and tests)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts import Tenant

TERMINAL = ("completed", "failed")


@dataclass
class TributaryClient:
    ingest_url: str
    flow_url: str
    tenant: Tenant
    user_id: str = "cli"
    timeout: float = 120.0
    validator_url: str | None = None
    enricher_url: str | None = None
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}", "X-User-Id": self.user_id}
        # Development stacks started with TRIBUTARY_ALLOW_TENANT_HEADERS only.
        return {"X-Client-Account-Id": str(self.tenant.client_account_id),
                "X-Engagement-Id": str(self.tenant.engagement_id), "X-User-Id": self.user_id}

    def upload(self, path: Path, category: str, *, idempotency_key: str | None = None,
               validate_only: bool = False, filename: str | None = None,
               source_system: str | None = None) -> httpx.Response:
        with open(path, "rb") as fh:
            return self.upload_bytes(fh.read(), filename or path.name, category, idempotency_key=idempotency_key,
                                     validate_only=validate_only, source_system=source_system)

    def upload_bytes(self, content: bytes, filename: str, category: str, *, idempotency_key: str | None = None,
                     validate_only: bool = False, source_system: str | None = None) -> httpx.Response:
        headers = self.headers | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
        data = {"category": category, "validate_only": str(validate_only).lower()}
        if source_system:
            data["source_system"] = source_system
        return httpx.post(f"{self.ingest_url}/v1/imports", headers=headers, timeout=self.timeout,
                          files={"file": (filename, content)}, data=data)

    def _enricher(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if self.enricher_url is None:
            raise RuntimeError("this client has no enricher URL (enricher_url)")
        if "params" in kw:
            kw["params"] = {k: v for k, v in kw["params"].items() if v is not None}
        return httpx.request(method, f"{self.enricher_url}{path}", headers=self.headers, timeout=30, **kw)

    def revert_import(self, import_id: uuid.UUID | str, reason: str | None = None) -> httpx.Response:
        return self._enricher("POST", f"/v1/imports/{import_id}/revert", json={"reason": reason})

    def list_assets(self, **params: Any) -> httpx.Response:
        return self._enricher("GET", "/v1/assets", params=params)

    def get_asset(self, asset_id: uuid.UUID | str) -> httpx.Response:
        return self._enricher("GET", f"/v1/assets/{asset_id}")

    def list_dependencies(self, **params: Any) -> httpx.Response:
        return self._enricher("GET", "/v1/dependencies", params=params)

    def list_parked(self, **params: Any) -> httpx.Response:
        return self._enricher("GET", "/v1/dependencies/parked", params=params)

    def list_duplicate_candidates(self, **params: Any) -> httpx.Response:
        return self._enricher("GET", "/v1/duplicate-candidates", params=params)

    def put_inventory_policy(self, **policy: Any) -> httpx.Response:
        return self._enricher("PUT", "/v1/inventory-policy", json=policy)

    def _validator(self, path: str, **params: Any) -> httpx.Response:
        if self.validator_url is None:
            raise RuntimeError("this client has no validator URL (validator_url)")
        clean = {k: v for k, v in params.items() if v is not None}
        return httpx.get(f"{self.validator_url}{path}", headers=self.headers, params=clean, timeout=30)

    def get_validation(self, import_id: uuid.UUID | str) -> httpx.Response:
        return self._validator(f"/v1/imports/{import_id}/validation")

    def list_issues(self, import_id: uuid.UUID | str, **params: Any) -> httpx.Response:
        return self._validator(f"/v1/imports/{import_id}/issues", **params)

    def all_issues(self, import_id: uuid.UUID | str, **params: Any) -> list[dict[str, Any]]:
        """Every finding of an import, page by page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.list_issues(import_id, page=page, page_size=1000, **params)
            response.raise_for_status()
            body = response.json()
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    def download_issues(self, import_id: uuid.UUID | str, **params: Any) -> httpx.Response:
        return self._validator(f"/v1/imports/{import_id}/issues.csv", **params)

    def download_failed_rows(self, import_id: uuid.UUID | str) -> httpx.Response:
        return self._validator(f"/v1/imports/{import_id}/failed-rows.csv")

    def put_policy(self, category: str, max_error_rate: float, blocking_rules: list[str] | None = None
                   ) -> httpx.Response:
        if self.validator_url is None:
            raise RuntimeError("this client has no validator URL (validator_url)")
        return httpx.put(f"{self.validator_url}/v1/validation-policies/{category}", headers=self.headers,
                         json={"max_error_rate": max_error_rate, "blocking_rules": blocking_rules or []}, timeout=10)

    def get_import(self, import_id: uuid.UUID | str) -> httpx.Response:
        return httpx.get(f"{self.ingest_url}/v1/imports/{import_id}", headers=self.headers, timeout=10)

    def get_flow(self, flow_id: uuid.UUID | str) -> httpx.Response:
        return httpx.get(f"{self.flow_url}/v1/flows/{flow_id}", headers=self.headers, timeout=10)

    def list_flows(self, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.flow_url}/v1/flows", headers=self.headers, params=params, timeout=10)

    def pause_flow(self, flow_id: uuid.UUID | str, reason: str | None = None) -> httpx.Response:
        """Pause at the next phase boundary (202; 409 when the flow is not running)."""
        return httpx.post(f"{self.flow_url}/v1/flows/{flow_id}/pause", headers=self.headers,
                          json={"reason": reason}, timeout=10)

    def resume_flow(self, flow_id: uuid.UUID | str) -> httpx.Response:
        """Resume a paused flow (202; 409 when it is not paused)."""
        return httpx.post(f"{self.flow_url}/v1/flows/{flow_id}/resume", headers=self.headers, timeout=10)

    def retry_flow(self, flow_id: uuid.UUID | str, phase: str | None = None) -> httpx.Response:
        """Run a failed flow's failed phase (or ``phase``) again (202; 409 when the flow has not failed)."""
        return httpx.post(f"{self.flow_url}/v1/flows/{flow_id}/retry", headers=self.headers,
                          json={"phase": phase}, timeout=10)

    def wait_for_flow(self, flow_id: uuid.UUID | str, *, timeout: float = 60.0,
                      statuses: tuple[str, ...] = TERMINAL, after: str | None = None) -> dict[str, Any]:
        """Poll the projection until the flow reaches one of ``statuses``.

        ``after``: an event id a 202 answer named (pause, resume, retry). The projection applies
        it a moment later, so until its timeline shows that event the flow still has the status
        from before the request: a failed flow just retried would look failed, and done.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            response = self.get_flow(flow_id)
            if response.status_code == 200:
                last = response.json()
                seen = after is None or any(str(e["event_id"]) == after for e in last["timeline"])
                if seen and last["master"]["status"] in statuses:
                    return last
            time.sleep(0.05)
        raise TimeoutError(f"flow {flow_id} did not reach {statuses} in {timeout}s; last seen: "
                           f"{last['master'] if last else 'nothing'}")
