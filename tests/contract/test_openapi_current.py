"""docs/openapi/<service>.json: current, describing the app each service really serves, and saying
how to authenticate.

The documents are built from each service's ``main.ROUTERS`` without resources
(tributary_runtime.openapi.build_app). To check that equals what run_service serves, each
service's real ``main.serve`` runs here with its resources and its server replaced by stand-ins,
and the app it would have served is compared with the one the documents come from.
"""

from __future__ import annotations

import importlib
import json
import typing
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI

from tributary_cli import openapi as export
from tributary_runtime import service
from tributary_runtime.openapi import SECURITY, SECURITY_SCHEMES, document, render

DOCS = Path(__file__).parents[2] / "docs" / "openapi"
HINT = "run `make openapi` and commit docs/openapi/"


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return export.documents()


def test_committed_documents_are_current(documents: dict[str, str]) -> None:
    committed = {p.name for p in DOCS.glob("*.json")}
    assert committed == set(documents), f"docs/openapi/ has {sorted(committed)}, expected {sorted(documents)}: {HINT}"
    for name, text in documents.items():
        on_disk = (DOCS / name).read_text(encoding="utf-8")
        assert json.loads(on_disk) == json.loads(text), f"docs/openapi/{name} is stale: {HINT}"
        assert on_disk == text, f"docs/openapi/{name} is not formatted as generated: {HINT}"


def test_output_is_stable(documents: dict[str, str]) -> None:
    assert export.documents() == documents


async def _served_app(monkeypatch: pytest.MonkeyPatch, package: str) -> FastAPI:
    """The app ``<package>.main.serve`` hands to the HTTP server, with nothing opened."""
    main = importlib.import_module(f"{package}.main")
    served: list[FastAPI] = []

    @asynccontextmanager
    async def no_resources(settings: Any, schema: str, name: str) -> Any:
        yield SimpleNamespace(db=SimpleNamespace(pool=None), producer=None)

    async def capture(settings: Any, app: FastAPI | None, tasks: list[Any]) -> None:
        assert app is not None
        served.append(app)

    async def nothing(*args: Any) -> None:
        return None

    monkeypatch.setattr(service, "open_resources", no_resources)
    monkeypatch.setattr(service, "serve", capture)
    monkeypatch.setattr(service, "configure_logging", lambda settings, name: None)
    if hasattr(main, "announce_keys"):  # ingest's on_start needs the database
        monkeypatch.setattr(main, "announce_keys", nothing)
    settings_type = typing.get_type_hints(main.serve)["settings"]
    await main.serve(settings_type())
    assert len(served) == 1
    return served[0]


@pytest.mark.parametrize("service_name", sorted(export.SERVICES))
async def test_documents_describe_the_served_app(monkeypatch: pytest.MonkeyPatch, service_name: str) -> None:
    package, _ = export.SERVICES[service_name]
    real = await _served_app(monkeypatch, package)
    built = export.app_for(service_name)
    assert (built.title, built.version) == (real.title, real.version)
    real_doc, built_doc = document(real), document(built)
    assert sorted(built_doc["paths"]) == sorted(real_doc["paths"]), \
        f"{service_name}: the routes documented differ from the routes run_service serves"
    assert built_doc == real_doc


@pytest.mark.parametrize("service_name", sorted(export.SERVICES))
def test_documents_say_how_to_authenticate(documents: dict[str, str], service_name: str) -> None:
    doc = json.loads(documents[f"{service_name}.json"])
    assert doc["components"]["securitySchemes"] == SECURITY_SCHEMES
    assert SECURITY_SCHEMES["bearerAuth"]["scheme"] == "bearer"
    assert SECURITY_SCHEMES["apiKeyHeader"]["name"] == "X-Api-Key"
    operations = {(path, method): op for path, item in doc["paths"].items() for method, op in item.items()}
    secured = {key for key, op in operations.items() if "security" in op}
    # The probes take no key; whoami and the service's own API do.
    assert not secured & {("/health", "get"), ("/ready", "get"), ("/metrics", "get")}
    assert ("/v1/whoami", "get") in secured
    assert len(secured) > 1
    for key in secured:
        op = operations[key]
        assert op["security"] == SECURITY
        assert "401" in op["responses"]
        headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        assert not headers & {"authorization", "x-api-key"}, f"{key}: the key is a security scheme, not a parameter"
    # Nothing else asks for the key header either.
    for key, op in operations.items():
        assert not any(p["in"] == "header" and p["name"].lower() == "authorization" for p in op.get("parameters", [])), key


def test_render_is_sorted_and_ends_with_newline() -> None:
    text = render({"b": 1, "a": {"d": 2, "c": 3}})
    assert text == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'
