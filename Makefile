# Two commands on a fresh clone: `make demo` and `make test`. Both install what they need into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOISEGAME := $(VENV)/bin/noisegame
STAMP := $(VENV)/.install-stamp
RUNS ?= runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --runs-dir $(RUNS)
	$(NOISEGAME) report $(RUNS)

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs build *.egg-info .pytest_cache

# --- targets: train-student / adv-noise ---

# --- targets: fgsm / freq-split ---

# --- targets: style-transfer ---

# --- targets: eval-corruption ---
