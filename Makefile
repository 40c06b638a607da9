# Two commands on a fresh clone: `make demo` and `make test`. Both install what they need into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOISEGAME := $(VENV)/bin/noisegame
STAMP := $(VENV)/.install-stamp
RUNS ?= runs/demo
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
	$(PY) experiments/study.py --runs-dir $(RUNS)

demo-smoke: install
	$(PY) experiments/study.py --runs-dir runs/demo-smoke --smoke

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
	$(PY) experiments/study.py --study cifar10 --runs-dir runs/cifar10 $(if $(CIFAR10_DIR),--data-dir $(CIFAR10_DIR)) --corrupted-dir $(CIFAR10C_DIR)

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
# Digits on a CPU: accuracy vs epsilon of a teacher and of an FGSM-trained model, the L(r)/H(r) evaluation
# of both, training on H(r) with natural and shuffled labels, and first-layer kernel smoothing; one report.
# `make freq-heuristics` adds teachers trained with mix-up, dropout, no batch norm and a large batch.
ROBUST_RUNS ?= runs/digits-robust
ROBUST_TEACHER = $$(ls -d $(ROBUST_RUNS)/train-teacher/*-digits-teacher/ | tail -1)
ROBUST_ADV = $$(ls -d $(ROBUST_RUNS)/fgsm/*-digits-adv-fgsm/ | tail -1)
HEURISTICS = $$(for n in mixup dropout no-bn batch-256; do ls -d $(ROBUST_RUNS)/train-teacher/*-digits-$$n/ | tail -1; done)

.PHONY: robust-teacher fgsm-teacher fgsm-adv-train fgsm-adv-eval freq-eval freq-train freq-smooth freq-heuristics digits-robust

robust-teacher: install
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --runs-dir $(ROBUST_RUNS)

fgsm-teacher: install
	$(NOISEGAME) fgsm --config experiments/digits-fgsm-eval.yaml --model-path "$(ROBUST_TEACHER)" --name teacher --runs-dir $(ROBUST_RUNS)

fgsm-adv-train: install
	$(NOISEGAME) fgsm --config experiments/digits-fgsm-adv-train.yaml --runs-dir $(ROBUST_RUNS)

fgsm-adv-eval: install
	$(NOISEGAME) fgsm --config experiments/digits-fgsm-eval.yaml --model-path "$(ROBUST_ADV)" --name adv-fgsm --runs-dir $(ROBUST_RUNS)

freq-eval: install
	$(NOISEGAME) freq-split eval --config experiments/digits-freq-eval.yaml --model-path "$(ROBUST_TEACHER)" --model-path "$(ROBUST_ADV)" --runs-dir $(ROBUST_RUNS)

freq-train: install
	$(NOISEGAME) freq-split train --config experiments/digits-freq-train.yaml --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) freq-split train --config experiments/digits-freq-train.yaml --shuffle-labels --runs-dir $(ROBUST_RUNS)

freq-smooth: install
	$(NOISEGAME) freq-split smooth --config experiments/digits-freq-smooth.yaml --model-path "$(ROBUST_TEACHER)" --model-path "$(ROBUST_ADV)" --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) freq-split smooth --config experiments/digits-freq-smooth.yaml --normalize --name smooth-normalized --model-path "$(ROBUST_TEACHER)" --model-path "$(ROBUST_ADV)" --runs-dir $(ROBUST_RUNS)

freq-heuristics: install
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --mixup 0.2 --name digits-mixup --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --dropout 0.3 --name digits-dropout --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --no-batch-norm --name digits-no-bn --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --batch-size 256 --name digits-batch-256 --runs-dir $(ROBUST_RUNS)
	$(NOISEGAME) freq-split eval --config experiments/digits-freq-eval.yaml --name heuristics --runs-dir $(ROBUST_RUNS) \
		--model-path "$(ROBUST_TEACHER)" --model-path "$(ROBUST_ADV)" $$(for m in $(HEURISTICS); do echo --model-path $$m; done)

digits-robust: robust-teacher
	$(MAKE) fgsm-teacher fgsm-adv-train
	$(MAKE) fgsm-adv-eval freq-eval freq-train freq-smooth
	$(NOISEGAME) report $(ROBUST_RUNS)

# --- targets: style-transfer ---
# Digits on a CPU: stylise a scikit-image photograph through a normal digits teacher and an FGSM-trained
# one (plus VGG-19 when its ImageNet weights are in the Keras cache); writes comparison.png.
# `make style-transfer-digits STYLE_RUNS=runs/digits-robust` reuses the models of `make digits-robust`.
STYLE_RUNS ?= runs/digits-style
STYLE_TEACHER = $$(ls -d $(STYLE_RUNS)/train-teacher/*-digits-teacher/ | tail -1)
STYLE_ADV = $$(ls -d $(STYLE_RUNS)/fgsm/*-digits-adv-fgsm/ | tail -1)
VGG19_CACHED = $${KERAS_HOME:-$$HOME/.keras}/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5

.PHONY: style-models style-transfer-digits style-demo

style-models: install
	$(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --runs-dir $(STYLE_RUNS)
	$(NOISEGAME) fgsm --config experiments/digits-fgsm-adv-train.yaml --runs-dir $(STYLE_RUNS)

style-transfer-digits: install
	$(NOISEGAME) style-transfer --config experiments/digits-style.yaml --runs-dir $(STYLE_RUNS) \
		--extractor-path "$(STYLE_TEACHER)" --extractor-path "$(STYLE_ADV)" \
		$$(test -f "$(VGG19_CACHED)" && echo --extractor vgg19)

style-demo: style-models
	$(MAKE) style-transfer-digits

# --- targets: eval-corruption ---
# `make digits-c`: a digits-C folder in the CIFAR-10-C layout (19 corruptions x 5 severities of the
# digits test split) and the demo teacher's accuracy on it (the teacher is trained first if missing).
DIGITS_C ?= runs/digits-C
DEMO_TEACHER = $$(ls -d $(RUNS)/train-teacher/*-digits-teacher/ 2>/dev/null | tail -1)

.PHONY: digits-c

digits-c: install
	test -n "$(DEMO_TEACHER)" || $(NOISEGAME) train-teacher --config experiments/digits-teacher.yaml --runs-dir $(RUNS)
	$(NOISEGAME) eval-corruption --config experiments/digits-eval-corruption.yaml --model-path "$(DEMO_TEACHER)" --write-dir $(DIGITS_C) --runs-dir $(RUNS)
	$(NOISEGAME) report $(RUNS)
