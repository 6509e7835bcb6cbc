"""Seeded, realistic import files for the fault tests: a CMDB export, the application
dependencies discovered on it, and performance data for its hosts.

Everything comes from one ``random.Random(seed)``, so the same seed and row count give
byte-identical files, which is what lets a disturbed run be compared with an undisturbed
one. The files are built to exercise the whole pipeline without making validation the
bottleneck: the dependency graph is acyclic (cycle search is bounded but costly), and a
small, fixed share of rows is invalid so that findings, "completed with errors" and the
accepted/rejected split are part of what is compared.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImportFile:
    """One file to import; ``label`` names it in checksums and reports."""

    label: str
    category: str
    path: Path
    rows: int


ROLES = (("web", "server"), ("app", "virtual_machine"), ("db", "database"), ("cache", "VM"), ("mq", "server"),
         ("batch", "Linux Server"))
SITES = ("fra", "ams", "iad", "sin")
ENVIRONMENTS = ("production", "prod", "PRD", "staging", "UAT", "test", "QA", "development", "dev", "DR")
CRITICALITIES = ("critical", "high", "medium", "low", "1 - critical", "2 - high", "3 - moderate", "Tier 3")
SYSTEMS = ("Ubuntu 22.04", "RHEL 8.9", "RHEL 9.3", "Windows Server 2019", "Windows Server 2022", "SLES 15 SP5")
OWNERS = ("platform-team", "payments-team", "retail-ops", "data-eng", "identity", "logistics")


def _host(i: int) -> str:
    role = ROLES[i % len(ROLES)][0]
    return f"{role}-{SITES[(i // len(ROLES)) % len(SITES)]}-{i:06d}.corp.example"


def _ip(i: int) -> str:
    """A distinct address per host, never a .0 or .255 look-alike."""
    subnet, host = divmod(i, 254)
    return f"10.{16 + subnet // 256}.{subnet % 256}.{host + 1}"


def write_cmdb(path: Path, rng: random.Random, rows: int) -> list[str]:
    """A CMDB export of ``rows`` hosts; about 0.5 % carry an invalid IP address. Returns the host names."""
    hosts = []
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Host Name", "IP Address", "Asset Type", "Environment", "Criticality", "OS", "Serial Number",
                    "Owner", "Location"])
        for i in range(rows):
            host = _host(i)
            hosts.append(host)
            ip = _ip(i)
            if rng.random() < 0.005:
                ip = f"10.{300 + rng.randrange(50)}.{rng.randrange(256)}.{rng.randrange(256)}"  # invalid octet
            w.writerow([host, ip, ROLES[i % len(ROLES)][1], rng.choice(ENVIRONMENTS), rng.choice(CRITICALITIES),
                        rng.choice(SYSTEMS), f"SN-{rng.randrange(16**8):08X}-{i}", rng.choice(OWNERS),
                        f"{SITES[(i // len(ROLES)) % len(SITES)].upper()}-DC{1 + rng.randrange(3)}"])
    return hosts


def write_app_discovery(path: Path, rng: random.Random, rows: int, hosts: list[str]) -> None:
    """Dependency edges: applications in tiers call later tiers (a DAG), and run on or use CMDB hosts.

    About 5 % of edges name hosts the CMDB does not know (parked), about 2 % of rows are invalid
    (a port out of range, a blank target, a self-dependency, an unreadable confidence).
    """
    tiers = 5
    apps = [f"svc-{t}-{k:04d}" for t in range(tiers) for k in range(max(2, rows // 60))]
    per_tier = len(apps) // tiers
    seen: set[tuple[str, str, str, str]] = set()
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Source Application", "Target Application", "Source Type", "Target Type", "Port", "Protocol",
                    "Dependency Type", "Criticality", "Confidence"])
        written = 0
        while written < rows:
            tier = rng.randrange(tiers - 1)
            source = apps[tier * per_tier + rng.randrange(per_tier)]
            kind = rng.random()
            if kind < 0.6:
                target_tier = rng.randrange(tier + 1, tiers)
                target = apps[target_tier * per_tier + rng.randrange(per_tier)]
                row = [source, target, "application", "application", str(rng.choice((443, 8080, 8443, 9090))),
                       rng.choice(("HTTPS", "HTTP", "gRPC")), "api"]
            elif kind < 0.95:
                target = rng.choice(hosts)
                db = target.startswith("db-")
                row = [source, target, "application", "database" if db else "server",
                       str(rng.choice((5432, 1521, 3306)) if db else rng.choice((22, 443, 6379, 5672))), "TCP",
                       "database" if db else "runtime"]
            else:
                target = f"legacy-{rng.randrange(rows):06d}.dc.example"
                row = [source, target, "application", "server", "1414", "TCP", "messaging"]
            key = (row[0], row[1], row[4], row[5])
            if key in seen:
                continue
            seen.add(key)
            row += [rng.choice(CRITICALITIES), rng.choice(("0.9", "0.75", "85%", "1", "60 %"))]
            bad = rng.random()
            if bad < 0.005:
                row[4] = str(65536 + rng.randrange(10000))  # invalid port
            elif bad < 0.01:
                row[1] = ""  # blank target
            elif bad < 0.015:
                row[1] = row[0].upper()  # self-dependency, compared case-insensitively
            elif bad < 0.02:
                row[8] = "very sure"  # unreadable confidence
            w.writerow(row)
            written += 1


def write_infrastructure(path: Path, rng: random.Random, rows: int, hosts: list[str]) -> None:
    """Performance measurements of CMDB hosts (2 % unknown hosts, about 1 % invalid values)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hostname", "cpu_avg", "cpu_peak", "memory_avg", "memory_peak", "disk_avg_pct", "memory_total",
                    "collected_at"])
        for i in range(rows):
            host = hosts[i % len(hosts)] if rng.random() >= 0.02 else f"unknown-{i:06d}.corp.example"
            cpu = round(rng.uniform(2, 70), 1)
            mem = round(rng.uniform(10, 85), 1)
            row = [host, cpu, round(cpu + rng.uniform(0, 29), 1), mem, round(mem + rng.uniform(0, 14), 1),
                   rng.randrange(5, 95), f"{rng.choice((8, 16, 32, 64, 128))} GB",
                   f"2025-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:00:00Z"]
            if rng.random() < 0.01:
                row[1] = 140  # above 100 %
            w.writerow(row)


def generate(directory: Path, *, seed: int, rows: int) -> list[ImportFile]:
    """The three files, in the order they must be imported (later ones refer to the CMDB's hosts)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    cmdb = directory / f"cmdb-{rows}.csv"
    apps = directory / f"app-discovery-{rows}.csv"
    infra = directory / f"infrastructure-{rows}.csv"
    hosts = write_cmdb(cmdb, rng, rows)
    write_app_discovery(apps, rng, rows, hosts)
    write_infrastructure(infra, rng, rows, hosts)
    return [ImportFile("cmdb", "cmdb_export", cmdb, rows), ImportFile("apps", "app_discovery", apps, rows),
            ImportFile("infra", "infrastructure", infra, rows)]
