# `make run` starts Pulse locally; `make test` runs the whole suite. Both set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint bench clean soak fuzz

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/pulse dev

test: install
	$(BIN)/lint-imports
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/write_path.py

fuzz: install
	PULSE_FUZZ=long $(BIN)/pytest -q tests/fuzz

soak: install
	$(BIN)/python bench/soak.py --check

clean:
	rm -rf $(VENV) .pulse .pytest_cache .hypothesis
