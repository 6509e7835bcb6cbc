"""Pass 1's normalised rows come back to pass 2 in row order, from memory or from the temp file."""

from __future__ import annotations

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
