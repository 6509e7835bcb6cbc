from tributary_runtime.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    http_port: int = 8001
    # Uploads larger than this are refused with 413 before anything is published.
    max_upload_bytes: int = 1024 * 1024 * 1024
    batch_rows: int = 1000
