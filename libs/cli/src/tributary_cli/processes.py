"""The four services as separate OS processes: start, wait until healthy, kill, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES: dict[str, tuple[str, int]] = {
    # name: (python module, default HTTP port)
    "ingest": ("ingest", 8001),
    "validator": ("validator", 8002),
    "enricher": ("enricher", 8003),
    "flow-state": ("flow_state", 8004),
}
MIGRATION_ORDER = ("ingest", "validator", "enricher", "flow-state")


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    # Extra instances of one service (same consumer group) log to <name>-<instance>.log.
    instance: int = 0

    @property
    def log_name(self) -> str:
        return f"{self.name}-{self.instance}.log" if self.instance else f"{self.name}.log"

    @property
    def module(self) -> str:
        return SERVICES[self.name][0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / self.log_name, "ab")  # noqa: SIM115 - owned by the child
        env = os.environ | self.env | {"TRIBUTARY_HTTP_PORT": str(self.port), "TRIBUTARY_HTTP_HOST": "127.0.0.1"}
        self.process = subprocess.Popen([sys.executable, "-m", self.module, "serve"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_dir}/{self.log_name}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_dir}/{self.log_name}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()


def migrate(env: dict[str, str]) -> None:
    """Apply every service's migrations (each in its own schema)."""
    for name in MIGRATION_ORDER:
        subprocess.run([sys.executable, "-m", SERVICES[name][0], "migrate"], env=os.environ | env, check=True)


def start_all(env: dict[str, str], log_dir: Path, ports: dict[str, int] | None = None) -> dict[str, ServiceProcess]:
    ports = {name: (ports or {}).get(name, port) for name, (_, port) in SERVICES.items()}
    # flow-state's dashboard forwards uploads and findings requests to ingest and the validator.
    env = env | {"TRIBUTARY_INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
                 "TRIBUTARY_VALIDATOR_URL": f"http://127.0.0.1:{ports['validator']}"}
    procs = {name: ServiceProcess(name, port, env, log_dir) for name, port in ports.items()}
    for p in procs.values():
        p.start()
    try:
        for p in procs.values():
            p.wait_healthy()
    except Exception:
        stop_all(procs)
        raise
    return procs


def stop_all(procs: dict[str, ServiceProcess] | list[ServiceProcess]) -> None:
    """SIGTERM to all at once, then wait for each (a straggler is killed after its grace period)."""
    group = list(procs.values()) if isinstance(procs, dict) else list(procs)
    for p in group:
        if p.process is not None and p.process.poll() is None:
            p.process.send_signal(signal.SIGTERM)
    for p in group:
        p.stop()


def create_api_key(env: dict[str, str], client_account_id: str, engagement_id: str, label: str | None = None
                   ) -> dict[str, str]:
    """A new API key for a tenant (``python -m ingest keys create``): its id, tenant and the key itself."""
    command = [sys.executable, "-m", "ingest", "keys", "create", "--client-account-id", client_account_id,
               "--engagement-id", engagement_id] + (["--label", label] if label else [])
    done = subprocess.run(command, env=os.environ | env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def wait_for_key(services: Iterable[ServiceProcess], headers: dict[str, str], timeout: float = 30) -> None:
    """Until every service accepts the key in ``headers`` (keys travel on a topic: milliseconds)."""
    deadline = time.monotonic() + timeout
    for service in services:
        while httpx.get(f"{service.url}/v1/whoami", headers=headers, timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.name} did not learn the new API key in {timeout}s")
            time.sleep(0.02)
