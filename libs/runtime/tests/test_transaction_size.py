"""A poll's messages are applied in transactions bounded by bytes (bulk batches decoded at once held
hundreds of MB), each keeping the poll's order."""

from __future__ import annotations

from types import SimpleNamespace

from tributary_runtime.consumer import by_size


def messages(*sizes: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(offset=i, value=b"x" * n) for i, n in enumerate(sizes)]


def offsets(chunks: list[list[SimpleNamespace]]) -> list[list[int]]:
    return [[m.offset for m in chunk] for chunk in chunks]


def test_runs_stay_under_the_budget_in_order() -> None:
    assert offsets(list(by_size(messages(4, 4, 4, 4, 4), 10))) == [[0, 1], [2, 3], [4]]


def test_a_message_larger_than_the_budget_is_a_transaction_of_its_own() -> None:
    assert offsets(list(by_size(messages(2, 50, 2, 2), 10))) == [[0], [1], [2, 3]]


def test_small_events_stay_together_and_tombstones_count_nothing() -> None:
    batch = messages(*[100] * 500) + [SimpleNamespace(offset=500, value=None)]
    assert offsets(list(by_size(batch, 8 * 1024 * 1024))) == [list(range(501))]
    assert list(by_size([], 10)) == []
