#!/usr/bin/env bash
# Sets up everything the tests need, then runs the linters, the layer contracts and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all,dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
