"""The adapters a flag can choose, by name, as data: what generation options each honours and
the model it asks for when --model_name is not given. The flags' choices come from these
tables; `composition.stages` builds each one under the same name, and a test holds the two
together. Adding an adapter is one entry here, its builder there, and the adapter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from adapters.mlx_llm import SUPPORTED_GEN_OPTIONS as MLX_GEN_OPTIONS
from adapters.openai_common import DEFAULT_MODEL as API_DEFAULT_MODEL


@attrs.frozen
class Backend:
    """`gen_options`: the `--llm_gen_*` / `--stt_gen_*` parameters it honours (None: every one,
    handed to the library's generate()); any other the user sets is refused at start-up."""

    gen_options: frozenset[str] | None = frozenset()
    default_model: str | None = None


_API_GEN_OPTIONS = frozenset({"max_new_tokens", "temperature", "top_p"})

STT: Mapping[str, Backend] = {
    "faster-whisper": Backend(frozenset({"beam_size"})),
    "whisper": Backend(None),
    "parakeet-tdt": Backend(),
}
LLM: Mapping[str, Backend] = {
    "llama-cpp": Backend(frozenset({"max_new_tokens", "temperature", "do_sample", "top_p",
                                    "top_k", "repeat_penalty", "repetition_penalty"})),
    "transformers": Backend(None),
    "mlx-lm": Backend(MLX_GEN_OPTIONS),
    "responses-api": Backend(_API_GEN_OPTIONS, API_DEFAULT_MODEL),
    "chat-completions": Backend(_API_GEN_OPTIONS, API_DEFAULT_MODEL),
}  # fmt: skip
TTS: Mapping[str, Backend] = {"piper": Backend(), "qwen3": Backend()}
# --turn_detection choices that run the end-of-turn model, and those that need none.
END_OF_TURN_MODELS: Mapping[str, Backend] = {
    "smart-turn": Backend(),
    "transcript+smart-turn": Backend(),
}
NO_END_OF_TURN_MODEL = ("transcript", "silence")

# The settings that choose a backend taking generation options, with those options' prefix.
GEN_OPTIONS_OF = {"stt": (STT, "stt_gen_"), "llm_backend": (LLM, "llm_gen_")}


def explicit_gen(gen: Mapping[str, Any], explicit: Collection[str], prefix: str) -> dict[str, Any]:
    """The options of `gen` the user set (`explicit` names the settings they set, flag or
    environment), without the prefix."""
    names = {name.removeprefix(prefix) for name in explicit}
    return {name: value for name, value in gen.items() if name in names}
