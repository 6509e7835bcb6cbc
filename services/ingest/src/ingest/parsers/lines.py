"""Reading a binary upload line by line as strictly decoded UTF-8 text.

Decoding each physical line ourselves (instead of wrapping the stream in
``io.TextIOWrapper``) is what lets an encoding error name the line it is on: a
text wrapper decodes 8 KiB chunks and only knows the offset inside a chunk.
Splitting on ``b"\\n"`` is safe for UTF-8 because that byte never occurs inside a
multi-byte sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .errors import UploadRejected

UTF8_BOM = b"\xef\xbb\xbf"

# One physical line is held in memory at a time; this bounds it for files without
# newlines (a binary blob renamed to .csv) while leaving room for very wide rows.
MAX_LINE_BYTES = 1024 * 1024


class LineReader:
    """Iterates decoded lines (line endings kept) and tracks the physical line number.

    ``line_no`` is the number of the last line handed out. Once the caller has read
    its header it sets ``header_line``; errors found after that carry
    ``row = line - header_line`` so they use the same row numbers as the records.
    """

    def __init__(self, stream: BinaryIO, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._stream = stream
        self._max_line_bytes = max_line_bytes
        self.line_no = 0
        self.header_line: int | None = None

    def row_of(self, line: int) -> int | None:
        if self.header_line is None or line <= self.header_line:
            return None
        return line - self.header_line

    def __iter__(self) -> Iterator[str]:
        while True:
            raw = self._stream.readline(self._max_line_bytes + 1)
            if not raw:
                return
            self.line_no += 1
            yield self._decode(raw)

    def _decode(self, raw: bytes) -> str:
        line = self.line_no
        if len(raw) > self._max_line_bytes:
            raise UploadRejected(
                "line_too_long",
                f"Line {line} is longer than {self._max_line_bytes // 1024} KiB, so the file is probably not a text file.",
                row=self.row_of(line),
            )
        if line == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UploadRejected(
                "encoding",
                f"The file is not valid UTF-8 at line {line} (byte 0x{raw[exc.start]:02X} at position "
                f"{exc.start + 1}); save it as UTF-8 and upload it again.",
                row=self.row_of(line),
            ) from None
