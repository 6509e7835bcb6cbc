"""Validation agents for application-discovery files: one row is one dependency edge.

Rows are checked one by one (required ends, self-dependencies, ports, protocols,
criticality, confidence, duplicate edges); the dependency graph of the valid edges is
kept, and ``finish`` reports what only the whole graph shows: circular dependencies
and applications left without any valid dependency.

Application names compare case-insensitively (``str.casefold``) but are written back
as given; a cycle is spelled with each application's first spelling in the file.
"""

from __future__ import annotations

import re

from . import formats
from .base import finding, normalised_row, rule_table
from .fields import check_criticality
from .graph import simple_cycles
from .model import Finding, Row, Rule
from .vocabularies import CRITICALITIES, PROTOCOLS

CANONICAL: tuple[str, ...] = ("source", "target", "source_type", "target_type", "port", "protocol",
                              "dependency_type", "criticality", "confidence")
AGENTS: tuple[str, ...] = ("schema", "dependency_analysis", "port_protocol", "criticality", "duplicate_detection")

#: At most this many circular dependencies are reported per import.
CYCLE_LIMIT = 1000
# Edge visits allowed to the cycle search: a few seconds of work on a 2-core machine.
_CYCLE_BUDGET = 20_000_000
# Cycles longer than this are shown with their middle elided, to keep findings small.
_PATH_SHOWN = 50

REQUIRED_VALUE = Rule(
    "required_value", "schema", "error", "source or target is blank: a dependency needs both ends.")
SELF_DEPENDENCY = Rule(
    "self_dependency", "dependency_analysis", "error",
    "source and target name the same application (compared case-insensitively).")
INVALID_CONFIDENCE = Rule(
    "invalid_confidence", "dependency_analysis", "error",
    "confidence is not a fraction 0–1 or a percentage 0–100 (with or without %); valid values are "
    "normalised to a 0–1 decimal. Without %, values up to 1 are fractions, above 1 percentages.")
CIRCULAR_DEPENDENCY = Rule(
    "circular_dependency", "dependency_analysis", "warning",
    "The valid edges form a cycle. One finding per elementary cycle, rotated to start at its "
    "alphabetically first application, on the first row of the edge that closes it; cycles of more "
    f"than {_PATH_SHOWN} applications are shown with the middle elided.")
TOO_MANY_CYCLES = Rule(
    "too_many_cycles", "dependency_analysis", "warning",
    f"More circular dependencies exist than are reported (at most {CYCLE_LIMIT}, or fewer if the search "
    "hit its work budget); import-level.")
ORPHANED_APPLICATION = Rule(
    "orphaned_application", "dependency_analysis", "warning",
    "An application named in the file takes part in no valid dependency (every row naming it has an "
    "error); reported once, at the first row naming it.")
INVALID_PORT = Rule(
    "invalid_port", "port_protocol", "error",
    "port is not a whole number 1–65535; '443/tcp' and '53/udp' are accepted and split into port and "
    "protocol, and spreadsheet-style '443.0' is accepted.")
UNKNOWN_PROTOCOL = Rule(
    "unknown_protocol", "port_protocol", "error",
    f"protocol is not one of {PROTOCOLS.accepted()} nor an alias (tcp/ip, http/1.1, ssl/tls → HTTPS, "
    "h2/http2 → GRPC, ping → ICMP, …).")
CONFLICTING_PROTOCOL = Rule(
    "conflicting_protocol", "port_protocol", "error",
    "The transport given with the port ('443/udp') contradicts the protocol column (e.g. HTTPS runs over "
    "TCP).")
UNKNOWN_CRITICALITY = Rule(
    "unknown_criticality", "criticality", "warning",
    f"criticality is not one of {CRITICALITIES.accepted()} nor a known alias (Tier 0–4, P1–P5, ServiceNow "
    "'1 - most critical', mission/business critical); the value is kept as given.")
DUPLICATE_EDGE = Rule(
    "duplicate_edge", "duplicate_detection", "warning",
    "An earlier valid row has the same source, target, port and protocol (after normalisation).")

RULES: tuple[Rule, ...] = rule_table((
    REQUIRED_VALUE, SELF_DEPENDENCY, INVALID_CONFIDENCE, CIRCULAR_DEPENDENCY, TOO_MANY_CYCLES,
    ORPHANED_APPLICATION, INVALID_PORT, UNKNOWN_PROTOCOL, CONFLICTING_PROTOCOL, UNKNOWN_CRITICALITY,
    DUPLICATE_EDGE,
))

_PORT = re.compile(r"(\d{1,5})(?:\.0+)?(?:\s*/\s*(tcp|udp))?", re.ASCII | re.IGNORECASE)
# The transport each canonical protocol runs over; ICMP has none (and no ports).
_TRANSPORT: dict[str, str] = {"TCP": "tcp", "HTTP": "tcp", "HTTPS": "tcp", "GRPC": "tcp", "UDP": "udp",
                              "ICMP": "icmp"}

_Edge = tuple[str, str, str | None, str | None]


class AppDiscoveryChecker:
    """The application-discovery agents for one import; keeps the graph of valid edges."""

    agents = AGENTS
    rules = RULES
    normalises_per_row = False
    independent_rows = False

    def __init__(self) -> None:
        # casefolded name → (first row naming it, its column there, its spelling there)
        self._first_seen: dict[str, tuple[int, str, str]] = {}
        self._connected: set[str] = set()
        self._keys: dict[str, str] = {}
        self._edge_rows: dict[_Edge, int] = {}
        # (source, target) → first valid row with that pair: where a cycle is reported.
        self._pair_rows: dict[tuple[str, str], int] = {}

    def check(self, row_number: int, row: Row) -> tuple[dict[str, str | None], list[Finding]]:
        out = normalised_row(row, CANONICAL)
        findings: list[Finding] = []
        source = out["source"]
        target = out["target"]
        source_key = source.casefold() if source is not None else None
        target_key = target.casefold() if target is not None else None

        # schema
        if source is None:
            findings.append(finding(REQUIRED_VALUE, row_number, "source",
                                    "source is required: name the application that depends on the target"))
        if target is None:
            findings.append(finding(REQUIRED_VALUE, row_number, "target",
                                    "target is required: name the application the source depends on"))

        # dependency_analysis
        if source_key is not None and source_key == target_key:
            findings.append(finding(SELF_DEPENDENCY, row_number, "target",
                                    f"target {target!r} is the source itself: an application cannot depend "
                                    "on itself", target))
        value = out["confidence"]
        if value is not None:
            confidence = formats.parse_fraction(value)
            if confidence is None:
                findings.append(finding(INVALID_CONFIDENCE, row_number, "confidence",
                                        f"confidence {value!r} is not a confidence: expected a fraction from 0 "
                                        "to 1 or a percentage from 0 to 100 (e.g. 0.85, 85, 85%)", value))
            else:
                out["confidence"] = formats.format_decimal(confidence)

        # port_protocol
        self._port_protocol(row_number, out, findings)

        # criticality
        value = out["criticality"]
        if value is not None:
            out["criticality"] = check_criticality(value, row_number, UNKNOWN_CRITICALITY, findings)

        first_seen = self._first_seen
        if source is not None and source_key not in first_seen:
            first_seen[source.casefold()] = (row_number, "source", source)
        if target is not None and target_key not in first_seen:
            first_seen[target.casefold()] = (row_number, "target", target)

        # duplicate_detection: only error-free rows are edges.
        if source_key is None or target_key is None:
            return out, findings
        for f in findings:
            if f.severity == "error":
                return out, findings
        edge = (source_key, target_key, out["port"], out["protocol"])
        earlier = self._edge_rows.get(edge)
        if earlier is not None:
            findings.append(finding(
                DUPLICATE_EDGE, row_number, None,
                f"duplicate dependency {source} → {target} (port {out['port'] or 'any'}, protocol "
                f"{out['protocol'] or 'any'}): row {earlier} already has it"))
            return out, findings
        # Stored edges share one string per application and port: a million edges
        # over a few thousand applications should not hold a million name copies.
        keys = self._keys
        source_key = keys.setdefault(source_key, source_key)
        target_key = keys.setdefault(target_key, target_key)
        port = out["port"]
        if port is not None:
            port = keys.setdefault(port, port)
        self._edge_rows[(source_key, target_key, port, out["protocol"])] = row_number
        self._pair_rows.setdefault((source_key, target_key), row_number)
        self._connected.add(source_key)
        self._connected.add(target_key)
        return out, findings

    @staticmethod
    def _port_protocol(row_number: int, out: dict[str, str | None], findings: list[Finding]) -> None:
        transport: str | None = None
        value = out["port"]
        if value is not None:
            m = _PORT.fullmatch(value)
            port = int(m.group(1)) if m is not None else 0
            if not 1 <= port <= 65535:
                findings.append(finding(INVALID_PORT, row_number, "port",
                                        f"port {value!r} is not a port: expected a whole number from 1 to "
                                        "65535, optionally with /tcp or /udp (e.g. 443 or 443/tcp)", value))
            else:
                out["port"] = str(port)
                transport = m.group(2).lower() if m is not None and m.group(2) is not None else None
        value = out["protocol"]
        if value is None:
            if transport is not None:
                out["protocol"] = transport.upper()
            return
        protocol = PROTOCOLS.lookup(value)
        if protocol is None:
            findings.append(finding(UNKNOWN_PROTOCOL, row_number, "protocol",
                                    f"protocol {value!r} is not a known protocol: expected one of "
                                    f"{PROTOCOLS.accepted()} (or an alias such as tcp/ip, http/1.1, tls, h2)",
                                    value))
            return
        out["protocol"] = protocol
        if transport is not None and _TRANSPORT[protocol] != transport:
            findings.append(finding(CONFLICTING_PROTOCOL, row_number, "protocol",
                                    f"protocol {value!r} ({protocol}) does not run over {transport.upper()}, "
                                    f"which the port column gives ({out['port']}/{transport})", value))

    def finish(self) -> list[Finding]:
        return self._cycles() + self._orphans()

    def _cycles(self) -> list[Finding]:
        if not self._pair_rows:
            return []
        names = sorted(self._connected)
        ids = {name: i for i, name in enumerate(names)}
        successors: list[set[int]] = [set() for _ in names]
        for source, target in self._pair_rows:
            successors[ids[source]].add(ids[target])
        adjacency = [sorted(succ) for succ in successors]
        first_seen = self._first_seen
        pair_rows = self._pair_rows
        found: list[Finding] = []

        def report(cycle: list[int]) -> None:
            path = _render_path([first_seen[names[node]][2] for node in _shown(cycle)], len(cycle))
            row = pair_rows[(names[cycle[-1]], names[cycle[0]])]
            found.append(finding(CIRCULAR_DEPENDENCY, row, "target", f"circular dependency: {path}", path))

        search = simple_cycles(adjacency, report, limit=CYCLE_LIMIT, budget=_CYCLE_BUDGET)
        if search.stopped == "limit":
            found.append(finding(TOO_MANY_CYCLES, None, None,
                                 f"more than {CYCLE_LIMIT} circular dependencies: the first {CYCLE_LIMIT} "
                                 "are reported, the rest are not"))
        elif search.stopped == "budget":
            found.append(finding(TOO_MANY_CYCLES, None, None,
                                 f"the dependency graph is too entangled to list every cycle: "
                                 f"{search.reported} circular dependencies are reported, more may exist"))
        return found

    def _orphans(self) -> list[Finding]:
        connected = self._connected
        return [
            finding(ORPHANED_APPLICATION, row, column,
                    f"application {name!r} takes part in no valid dependency: every row naming it has an "
                    "error", name)
            for key, (row, column, name) in self._first_seen.items()
            if key not in connected
        ]


def _shown(cycle: list[int]) -> list[int]:
    """The nodes of a cycle that its rendering shows: all, or the two ends of a long one."""
    if len(cycle) > _PATH_SHOWN:
        head = _PATH_SHOWN // 2
        return [*cycle[:head], *cycle[head - _PATH_SHOWN:]]
    return cycle


def _render_path(names: list[str], length: int) -> str:
    """'a → b → c → a'; a cycle longer than the names given says how much was elided."""
    if length > len(names):
        head = len(names) // 2
        names = [*names[:head], f"… ({length - len(names)} more) …", *names[head:]]
    return " → ".join([*names, names[0]])
