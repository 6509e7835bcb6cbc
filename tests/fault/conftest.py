"""Fixtures of the fault tests: the generated files, the tenant, and the undisturbed reference run.

Knobs (environment):
  TRIBUTARY_FAULT_SEED         seed of the files and of the kill schedule (default 20261125)
  TRIBUTARY_FAULT_ROWS         rows per file (default 30000)
  TRIBUTARY_FAULT_KILLS        kills in the disturbed run (default 24, at least 4)
  TRIBUTARY_FAULT_GAP_S        "lo,hi": seconds between kills (default "0.3,1.8")
  TRIBUTARY_FAULT_RESTART_S    "lo,hi": delay of a delayed restart (default "0.1,1.5"; half restart at once)
  TRIBUTARY_FAULT_TIMEOUT_S    pytest timeout of each fault test, reference run included (default 2700)
  TRIBUTARY_TEST_LOGS          where the services' logs go (one directory per stack)
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import datagen  # noqa: E402
import harness  # noqa: E402
from contracts import Tenant  # noqa: E402

DEFAULT_SEED = 20261125


@pytest.fixture(scope="session")
def fault_settings() -> harness.FaultSettings:
    settings = harness.FaultSettings(
        seed=harness.env_int("TRIBUTARY_FAULT_SEED", DEFAULT_SEED),
        rows=harness.env_int("TRIBUTARY_FAULT_ROWS", 30_000),
        kills=harness.env_int("TRIBUTARY_FAULT_KILLS", 24),
        gap_s=harness.env_range("TRIBUTARY_FAULT_GAP_S", (0.3, 1.8)),
        restart_s=harness.env_range("TRIBUTARY_FAULT_RESTART_S", (0.1, 1.5)),
    )
    print(f"\nfault settings: TRIBUTARY_FAULT_SEED={settings.seed} TRIBUTARY_FAULT_ROWS={settings.rows}"
          f" TRIBUTARY_FAULT_KILLS={settings.kills} TRIBUTARY_FAULT_GAP_S={settings.gap_s[0]},{settings.gap_s[1]}"
          f" TRIBUTARY_FAULT_RESTART_S={settings.restart_s[0]},{settings.restart_s[1]}")
    return settings


@pytest.fixture(scope="session")
def fault_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault")


@pytest.fixture(scope="session")
def fault_log_dir(fault_workdir: Path) -> Path:
    return Path(os.environ.get("TRIBUTARY_TEST_LOGS") or fault_workdir / "logs")


@pytest.fixture(scope="session")
def import_files(fault_settings: harness.FaultSettings, fault_workdir: Path) -> list[datagen.ImportFile]:
    return datagen.generate(fault_workdir / "files", seed=fault_settings.seed, rows=fault_settings.rows)


@pytest.fixture(scope="session")
def fault_tenant(fault_settings: harness.FaultSettings) -> Tenant:
    # One tenant for every stack: derived ids (assets, dependencies) hash the tenant in.
    return Tenant(client_account_id=uuid.uuid5(uuid.NAMESPACE_URL, f"tributary-fault/{fault_settings.seed}/account"),
                  engagement_id=uuid.uuid5(uuid.NAMESPACE_URL, f"tributary-fault/{fault_settings.seed}/engagement"))


@pytest.fixture(scope="session")
def pg_server(fault_workdir: Path) -> Iterator[str]:
    url, pgdata = harness.postgres_server(fault_workdir)
    yield url
    if pgdata is not None:
        harness.devstack.stop_postgres(pgdata)


@pytest.fixture(scope="session")
def reference_run(pg_server: str, fault_log_dir: Path, import_files: list[datagen.ImportFile],
                  fault_tenant: Tenant) -> Iterator[harness.Run]:
    """The files imported by an undisturbed stack; its services are stopped afterwards (the broker
    and database stay, for the redelivery test)."""
    stack = harness.Stack.create("reference", pg_server, fault_log_dir / "reference")
    try:
        stack.start()
        started = time.monotonic()
        imports = harness.Driver(stack, fault_tenant).run(import_files)
        seconds = time.monotonic() - started
        harness.wait_caught_up(stack)
        run = harness.Run(stack, imports, seconds, harness.checksums(stack, imports, fault_tenant),
                          harness.completion_summary(harness.lifecycle_events(stack, imports)))
        print(f"\nreference run: {len(import_files)} files in {run.seconds:.1f}s: "
              + ", ".join(f"{i.label}={i.status}" for i in run.imports))
        stack.stop()
        yield run
    finally:
        stack.close()
