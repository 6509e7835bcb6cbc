"""The collector tuning the services and the rebuild run under."""

from __future__ import annotations

import gc
import weakref

from tributary_runtime.collector import fewer_collections


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_objects_from_before_are_frozen_and_young_collections_are_rarer_until_the_block_ends() -> None:
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    with fewer_collections(young=20_000):
        assert gc.get_threshold() == (20_000, *before[1:])
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_reference_cycle_made_inside_is_still_collected_without_an_explicit_collection() -> None:
    collected: list[bool] = []
    with fewer_collections(young=5_000):
        a, b = Node(), Node()
        a.other, b.other = b, a
        weakref.finalize(a, collected.append, True)
        del a, b
        assert collected == []
        # Allocating (containers alive at once, more than ``young``) is what runs the young collection.
        keep = [[] for _ in range(6_000)]
        assert collected == [True]
        del keep
