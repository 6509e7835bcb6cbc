"""Streaming parsers for uploaded inventory files (CSV/TSV, XLSX, JSON, NDJSON).

``open_upload`` detects the format, checks the header eagerly and returns a
:class:`ParsedFile` whose ``rows`` are produced lazily, so files of any size are
parsed in bounded memory. Every problem the user must fix is an
:class:`UploadRejected` with a stable ``code``.
"""

from .errors import UploadRejected
from .parsed import FileFormat, ParsedFile, Record, Row
from .upload import open_upload

__all__ = ["FileFormat", "ParsedFile", "Record", "Row", "UploadRejected", "open_upload"]
