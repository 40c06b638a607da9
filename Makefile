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
# Digits on a CPU: teacher, then consistency student, Gaussian-noise and adversarial-noise training
# from it, each evaluated (with the teacher) on gaussian/shot/impulse noise; one report table at the end.
NOISE_RUNS ?= runs/digits-noise
LATEST_TEACHER = $$(ls -d $(NOISE_RUNS)/train-teacher/*/ | tail -1)

.PHONY: digits-noise-teacher train-student adv-noise-gnt adv-noise-ant digits-noise

digits-noise-teacher: install
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --runs-dir $(NOISE_RUNS)

train-student: install
	$(NOISEGAME) train-student --config experiments/digits-student.yaml --teacher "$(LATEST_TEACHER)" --runs-dir $(NOISE_RUNS)

adv-noise-gnt: install
	$(NOISEGAME) adv-noise --config experiments/digits-gnt.yaml --teacher "$(LATEST_TEACHER)" --runs-dir $(NOISE_RUNS)

adv-noise-ant: install
	$(NOISEGAME) adv-noise --config experiments/digits-ant.yaml --teacher "$(LATEST_TEACHER)" --runs-dir $(NOISE_RUNS)

digits-noise: digits-noise-teacher
	$(MAKE) train-student adv-noise-gnt adv-noise-ant
	$(NOISEGAME) report $(NOISE_RUNS)

# --- targets: fgsm / freq-split ---

# --- targets: style-transfer ---

# --- targets: eval-corruption ---
