# Set-up and entry points. `make demo` and `make test` work on a fresh machine: each creates
# .venv if it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_OMNIGLOT := $(abspath ../shared/data/omniglot)

# Tests and the demo read the shared Omniglot copy when it exists (read-only is fine).
ifneq ($(wildcard $(SHARED_OMNIGLOT)/images_background.npz),)
export MANN_DATA_DIR ?= $(SHARED_OMNIGLOT)
endif
export WANDB_MODE ?= offline
export PYTHONUNBUFFERED := 1

.PHONY: install demo continual-demo test test-fast test-long lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## The main job: train the demo MANN (about 5 minutes on 2 cores), then test it and print the table.
demo: install
	$(BIN)/mann fit --config configs/demo.yaml
	$(BIN)/mann test --config configs/demo.yaml --ckpt_path runs/demo/checkpoints/best.ckpt

## The continual demo: a 4-experience alphabet stream with Avalanche (about 5 minutes on 2 cores).
continual-demo: install
	$(BIN)/mann-continual --config configs/continual_demo.yaml

## Lint, then the whole test suite, slow tests included; the multi-minute demo runs (marked
## long) are left to `make test-long`.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -m "not long"

## The tests marked long: demo configs end to end (about 5 minutes each on 2 cores).
test-long: install
	$(BIN)/python -m pytest -q -m long

## The suite without the tests marked slow, for quick iterations.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/sampling.py

clean:
	rm -rf runs lightning_logs wandb .pytest_cache
