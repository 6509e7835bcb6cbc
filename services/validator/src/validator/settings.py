from tributary_runtime.settings import ServiceSettings


class ValidatorSettings(ServiceSettings):
    http_port: int = 8002
    # Default verdict threshold: an import whose share of invalid rows exceeds this fails
    # instead of completing with errors. A tenant can override it per category (policies).
    max_error_rate: float = 0.5
    validated_batch_rows: int = 1000
    # Staged rows are validated and republished in chunks of this size (bounded memory).
    validation_chunk_rows: int = 5000
    # Where pass 1 keeps the normalised rows of an import larger than a chunk for pass 2: an
    # anonymous temp file (a 1M-row CMDB export: about 140 MB), in the system's temp directory
    # unless set. Past the bound pass 2 reads and checks the staged rows again instead.
    validation_spill_dir: str | None = None
    validation_spill_max_bytes: int = 1 << 30
    # From this many rows a worker process checks the first half of an import's rows in pass 1,
    # where the category's checker takes each row on its own (validator.first_half); 0: never.
    # Below it, starting the process (about a second of CPU) costs more than it saves.
    validation_worker_from_rows: int = 200_000

    # LLM review agent: off unless a model is configured (any litellm model name).
    llm_model: str | None = None
    llm_sample_rows: int = 20
    llm_budget_usd: float = 0.05
    llm_timeout_s: float = 20.0
    # Passed to litellm's mock_response: a canned answer for tests and offline demos.
    llm_mock_response: str | None = None
