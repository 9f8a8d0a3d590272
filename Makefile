# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py sandbox/setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e ./sandbox
	touch $@

## the whole hub on the embedded default (SQLite + simulators + relay + Dagster UI)
run: install
	$(BIN)/carinho run

## the test suite (PostgreSQL on 127.0.0.1:5432 or CARINHO_TEST_PG_URL)
test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/fanout_latency.py

clean:
	rm -rf $(VENV) .carinho *.egg-info
