import itertools
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from contracts import Category
from validator.rules import Finding, RowChecker, app_discovery, checker_for
from validator.rules.graph import simple_cycles, strongly_connected_components

REFERENCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Brief = tuple[int | None, str | None, str, str, str | None]


def new() -> RowChecker:
    return checker_for(Category.APP_DISCOVERY, reference_time=REFERENCE)


def brief(findings: list[Finding]) -> list[Brief]:
    return [(f.row_number, f.column, f.rule_id, f.severity, f.value) for f in findings]


def run(rows: Sequence[Mapping[str, str | None]], first_row: int = 2) -> tuple[list[Brief], list[Finding]]:
    """Row findings (brief) of every row, then the findings of finish()."""
    checker = new()
    found: list[Finding] = []
    for number, row in enumerate(rows, start=first_row):
        found += checker.check(number, row)[1]
    return brief(found), checker.finish()


def edges(*pairs: str) -> list[dict[str, str | None]]:
    return [{"source": pair.split(">")[0], "target": pair.split(">")[1]} for pair in pairs]


def test_a_valid_row_is_normalised() -> None:
    out, findings = new().check(2, {"source": " Payroll API ", "target": "HR-DB", "port": "443/tcp",
                                    "protocol": " ", "criticality": "Tier 0", "confidence": "85%",
                                    "dependency_type": "calls", "source_type": "application", "zone": "dmz"})
    assert findings == []
    assert out == {"source": "Payroll API", "target": "HR-DB", "source_type": "application", "target_type": None,
                   "port": "443", "protocol": "TCP", "dependency_type": "calls", "criticality": "critical",
                   "confidence": "0.85", "zone": "dmz"}


def test_blank_or_absent_ends_are_required() -> None:
    row_findings, _ = run([{"source": "  ", "port": "80"}])
    assert row_findings == [(2, "source", "required_value", "error", None),
                            (2, "target", "required_value", "error", None)]


def test_an_application_depending_on_itself_is_an_error_case_insensitively() -> None:
    row_findings, _ = run([{"source": "Payroll", "target": "PAYROLL "}])
    assert row_findings == [(2, "target", "self_dependency", "error", "PAYROLL")]


@pytest.mark.parametrize("port", ["0", "65536", "https", "80-90", "443/sctp", "-1", "44 3", "8080.5"])
def test_ports_that_are_not_1_to_65535_are_errors(port: str) -> None:
    row_findings, _ = run([{"source": "a", "target": "b", "port": port}])
    assert row_findings == [(2, "port", "invalid_port", "error", port)]


@pytest.mark.parametrize(("port", "protocol", "normalised"), [
    ("1", None, ("1", None)), ("65535", "udp", ("65535", "UDP")), ("443.0", "https", ("443", "HTTPS")),
    ("53/UDP", None, ("53", "UDP")), ("443 / tcp", "HTTPS", ("443", "HTTPS")), ("0443", "tcp", ("443", "TCP")),
    (None, "ping", (None, "ICMP")), (None, "h2", (None, "GRPC")),
])
def test_ports_and_protocols_are_normalised(port: str | None, protocol: str | None,
                                            normalised: tuple[str | None, str | None]) -> None:
    out, findings = new().check(2, {"source": "a", "target": "b", "port": port, "protocol": protocol})
    assert findings == []
    assert (out["port"], out["protocol"]) == normalised


def test_an_unknown_protocol_is_an_error() -> None:
    row_findings, _ = run([{"source": "a", "target": "b", "protocol": "carrier pigeon"}])
    assert row_findings == [(2, "protocol", "unknown_protocol", "error", "carrier pigeon")]


def test_a_transport_on_the_port_that_contradicts_the_protocol_is_an_error() -> None:
    checker = new()
    out, findings = checker.check(2, {"source": "a", "target": "b", "port": "443/udp", "protocol": "HTTPS"})
    assert brief(findings) == [(2, "protocol", "conflicting_protocol", "error", "HTTPS")]
    assert findings[0].message == ("protocol 'HTTPS' (HTTPS) does not run over UDP, which the port column gives "
                                   "(443/udp)")
    assert (out["port"], out["protocol"]) == ("443", "HTTPS")


def test_unknown_criticality_is_a_warning_and_kept() -> None:
    checker = new()
    out, findings = checker.check(2, {"source": "a", "target": "b", "criticality": "sort of"})
    assert brief(findings) == [(2, "criticality", "unknown_criticality", "warning", "sort of")]
    assert out["criticality"] == "sort of"


@pytest.mark.parametrize("confidence", ["high", "101", "-0.1", "150%"])
def test_confidence_outside_0_to_1_or_0_to_100_percent_is_an_error(confidence: str) -> None:
    row_findings, _ = run([{"source": "a", "target": "b", "confidence": confidence}])
    assert row_findings == [(2, "confidence", "invalid_confidence", "error", confidence)]


def test_a_repeated_edge_is_a_warning_naming_the_first_valid_row() -> None:
    checker = new()
    rows = [
        {"source": "a", "target": "b", "port": "443", "protocol": "tcp", "confidence": "nope"},  # error: no edge
        {"source": "A", "target": "B", "port": "443", "protocol": "TCP"},
        {"source": "a", "target": "b", "port": "443", "protocol": "tcp/ip"},
        {"source": "a", "target": "b", "port": "443", "protocol": "tcp", "criticality": "???"},
        {"source": "a", "target": "b", "port": "8443", "protocol": "tcp"},
        {"source": "b", "target": "a", "port": "443", "protocol": "tcp"},
        {"source": "a", "target": "b", "port": "443", "protocol": "udp", "confidence": "nope"},
    ]
    found = [checker.check(number, row)[1] for number, row in enumerate(rows, start=2)]
    assert [brief(f) for f in found] == [
        [(2, "confidence", "invalid_confidence", "error", "nope")],
        [],
        [(4, None, "duplicate_edge", "warning", None)],
        [(5, "criticality", "unknown_criticality", "warning", "???"),
         (5, None, "duplicate_edge", "warning", None)],
        [],
        [],
        [(8, "confidence", "invalid_confidence", "error", "nope")],
    ]
    assert found[2][0].message == "duplicate dependency a → b (port 443, protocol TCP): row 3 already has it"


def test_a_cycle_is_reported_once_rotated_to_its_smallest_name_on_the_edge_closing_it() -> None:
    row_findings, at_finish = run(edges("Web>Orders", "orders>Billing", "billing>web", "ORDERS>billing"))
    assert row_findings == [(5, None, "duplicate_edge", "warning", None)]
    assert brief(at_finish) == [(3, "target", "circular_dependency", "warning", "Billing → Web → Orders → Billing")]
    assert at_finish[0].message == "circular dependency: Billing → Web → Orders → Billing"


def test_the_closing_edge_is_its_earliest_valid_row() -> None:
    rows: list[Mapping[str, str | None]] = [
        {"source": "b", "target": "a", "port": "1", "confidence": "bad"},
        *edges("a>b"),
        {"source": "b", "target": "a", "port": "2"},
        {"source": "b", "target": "a", "port": "1"}]
    _, at_finish = run(rows)
    assert brief(at_finish) == [(4, "target", "circular_dependency", "warning", "a → b → a")]


def test_every_elementary_cycle_is_reported_exactly_once() -> None:
    rows = edges("a>b", "b>a", "b>c", "c>a", "c>d", "d>c", "x>y", "y>z", "z>x", "a>x")
    _, at_finish = run(rows)
    assert brief(at_finish) == [
        (3, "target", "circular_dependency", "warning", "a → b → a"),
        (5, "target", "circular_dependency", "warning", "a → b → c → a"),
        (7, "target", "circular_dependency", "warning", "c → d → c"),
        (10, "target", "circular_dependency", "warning", "x → y → z → x"),
    ]


def test_rows_with_errors_take_no_part_in_cycles_and_their_only_apps_are_orphans() -> None:
    rows: list[Mapping[str, str | None]] = [
        *edges("a>b"), {"source": "b", "target": "a", "port": "99999"},
        {"source": "Lonely", "target": "lonely"}, {"source": "c", "target": "Ghost", "protocol": "smoke"},
        *edges("c>d")]
    row_findings, at_finish = run(rows)
    assert row_findings == [(3, "port", "invalid_port", "error", "99999"),
                            (4, "target", "self_dependency", "error", "lonely"),
                            (5, "protocol", "unknown_protocol", "error", "smoke")]
    assert brief(at_finish) == [(4, "source", "orphaned_application", "warning", "Lonely"),
                                (5, "target", "orphaned_application", "warning", "Ghost")]
    assert at_finish[0].message == ("application 'Lonely' takes part in no valid dependency: every row naming it "
                                    "has an error")


def test_an_app_named_first_in_an_error_row_but_later_in_a_valid_one_is_no_orphan() -> None:
    _, at_finish = run([{"source": "a", "target": "b", "port": "0"}, *edges("b>c")])
    assert brief(at_finish) == [(2, "source", "orphaned_application", "warning", "a")]


def test_past_the_cycle_limit_one_import_level_warning_says_how_many_were_reported() -> None:
    names = [f"app{i}" for i in range(7)]
    rows = edges(*(f"{s}>{t}" for s, t in itertools.permutations(names, 2)))  # 2365 cycles
    _, at_finish = run(rows)
    assert len(at_finish) == app_discovery.CYCLE_LIMIT + 1
    assert all(f.rule_id == "circular_dependency" for f in at_finish[:-1])
    assert len({f.value for f in at_finish[:-1]}) == app_discovery.CYCLE_LIMIT
    assert brief(at_finish[-1:]) == [(None, None, "too_many_cycles", "warning", None)]
    assert at_finish[-1].message == ("more than 1000 circular dependencies: the first 1000 are reported, "
                                     "the rest are not")


def test_exactly_the_limit_is_not_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = edges("a>b", "b>a", "b>c", "c>b", "c>d", "d>c")
    monkeypatch.setattr(app_discovery, "CYCLE_LIMIT", 3)
    assert [f.rule_id for f in run(rows)[1]] == ["circular_dependency"] * 3
    monkeypatch.setattr(app_discovery, "CYCLE_LIMIT", 2)
    assert [f.rule_id for f in run(rows)[1]] == ["circular_dependency"] * 2 + ["too_many_cycles"]


def test_a_search_out_of_budget_says_more_may_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"app{i}" for i in range(7)]
    monkeypatch.setattr(app_discovery, "_CYCLE_BUDGET", 200)
    _, at_finish = run(edges(*(f"{s}>{t}" for s, t in itertools.permutations(names, 2))))
    assert 0 < len(at_finish) - 1 < 200
    assert brief(at_finish[-1:]) == [(None, None, "too_many_cycles", "warning", None)]
    assert at_finish[-1].message.endswith(f"{len(at_finish) - 1} circular dependencies are reported, more may exist")


def test_a_cycle_through_twenty_thousand_apps_needs_no_recursion_and_is_shown_elided() -> None:
    names = [f"app{i:05d}" for i in range(20_000)]
    rows = edges(*(f"{names[i]}>{names[(i + 1) % len(names)]}" for i in range(len(names))))
    _, at_finish = run(rows)
    assert brief(at_finish) == [(20_001, "target", "circular_dependency", "warning", at_finish[0].value)]
    assert at_finish[0].value == " → ".join(
        [*names[:25], "… (19950 more) …", *names[-25:], names[0]])


def _brute_force_cycles(adjacency: list[list[int]]) -> set[tuple[int, ...]]:
    """Every elementary cycle by trying every simple path from its smallest node."""
    cycles: set[tuple[int, ...]] = set()
    for start in range(len(adjacency)):
        paths = [[start]]
        while paths:
            path = paths.pop()
            for succ in adjacency[path[-1]]:
                if succ == start:
                    cycles.add(tuple(path))
                elif succ > start and succ not in path:
                    paths.append([*path, succ])
    return cycles


@pytest.mark.parametrize("seed", range(30))
def test_johnson_finds_exactly_the_elementary_cycles(seed: int) -> None:
    rnd = random.Random(seed)
    size = rnd.randint(2, 8)
    adjacency = [sorted({t for t in range(size) if t != s and rnd.random() < 0.35}) for s in range(size)]
    cycles: list[tuple[int, ...]] = []
    search = simple_cycles(adjacency, lambda path: cycles.append(tuple(path)), limit=10_000, budget=10_000_000)
    assert (search.stopped, search.reported) == (None, len(cycles))
    assert len(cycles) == len(set(cycles))
    assert set(cycles) == _brute_force_cycles(adjacency)
    assert all(c[0] == min(c) for c in cycles)
    assert [c[0] for c in cycles] == sorted(c[0] for c in cycles)


def test_the_cycle_limit_and_budget_stop_the_search() -> None:
    complete = [[t for t in range(6) if t != s] for s in range(6)]  # 409 cycles
    everything: list[tuple[int, ...]] = []
    assert simple_cycles(complete, lambda p: everything.append(tuple(p)), limit=409, budget=10**9).stopped is None
    assert len(everything) == 409
    first: list[tuple[int, ...]] = []
    search = simple_cycles(complete, lambda p: first.append(tuple(p)), limit=408, budget=10**9)
    assert (search.stopped, search.reported, first) == ("limit", 408, everything[:408])
    some: list[tuple[int, ...]] = []
    search = simple_cycles(complete, lambda p: some.append(tuple(p)), limit=409, budget=100)
    assert search.stopped == "budget"
    assert 0 < search.reported == len(some) < 409
    assert some == everything[:len(some)]


def test_strongly_connected_components_of_a_deep_chain_are_found_iteratively() -> None:
    size = 50_000
    adjacency = [[i + 1] for i in range(size - 1)] + [[0]]
    assert [len(c) for c in strongly_connected_components(range(size), adjacency)] == [size]
    adjacency[-1] = []
    assert len(strongly_connected_components(range(size), adjacency)) == size
