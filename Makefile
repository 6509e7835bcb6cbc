# The front door. `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PACKAGES := contracts libs/runtime libs/cli services/ingest services/validator services/enricher services/flow-state
STAMP  := $(VENV)/.installed

.PHONY: install test demo lock dev-up dev-down run schemas asyncapi openapi docs clean bench

$(STAMP): requirements.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest

demo: install
	$(BIN)/tributary demo

run: install
	$(BIN)/tributary run

dev-up: install
	$(BIN)/tributary dev up

dev-down: install
	$(BIN)/tributary dev down

schemas: install asyncapi
	$(BIN)/tributary-contracts export-schemas contracts/schemas

asyncapi: install
	$(BIN)/tributary-contracts export-asyncapi contracts/asyncapi.yaml

openapi: install
	$(BIN)/tributary openapi docs/openapi

docs: install
	$(BIN)/python -m validator.rule_catalog > docs/validation-rules.md

# Throughput and latency of the whole stack (docs/performance.md). SIZES=10k,100k picks the CMDB
# sizes (default 10k,100k,1m); BENCH_* variables tune the rest (python -m bench --help).
bench: install
	$(BIN)/python -m bench $(if $(SIZES),--sizes $(SIZES))

# Re-resolve and hash every third-party dependency (needs network access to PyPI).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile --python-version 3.11 --generate-hashes --quiet requirements.in -o requirements.lock

clean:
	rm -rf $(VENV) .tributary
