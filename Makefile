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
	@# the real images and videos that ship in Debian packages (data/SOURCES.md), unpacked, not installed
	$(BIN)/python -m dimp_core.data.real --fetch || echo "warning: Debian sources not unpacked; real-val needs them"
	touch $(STAMP)

install: $(STAMP)

# options after REPORT_ARGS=, e.g. make report REPORT_ARGS="--preset full" or "--only 02,04 --threads 1"
report: $(STAMP)
	$(BIN)/python -m dimp_core.report $(REPORT_ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Reproduce the shipped weights from the configuration and seed recorded in each file (docs/training.md):
# the dimp and atom files are chains of `gpu`-preset runs (dimp 2000 + 500 + 2400 steps of 16, atom 2000 + 2400 +
# 2400), each run retrained from its recorded configuration, the earlier ones first (some 10-15 minutes on an
# H200, 6 to 14 hours on the 2-core CPU); siamfc is the plain `gpu` preset (~60 min on the 2-core CPU).
# WEIGHTS_WORKERS data workers.
# WEIGHTS_PRESET=cpu trains the under-an-hour CPU schedule instead (the `cpu` rows of the training table).
WEIGHTS_PRESET ?= recorded
WEIGHTS_WORKERS ?= 0
weights: $(STAMP)
ifeq ($(WEIGHTS_PRESET),recorded)
	for t in dimp atom siamfc; do \
	  $(BIN)/python tools/reproduce_weights.py $$t --workers $(WEIGHTS_WORKERS) || exit 1; \
	done
else
	for t in dimp atom siamfc; do \
	  $(BIN)/dimp train --tracker $$t --preset $(WEIGHTS_PRESET) --seed 0 --out results/train/$$t-$(WEIGHTS_PRESET) \
	    --set '{"pool_cache": "results/pool"}' && \
	  $(BIN)/python tools/ship_weights.py results/train/$$t-$(WEIGHTS_PRESET)/$$t.safetensors && \
	  cp results/train/$$t-$(WEIGHTS_PRESET)/log.jsonl data/weights/$$t.log.jsonl || exit 1; \
	done
endif
	$(BIN)/python tools/make_training_table.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) reports results
