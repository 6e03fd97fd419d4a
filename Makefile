# Two commands for a fresh machine (see README):  make repro   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
# dvc runs each stage's `cotdistill ...` command through the shell: the venv must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup repro test test-slow test-all
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)

repro: setup          ## install everything, then run the default pipeline end to end
	$(VENV)/bin/dvc repro

test: setup           ## the default test suite (slow tests left out)
	$(PY) -m pytest

test-slow: setup      ## only the tests marked slow (CI runs them after `make test`)
	$(PY) -m pytest -m slow

test-all: setup       ## every test, slow ones included
	$(PY) -m pytest -m ""
