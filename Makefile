# Two commands for a newcomer: `make repro` (install + run the pipeline), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install repro repro-short test test-fast lint format bench clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-mediapipe.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	# mediapipe's wheel requires jax, which face mesh never imports: install it without deps
	$(PY) -m pip install -q --no-deps -r requirements-mediapipe.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# `dvc repro` with independent stages side by side (JOBS=0: cores / train.threads, 1 on 2 cores; JOBS=1: as dvc repro)
JOBS ?= 0
repro: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" fer3d repro --jobs $(JOBS)

# A CPU without AMX trains the image nets in fp32: the default run's trainings take ~4.5 h on 2 such
# cores. These schedules run the whole pipeline on a 2-core AMD EPYC in 110 min measured on a slow host,
# ~87 projected on a faster one (2026-12-07: most minutes to resnet, 1 epoch for the members the fusion
# weighs ~0; fusion 68.29% PrivateTest against the default's 72.08%; README: How long `make repro`
# takes), as a DVC experiment: the committed results stay in git, `dvc exp show` compares.
SHORT_SCHEDULES := -S models.resnet.epochs=18 -S models.resnet.tta_shift=0 -S models.cnn.epochs=1 \
	-S models.vgg.epochs=1 -S models.landmark_mlp.epochs=80 -S models.landmark_cnn.epochs=1 \
	-S models.distance_cnn.epochs=1 -S models.voxel_cnn.epochs=1 -S models.mesh_gnn.epochs=1
SHORT_NAME ?= short-schedules
repro-short: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc exp run -n $(SHORT_NAME) $(SHORT_SCHEDULES)

# pytest-xdist: most tests run small one-thread pipelines, so two processes use both cores
# (TEST_WORKERS=0 runs them in this process, as plain pytest does)
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS)
test: install
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow"

# the same checks as CI and pre-commit (ruff's settings are in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/data_stages.py

clean-venv:
	rm -rf $(VENV)
