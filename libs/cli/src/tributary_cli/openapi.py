"""``tributary openapi [DIR]``: the OpenAPI document of each service's HTTP API (``make openapi``).

Writes ``<service>.json`` to DIR (default docs/openapi), one per service, generated from the
routers each service's ``main.ROUTERS`` passes to run_service, with the shared health routes
and the API-key security schemes (tributary_runtime.openapi). Nothing is started: no database,
broker or key ring. tests/contract/test_openapi_current.py checks the committed files are current.

Unlike the rest of the CLI, this imports the services (lazily, only here): their routers are
the API.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("docs/openapi")
# file name: (package, name run_service is given)
SERVICES: dict[str, tuple[str, str]] = {
    "ingest": ("ingest", "ingest"),
    "validator": ("validator", "validator"),
    "enricher": ("enricher", "enricher"),
    "flow-state": ("flow_state", "flow_state"),
}


def app_for(service: str) -> Any:
    """The service's HTTP app, built without resources (FastAPI)."""
    from tributary_runtime.openapi import build_app

    package, name = SERVICES[service]
    main = importlib.import_module(f"{package}.main")
    return build_app(name, main.ROUTERS)


def documents() -> dict[str, str]:
    """File name -> rendered document, for every service."""
    from tributary_runtime.openapi import document, render

    return {f"{service}.json": render(document(app_for(service))) for service in SERVICES}


def export(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
