"""`LanguageModel` on mlx-lm (Apple Silicon; mlx also has a Linux CPU build, `mlx[cpu]`).

Unlike upstream, the generation options reach mlx-lm: temperature, top-p, top-k and min-p go
through its sampler, max_new_tokens is the token budget, and min_new_tokens holds back the end
of the reply. An option mlx-lm cannot honour is refused at start-up instead of ignored.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.errors import SetupError
from adapters.model_catalogue import DEFAULT_GEN_KWARGS
from domain.messages import ChatMessage
from domain.tools import ToolSpec
from ports.language_model import Cancellation

# MLX work from two threads at once is not safe on one device. Every MLX user (this LLM, and
# MLX speech-to-text or text-to-speech adapters) takes this lock around each call into MLX. It
# is held per token, not per reply, so a reply streaming here still lets TTS speak its start.
MLX_LOCK = threading.Lock()

_SAMPLER_OPTIONS = {"temperature", "do_sample", "top_p", "top_k", "min_p"}
# The `--llm_gen_*` options this backend honours (the composition refuses any other).
SUPPORTED_GEN_OPTIONS = frozenset(
    _SAMPLER_OPTIONS | {"max_new_tokens", "min_new_tokens", "repetition_penalty"}
)


def _config_overrides(model_name: str) -> dict[str, Any]:
    """transformers 5 writes `rope_parameters` where mlx-lm still reads `rope_theta`; without
    the override a directory saved by transformers 5 loads with the wrong RoPE base and
    babbles."""
    config = Path(model_name) / "config.json"
    if not config.is_file():
        return {}
    settings = json.loads(config.read_text())
    rope = settings.get("rope_parameters") or {}
    if "rope_theta" in settings or "rope_theta" not in rope:
        return {}
    return {"rope_theta": rope["rope_theta"]}


class MlxLanguageModel:
    """Loads on construction (`model_name`: a Hub id or a local MLX/transformers directory; not
    GGUF). `gen_kwargs` from the `--llm_gen_*` flags over DEFAULT_GEN_KWARGS."""

    def __init__(
        self,
        *,
        model_name: str,
        gen_kwargs: Mapping[str, Any] | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> None:
        """`tools`: offered to the model through its chat template (not to background work)."""
        try:
            import mlx_lm
        except ImportError:
            raise SetupError(
                "mlx-lm is not installed: run `pip install 'local-voice-agent[mlx]'`"
            ) from None
        if model_name.endswith(".gguf"):
            raise SetupError(
                "mlx-lm cannot read GGUF files: pass an MLX model id or a transformers directory"
            )
        options = {**DEFAULT_GEN_KWARGS, **(gen_kwargs or {})}
        unsupported = sorted(set(options) - SUPPORTED_GEN_OPTIONS)
        if unsupported:
            raise SetupError(f"mlx-lm cannot honour --llm_gen_{', --llm_gen_'.join(unsupported)}")
        try:
            with MLX_LOCK:
                self._model, self._tokenizer = mlx_lm.load(
                    model_name, model_config=_config_overrides(model_name)
                )[:2]
        except (OSError, ValueError) as error:
            raise SetupError(f"Cannot load {model_name} with mlx-lm: {error}") from None
        self._options = options
        self._tools = [tool.function for tool in tools] or None
        context = getattr(getattr(self._model, "args", None), "max_position_embeddings", None)
        self.prompt_budget = context - int(options["max_new_tokens"]) if context else None

    @property
    def background_yields(self) -> bool:
        """False: MLX serves one generation at a time; a summary must be cancelled for a reply."""
        return False

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Generator[str, None, None]:
        import mlx_lm

        prompt: list[int] = self._tokenizer.apply_chat_template(  # type: ignore[no-untyped-call]
            [{"role": m.role, "content": m.content} for m in messages],
            tools=self._tools if offer_tools and not background else None,
            add_generation_prompt=True,
            enable_thinking=False,
        )
        tokens = mlx_lm.stream_generate(
            self._model,
            self._tokenizer,
            prompt,
            max_tokens=self._options["max_new_tokens"],
            sampler=self._sampler(),
            logits_processors=self._logits_processors(len(prompt)),
        )
        try:
            while not cancel.is_set():
                with MLX_LOCK:
                    response = next(tokens, None)
                if response is None:
                    return
                if response.text:
                    yield response.text
        finally:
            with MLX_LOCK:
                tokens.close()

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Nothing: each reply reads its whole prompt (no cache is kept between requests)."""

    def warm_up(self) -> None:
        """One short generation, so the first reply does not pay for MLX's first pass."""
        deltas = self.stream([ChatMessage("user", "Hi")], threading.Event())
        next(deltas, None)
        deltas.close()

    def _sampler(self) -> Callable[[Any], Any]:
        from mlx_lm.sample_utils import make_sampler

        options = self._options
        # Temperature 0, or sampling off, is greedy decoding (mlx-lm's argmax sampler).
        temperature = float(options["temperature"]) if options["do_sample"] else 0.0
        return make_sampler(
            temp=temperature,
            top_p=float(options.get("top_p", 0.0)),
            top_k=int(options.get("top_k", 0)),
            min_p=float(options.get("min_p", 0.0)),
        )

    def _logits_processors(self, prompt_length: int) -> list[Callable[[Any, Any], Any]]:
        import mlx.core as mx
        from mlx_lm.sample_utils import make_logits_processors

        processors: list[Callable[[Any, Any], Any]] = make_logits_processors(
            repetition_penalty=self._options.get("repetition_penalty")
        )
        min_new = int(self._options["min_new_tokens"])
        if min_new > 0:
            ends = mx.array(sorted(self._tokenizer.eos_token_ids))

            def hold_back_the_end(tokens: Any, logits: Any) -> Any:
                # `tokens` is the prompt followed by what was generated so far.
                if tokens.size - prompt_length < min_new:
                    logits[:, ends] = -float("inf")
                return logits

            processors.append(hold_back_the_end)
        return processors
