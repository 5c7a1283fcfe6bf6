# Two commands set up a fresh machine and run everything (README.md):
#   make report   the main job: run the notebook suite on the shipped data and weights
#   make test     the test suite
# Both create or refresh .venv from the project's own files (pyproject.toml) first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test lint install clean weights

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(BIN)/python -m dimp_core.report

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Reproduce the shipped weights from the recorded presets and seeds (CPU: under an hour per tracker).
weights: $(STAMP)
	$(BIN)/dimp train --tracker dimp --preset cpu --seed 0 --out results/train/dimp-cpu --set '{"num_threads": 2}'
	$(BIN)/python tools/ship_weights.py results/train/dimp-cpu/dimp.safetensors
	cp results/train/dimp-cpu/log.jsonl data/weights/dimp.log.jsonl
	$(BIN)/dimp train --tracker atom --preset cpu --seed 0 --out results/train/atom-cpu --set '{"num_threads": 2}'
	$(BIN)/python tools/ship_weights.py results/train/atom-cpu/atom.safetensors
	cp results/train/atom-cpu/log.jsonl data/weights/atom.log.jsonl
	$(BIN)/python tools/make_training_table.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) reports results
