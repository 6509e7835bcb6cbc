"""Seeded, realistic synthetic import files, written row by row straight to disk.

Nothing is held in memory but the current row: a 1M-row CMDB file is generated with a
constant footprint. The same seed and size give byte-identical files (cached by name).

* CMDB export: hosts named after a role and a site, one distinct IPv4 address each, mixed
  spellings of environments and criticalities (as vendor exports have them), about 0.5 %
  of rows with an invalid IP address (so validation reports findings and the flow
  completes with errors, as real imports do).
* Application discovery: directed edges between applications in tiers (a DAG: tier t
  only calls tiers > t) and from applications to CMDB hosts; about 5 % of edges name a
  host nobody knows (parked by the enricher). Every edge (source, target, port) is
  distinct by construction (no set of seen edges is kept).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

ROLES = (("web", "server"), ("app", "virtual_machine"), ("db", "database"), ("cache", "VM"), ("mq", "server"),
         ("batch", "Linux Server"))
SITES = ("fra", "ams", "iad", "sin")
ENVIRONMENTS = ("production", "prod", "PRD", "staging", "UAT", "test", "QA", "development", "dev", "DR")
CRITICALITIES = ("critical", "high", "medium", "low", "1 - critical", "2 - high", "3 - moderate", "Tier 3")
SYSTEMS = ("Ubuntu 22.04", "RHEL 8.9", "RHEL 9.3", "Windows Server 2019", "Windows Server 2022", "SLES 15 SP5")
OWNERS = ("platform-team", "payments-team", "retail-ops", "data-eng", "identity", "logistics")

CMDB_HEADER = ["Host Name", "IP Address", "Asset Type", "Environment", "Criticality", "OS", "Serial Number",
               "Owner", "Location"]
APP_HEADER = ["Source Application", "Target Application", "Source Type", "Target Type", "Port", "Protocol",
              "Dependency Type", "Criticality", "Confidence"]
BAD_IP_SHARE = 0.005
APP_TIERS = 5


def host_name(i: int, prefix: str = "") -> str:
    role = ROLES[i % len(ROLES)][0]
    return f"{prefix}{role}-{SITES[(i // len(ROLES)) % len(SITES)]}-{i:07d}.corp.example"


def ip_address(i: int) -> str:
    """A distinct address per host (up to ~16M hosts), never .0 or .255."""
    subnet, host = divmod(i, 254)
    return f"10.{(subnet // 256) % 256}.{subnet % 256}.{host + 1}"


def cmdb_rows(rows: int, seed: int, *, prefix: str = "", first: int = 0):
    """(row, is_valid) for ``rows`` hosts from host number ``first``: several small files given
    consecutive ranges describe distinct hosts (names and addresses), as separate exports would."""
    rng = random.Random(seed)
    for i in range(first, first + rows):
        ip = ip_address(i)
        valid = rng.random() >= BAD_IP_SHARE
        if not valid:
            ip = f"10.{300 + rng.randrange(50)}.{rng.randrange(256)}.{rng.randrange(256)}"  # invalid octet
        site = SITES[(i // len(ROLES)) % len(SITES)]
        yield [host_name(i, prefix), ip, ROLES[i % len(ROLES)][1], rng.choice(ENVIRONMENTS),
               rng.choice(CRITICALITIES), rng.choice(SYSTEMS), f"SN-{rng.randrange(16**8):08X}-{i}",
               rng.choice(OWNERS), f"{site.upper()}-DC{1 + rng.randrange(3)}"], valid


def write_cmdb(path: Path, rows: int, seed: int, *, prefix: str = "", first: int = 0) -> dict[str, int]:
    """Write the file (unless an identical one is cached); returns its expected counts."""
    valid = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", buffering=1 << 20) as fh:
        w = csv.writer(fh)
        w.writerow(CMDB_HEADER)
        for row, ok in cmdb_rows(rows, seed, prefix=prefix, first=first):
            w.writerow(row)
            valid += ok
    tmp.replace(path)
    return {"rows": rows, "valid": valid, "invalid": rows - valid}


def app_discovery_rows(edges: int, seed: int, hosts: int):
    """``edges`` distinct dependency edges; targets among the first ``hosts`` CMDB hosts (host_name(i))."""
    rng = random.Random(seed)
    per_tier = max(2, edges // 300)  # ~60 edges per calling application
    apps_total = per_tier * APP_TIERS
    sources = per_tier * (APP_TIERS - 1)  # the last tier calls nobody
    for k in range(edges):
        # Edge k is the j-th edge of source s; each kind maps (s, j) to a distinct target (or port).
        s, j = k % sources, k // sources
        tier = s // per_tier
        source = f"svc-{tier}-{s % per_tier:05d}"
        kind = rng.random()
        if kind < 0.6:  # application -> application in a later tier (acyclic)
            later = apps_total - (tier + 1) * per_tier
            t = (tier + 1) * per_tier + (s * 7919 + j) % later
            port = rng.choice((443, 8080, 8443, 9090)) if j < later else 10000 + j // later
            row = [source, f"svc-{t // per_tier}-{t % per_tier:05d}", "application", "application", str(port),
                   "HTTPS", "api"]
        elif kind < 0.95:  # application -> CMDB host
            target = host_name((s * 104729 + j * 7919) % hosts)
            db = target.startswith("db-")
            row = [source, target, "application", "database" if db else "server", "5432" if db else "443", "TCP",
                   "database" if db else "runtime"]
        else:  # a host the CMDB does not know: parked
            row = [source, f"legacy-{s:05d}-{j:06d}.dc.example", "application", "server", "1414", "TCP",
                   "messaging"]
        yield row + [rng.choice(CRITICALITIES), rng.choice(("0.9", "0.75", "85%", "1", "60 %"))]


def write_app_discovery(path: Path, edges: int, seed: int, hosts: int, cmdb_seed: int | None = None
                        ) -> dict[str, int]:
    """``cmdb_seed``: the seed of the CMDB file of ``hosts`` rows imported first; edges to its invalid rows
    (never enriched, so unknown hosts) are counted apart: the enricher parks them."""
    invalid = ({i for i, (_, ok) in enumerate(cmdb_rows(hosts, cmdb_seed)) if not ok}
               if cmdb_seed is not None else set())
    invalid_names = {host_name(i) for i in invalid}
    counts = {"rows": edges, "to_applications": 0, "to_hosts": 0, "to_invalid_hosts": 0, "to_unknown_hosts": 0}
    apps: set[str] = set()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", buffering=1 << 20) as fh:
        w = csv.writer(fh)
        w.writerow(APP_HEADER)
        for row in app_discovery_rows(edges, seed, hosts):
            w.writerow(row)
            apps.add(row[0])
            if row[3] == "application":
                apps.add(row[1])
                counts["to_applications"] += 1
            elif row[1].startswith("legacy-"):
                counts["to_unknown_hosts"] += 1
            elif row[1] in invalid_names:
                counts["to_invalid_hosts"] += 1
            else:
                counts["to_hosts"] += 1
    tmp.replace(path)
    counts["applications"] = len(apps)
    counts["cmdb_hosts"] = hosts
    return counts


def cached(directory: Path, name: str, make) -> tuple[Path, dict[str, int]]:
    """``make(path)`` once per name; the counts are kept beside the file."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    path, meta = directory / name, directory / (name + ".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    counts = make(path)
    meta.write_text(json.dumps(counts))
    return path, counts
