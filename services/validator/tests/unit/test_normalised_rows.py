"""Pass 1's normalised rows come back to pass 2 in row order, from memory or from the temp file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from validator.normalised_rows import NormalisedRows


def chunks(sizes: list[int]) -> list[list[tuple[int, dict[str, object]]]]:
    out, n = [], 0
    for size in sizes:
        out.append([(n + i + 1, {"hostname": f"h{n + i + 1}", "cpu_cores": n + i, "ips": ["10.0.0.1"], "x": None})
                    for i in range(size)])
        n += size
    return out


@pytest.mark.parametrize("sizes", [[], [3], [5], [5, 5], [5, 2, 5, 1], [1, 1, 1, 1, 1, 1, 1]])
def test_rows_come_back_in_the_order_added_whether_held_or_spilled(sizes: list[int], tmp_path: Path) -> None:
    added = chunks(sizes)
    with NormalisedRows(5, str(tmp_path)) as rows:
        for chunk in added:
            rows.extend(chunk)
        expected = [row for chunk in chunks(sizes) for row in chunk]
        assert list(rows) == expected
        assert list(rows) == expected  # read again
        assert rows.spilled is (sum(sizes) > 5)
    assert not rows.spilled and list(tmp_path.iterdir()) == []


def test_nothing_is_kept_where_a_rows_normalisation_is_not_its_own() -> None:
    with NormalisedRows(5, keep=False) as rows:
        rows.extend(chunks([10])[0])
        assert not rows.kept and not rows.spilled
        with pytest.raises(RuntimeError, match="read the staged rows"):
            list(rows)


def test_a_file_that_cannot_be_written_is_given_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with NormalisedRows(5, str(tmp_path / "missing")) as rows:
        rows.extend(chunks([4])[0])
        assert rows.kept
        rows.extend(chunks([4, 4])[1])
        assert not rows.kept and not rows.spilled
        rows.extend(chunks([4, 4, 4])[2])
        with pytest.raises(RuntimeError):
            list(rows)
    assert "checks the staged rows again" in caplog.text


def test_a_file_that_would_outgrow_its_bound_is_given_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with NormalisedRows(5, str(tmp_path), max_bytes=2_000) as rows:
        rows.extend(chunks([6])[0])  # spilled: well under 2,000 bytes
        assert rows.kept and rows.spilled
        for chunk in chunks([6, 30, 30])[1:]:
            rows.extend(chunk)
        assert not rows.kept and not rows.spilled
    assert "more than 2000 bytes" in caplog.text and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sizes", [[3], [5, 5, 2]])
def test_rows_another_process_checked_come_before_those_added_here(sizes: list[int], tmp_path: Path) -> None:
    # The first-half worker's file (validator.first_half): pickled chunks, the rows before ours.
    first, ours = chunks([4, 3]), chunks([7, *sizes])[1:]
    path = tmp_path / "worker-rows"
    with path.open("wb") as fh:
        for chunk in first:
            pickle.dump(chunk, fh)
    with NormalisedRows(5, str(tmp_path / "spill")) as rows:
        (tmp_path / "spill").mkdir()
        for chunk in ours:
            rows.extend(chunk)
        rows.put_first(str(path))
        assert not path.exists()  # ours now, anonymous
        expected = [row for chunk in (*first, *ours) for row in chunk]
        assert [n for n, _ in rows] == list(range(1, 8 + sum(sizes)))
        assert list(rows) == expected


def test_a_file_put_first_is_removed_when_no_rows_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "worker-rows"
    path.write_bytes(pickle.dumps(chunks([2])[0]))
    with NormalisedRows(5, str(tmp_path), keep=False) as rows:
        rows.put_first(str(path))
    assert list(tmp_path.iterdir()) == []
