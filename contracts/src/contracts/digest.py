"""Batch digests and import checksums.

A stage publishes batches, then a completion marker carrying the checksum of all of
them; the next stage recomputes it from what it staged to know it has everything.
The checksum is order-independent across batches (partitions may interleave) but
binds each digest to its batch_seq.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import orjson

# Cells of these types are written by orjson exactly as by the json.dumps call that defines the
# digest (compact, UTF-8, the same escapes); floats are not (1e-05 against 0.00001, NaN against null).
_ORJSON_EXACT = frozenset({str, int, bool, type(None)})


def _rows_json(rows: Sequence[Sequence[Any]]) -> bytes:
    """The rows as ``json.dumps(rows, separators=(",", ":"), ensure_ascii=False, default=str)``
    encodes them. orjson writes a 1,000-row batch of text in a tenth of the time; rows holding any
    other type, or an integer beyond 64 bits (orjson refuses it), go through json.dumps."""
    if set(map(type, chain.from_iterable(rows))) <= _ORJSON_EXACT:
        try:
            return orjson.dumps(rows)
        except TypeError:
            pass
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def batch_digest(batch_seq: int, row_numbers: Sequence[int], rows: Sequence[Sequence[Any]]) -> str:
    h = hashlib.sha256()
    h.update(str(batch_seq).encode())
    h.update(json.dumps(list(row_numbers), separators=(",", ":")).encode())
    h.update(_rows_json(rows))
    return h.hexdigest()


def import_checksum(digests: Iterable[tuple[int, str]]) -> str:
    h = hashlib.sha256()
    for seq, digest in sorted(digests):
        h.update(f"{seq}:{digest};".encode())
    return h.hexdigest()
