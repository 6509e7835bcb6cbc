"""Migration 0010: cells staged before the enricher trimmed them are trimmed as it now stages them."""

from __future__ import annotations

import uuid

import psycopg
from alembic import command
from alembic.config import Config

from tributary_runtime.staging import staged_rows_copy


def test_rows_staged_untrimmed_are_trimmed_as_staging_now_trims_them(empty_database_url: str,
                                                                      migrations: Config) -> None:
    command.upgrade(migrations, "0009")
    import_id = uuid.uuid4()
    rows = [[" web-01 ", "", "10.0.0.1", None, "   "], ["db-01", "a b", "x", None, "y"], ["", " ", "c", "d ", None]]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        conn.execute("INSERT INTO staged_batches VALUES (%s, 1, %s, 3, 'd')", (import_id, ["a", "b", "c", "d", "e"]))
        with conn.cursor().copy("COPY staged_rows (import_id, row_number, batch_seq, cells) FROM STDIN") as copy:
            copy.write(staged_rows_copy(import_id, 1, [1, 2, 3], rows))

    def staged() -> list[list[str | None]]:
        with psycopg.connect(empty_database_url) as conn:
            return [r[0] for r in conn.execute("SELECT cells FROM enricher.staged_rows ORDER BY row_number")]

    assert staged() == rows
    command.upgrade(migrations, "0010")
    trimmed = [["web-01", None, "10.0.0.1", None, None], ["db-01", "a b", "x", None, "y"], [None, None, "c", "d", None]]
    assert staged() == trimmed
    # What the enricher stages now for the same rows.
    assert staged_rows_copy(import_id, 1, [1, 2, 3], rows, trim_cells=True) == \
        staged_rows_copy(import_id, 1, [1, 2, 3], trimmed)
    command.downgrade(migrations, "0009")
    assert staged() == trimmed
