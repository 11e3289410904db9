# Two commands for a newcomer: `make repro` (install + run the pipeline), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install repro test test-fast lint format bench clean-venv

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

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

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
