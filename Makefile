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

# options after REPORT_ARGS=, e.g. make report REPORT_ARGS="--preset full" or "--only 02,04 --threads 1"
report: $(STAMP)
	$(BIN)/python -m dimp_core.report $(REPORT_ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Reproduce the shipped weights from their recorded preset and seed (README, "Training and shipped weights"):
# the `gpu` preset for all three trackers. On a GPU machine dimp and atom take ~4 min each (tools/gpu_train.sh
# trains them together with the ablations); on a CPU the same command runs, slowly (siamfc: ~40 min on 2 cores).
# WEIGHTS_PRESET=cpu trains the under-an-hour CPU schedule instead.
WEIGHTS_PRESET ?= gpu
weights: $(STAMP)
	for t in dimp atom siamfc; do \
	  $(BIN)/dimp train --tracker $$t --preset $(WEIGHTS_PRESET) --seed 0 --out results/train/$$t-$(WEIGHTS_PRESET) \
	    --set '{"pool_cache": "results/pool"}' && \
	  $(BIN)/python tools/ship_weights.py results/train/$$t-$(WEIGHTS_PRESET)/$$t.safetensors && \
	  cp results/train/$$t-$(WEIGHTS_PRESET)/log.jsonl data/weights/$$t.log.jsonl || exit 1; \
	done
	$(BIN)/python tools/make_training_table.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) reports results
