# The two commands a fresh clone needs: `make run` and `make test`. Both set up .venv first.
SHELL := /bin/bash
BIN := .venv/bin
STAMP := .venv/.installed
# `make run PORT=8001` (or HOST=0.0.0.0, DATA_DIR=elsewhere) changes where the server runs
HOST := 127.0.0.1
PORT := 8000
DATA_DIR := duopass-data

.PHONY: run demo tour test lint typecheck unit conformance bench fuzz clean

$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	./scripts/bootstrap.sh

run: $(STAMP)  ## the issuer server on $(HOST):$(PORT), SQLite in $(DATA_DIR), demo data
	$(BIN)/duopass serve --demo --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

demo: $(STAMP)  ## the lunch rush, self-contained (or: duopass demo --server URL)
	$(BIN)/duopass demo

tour: $(STAMP)  ## the protocol core end to end, no server: codes, QR images, offline verdicts
	$(BIN)/duopass tour --out tour-out

test: lint typecheck unit  ## everything CI runs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

conformance: $(STAMP)  ## the shared tool, as a terminal vendor runs it
	$(BIN)/python ../shared/tools/conform.py $(BIN)/duopass ../shared/vectors/dp1
	$(BIN)/python ../shared/tools/conform.py $(BIN)/duopass ../shared/vectors/dp1 --images

bench: $(STAMP)  ## ratios measured in one run; see README
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.codegen
	$(BIN)/python -m bench.online
	$(BIN)/python -m bench.online --postgres --workers 2
	$(BIN)/python -m bench.threads
	$(BIN)/python -m bench.checkin
	$(BIN)/python -m bench.checkin --postgres
	$(BIN)/python -m bench.reissue
	$(BIN)/python -m bench.reissue --postgres
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.journal
	$(BIN)/python -m bench.fallback
	$(BIN)/python -m bench.anomaly
	$(BIN)/python -m bench.risk

fuzz: $(STAMP)  ## a longer fuzz run than the suite's 100,000 inputs
	$(BIN)/python -m fuzz.dp1 --inputs 5000000

clean:
	rm -rf .venv tour-out duopass-data .mypy_cache .pytest_cache .ruff_cache .hypothesis
