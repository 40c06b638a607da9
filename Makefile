# Two commands on a fresh clone: `make demo` and `make test`. Both install what they need into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOISEGAME := $(VENV)/bin/noisegame
STAMP := $(VENV)/.install-stamp
RUNS ?= runs/demo
SEEDS ?= 0,1,2
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo demo-smoke check-report reproduce-cifar10 test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole robustness study on the embedded digits data, every command, then the results page.
demo: install
	$(NOISEGAME) study --runs-dir $(RUNS) --seeds $(SEEDS)

demo-smoke: install
	$(NOISEGAME) study --runs-dir runs/demo-smoke --smoke

# Open the demo's results page in headless Chromium (installed from Debian's packages if missing)
# and check that every figure loads.
check-report: install
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	test -f $(RUNS)/report.html || $(MAKE) demo
	$(PY) tools/check_report.py $(RUNS)/report.html

# The CIFAR-10-scale recipes (a GPU machine with CIFAR-10 in the Keras cache or CIFAR10_DIR,
# and the official CIFAR-10-C files in CIFAR10C_DIR).
CIFAR10_DIR ?=
CIFAR10C_DIR ?= data/CIFAR-10-C
reproduce-cifar10: install
	$(NOISEGAME) study --study cifar10 --runs-dir runs/cifar10 $(if $(CIFAR10_DIR),--data-dir $(CIFAR10_DIR)) --corrupted-dir $(CIFAR10C_DIR)

# Two pytest workers: most tests spend their time in single-threaded Python (tracing, Click, file work).
test: install
	$(PY) -m pytest -n 2 --dist loadfile

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs build *.egg-info .pytest_cache
