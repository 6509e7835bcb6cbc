"""Batch digests and import checksums.

A stage publishes batches, then a completion marker carrying the checksum of all of
them; the next stage recomputes it from what it staged to know it has everything.
The checksum is order-independent across batches (partitions may interleave) but
binds each digest to its batch_seq.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any


def batch_digest(batch_seq: int, row_numbers: Sequence[int], rows: Sequence[Sequence[Any]]) -> str:
    h = hashlib.sha256()
    h.update(str(batch_seq).encode())
    h.update(json.dumps(list(row_numbers), separators=(",", ":")).encode())
    h.update(json.dumps(rows, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    return h.hexdigest()


def import_checksum(digests: Iterable[tuple[int, str]]) -> str:
    h = hashlib.sha256()
    for seq, digest in sorted(digests):
        h.update(f"{seq}:{digest};".encode())
    return h.hexdigest()
