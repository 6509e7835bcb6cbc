"""Cycle enumeration for the dependency graph: Tarjan's SCCs and Johnson's elementary circuits.

Both are iterative (no recursion limit on 20k-node components) and deterministic: nodes
are integers, and a cycle is reported starting at its smallest node, so when node ids
follow name order each cycle comes out rotated to its lexicographically smallest name,
exactly once. Enumeration stops at a cycle limit or a work budget, whichever comes
first, because a dense graph can have exponentially many cycles.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal


def strongly_connected_components(nodes: Iterable[int], adjacency: Sequence[Sequence[int]],
                                  allowed: set[int] | None = None) -> list[list[int]]:
    """Tarjan's SCCs of the subgraph induced by ``allowed`` (all nodes when None), iteratively."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(adjacency[root]))]
        while work:
            node, successors = work[-1]
            for succ in successors:
                if allowed is not None and succ not in allowed:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(adjacency[succ])))
                    break
                if succ in on_stack and index[succ] < low[node]:
                    low[node] = index[succ]
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    if low[node] < low[parent]:
                        low[parent] = low[node]
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


@dataclass
class CycleSearch:
    """The outcome of ``simple_cycles``.

    ``reported`` cycles were passed to the callback. ``stopped`` is None when those
    were all the cycles, "limit" when more than ``limit`` exist, "budget" when the work
    budget ran out first (more may exist).
    """

    reported: int = 0
    stopped: Literal["limit", "budget"] | None = None
    # Work done so far, in edge visits.
    spent: int = 0


def simple_cycles(adjacency: Sequence[Sequence[int]], on_cycle: Callable[[list[int]], None], *, limit: int,
                  budget: int) -> CycleSearch:
    """Johnson's elementary circuits of a graph without self-loops, smallest start node first.

    ``adjacency[v]`` lists v's successors. Each cycle is handed to ``on_cycle`` as a
    node list starting at its smallest node (the closing edge back to it implied);
    the list is reused afterwards, so the callback copies what it keeps (a cycle can
    be thousands of nodes long: keeping only what is needed bounds memory). Cycles
    come ordered by start node. ``budget`` bounds the edge visits spent, so a
    pathological graph cannot stall the import.
    """
    search = CycleSearch(spent=len(adjacency))
    heap: list[tuple[int, list[int]]] = [
        (min(component), component)
        for component in strongly_connected_components(range(len(adjacency)), adjacency)
        if len(component) > 1
    ]
    heapq.heapify(heap)
    while heap:
        if search.spent >= budget:
            # Every component left holds a cycle, so some go unreported.
            search.stopped = "budget"
            break
        start, component = heapq.heappop(heap)
        members = set(component)
        sub = {node: [succ for succ in adjacency[node] if succ in members] for node in component}
        search.spent += len(component)
        _circuits_from(start, sub, on_cycle, search, limit, budget)
        if search.stopped is not None:
            break
        members.discard(start)
        for piece in strongly_connected_components(sorted(members), adjacency, members):
            if len(piece) > 1:
                heapq.heappush(heap, (min(piece), piece))
        search.spent += len(sub)
    return search


def _circuits_from(start: int, sub: dict[int, list[int]], on_cycle: Callable[[list[int]], None],
                   search: CycleSearch, limit: int, budget: int) -> None:
    """Johnson's CIRCUIT procedure from ``start`` within one SCC, iteratively."""
    blocked: set[int] = {start}
    closed: set[int] = set()
    blocked_by: dict[int, set[int]] = {}
    path = [start]
    spent = search.spent
    # Successors are consumed from the end, so reverse them to visit in ascending order.
    stack: list[tuple[int, list[int]]] = [(start, sub[start][::-1])]
    while stack:
        node, pending = stack[-1]
        if pending:
            succ = pending.pop()
            spent += 1
            if succ == start:
                if search.reported == limit:
                    # A cycle past the limit: what tells "exactly limit" from "more".
                    search.stopped = "limit"
                    break
                search.reported += 1
                on_cycle(path)
                closed.update(path)
            elif succ not in blocked:
                path.append(succ)
                stack.append((succ, sub[succ][::-1]))
                closed.discard(succ)
                blocked.add(succ)
                continue
            if spent >= budget:
                search.stopped = "budget"
                break
        if not pending:
            if node in closed:
                _unblock(node, blocked, blocked_by)
            else:
                for succ in sub[node]:
                    blocked_by.setdefault(succ, set()).add(node)
            stack.pop()
            path.pop()
    search.spent = spent


def _unblock(node: int, blocked: set[int], blocked_by: dict[int, set[int]]) -> None:
    pending = {node}
    while pending:
        current = pending.pop()
        if current in blocked:
            blocked.remove(current)
            waiting = blocked_by.get(current)
            if waiting:
                pending.update(waiting)
                waiting.clear()
