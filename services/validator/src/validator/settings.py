from tributary_runtime.settings import ServiceSettings


class ValidatorSettings(ServiceSettings):
    http_port: int = 8002
    # An import whose share of invalid rows exceeds this fails instead of completing with errors.
    max_error_rate: float = 0.5
    validated_batch_rows: int = 1000
    # Staged rows are validated and republished in chunks of this size (bounded memory).
    validation_chunk_rows: int = 5000
