"""`LanguageModel` on Hugging Face transformers: generate() on a background thread, streamed
through a TextIteratorStreamer, stopped between tokens when the turn is cancelled.

`model_name` is a Hub id, a local directory, or a `.gguf` file. De-quantising a GGUF takes
~16 s or more, so the first load writes the result once into a user cache directory with
`save_pretrained`, and later starts load that (~1.7 s).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from adapters.errors import SetupError
from adapters.model_catalogue import DEFAULT_GEN_KWARGS
from domain.messages import ChatMessage
from domain.tools import ToolSpec
from ports.language_model import Cancellation, LanguageModelError

log = structlog.get_logger(__name__)

# Sampling options that mean nothing to greedy decoding; transformers warns about each one.
_SAMPLING_ONLY = ("temperature", "top_p", "top_k", "min_p", "typical_p")
_DTYPES = ("auto", "float32", "float16", "bfloat16")


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "local-voice-agent" / "gguf-conversions"


def converted_gguf_dir(gguf: Path, *, torch_dtype: str, cache_root: Path | None = None) -> Path:
    """A transformers directory holding `gguf` de-quantised to `torch_dtype`, written on the
    first call and reused after. Keyed by the file's path, size and mtime, so a replaced file
    is converted again. Written to a temporary directory and renamed, so an interrupted or
    concurrent conversion never leaves a half-written model behind."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{torch_dtype}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = cache_root or default_cache_root()
    target = root / f"{gguf.stem}-{torch_dtype}-{digest}"
    if target.is_dir():
        return target

    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("gguf_conversion_started", gguf=str(gguf), into=str(target))
    root.mkdir(parents=True, exist_ok=True)
    model: Any = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=_torch_dtype(torch_dtype)
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers refuses to save a model loaded from GGUF ("not serializable") while it
    # still carries the GGUF quantizer; the weights themselves are already plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        os.replace(partial, target)
    except OSError:
        if not target.is_dir():  # not just a concurrent conversion that finished first
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _torch_dtype(name: str) -> Any:
    import torch

    if name not in _DTYPES:
        raise SetupError(f"Unknown --llm_torch_dtype {name!r}: use one of {', '.join(_DTYPES)}")
    return name if name == "auto" else getattr(torch, name)


def generation_options(gen_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `--llm_gen_*` options over the defaults, as generate() takes them. Temperature 0
    means greedy, so sampling is only on with `do_sample` and a positive temperature."""
    options = {**DEFAULT_GEN_KWARGS, **(gen_kwargs or {})}
    if not options.get("do_sample") or not options.get("temperature", 1.0):
        options["do_sample"] = False
        for name in _SAMPLING_ONLY:
            options.pop(name, None)
    return options


def _stop_when(should_stop: Callable[[], bool]) -> Any:
    """A StoppingCriteria that ends generation at the next token once `should_stop()`."""
    import torch
    from transformers import StoppingCriteria

    class StopWhen(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> Any:
            stop = should_stop()
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return StopWhen()


class TransformersLanguageModel:
    """Loads on construction. `device` and `torch_dtype` as torch names; `gen_kwargs` from the
    `--llm_gen_*` flags over DEFAULT_GEN_KWARGS; `is_vlm` loads AutoModelForImageTextToText;
    `threads` sizes torch's CPU pool; `cache_dir` holds GGUF conversions.

    One lock per model: a reply and a history compaction never run generate() at once (they
    would share the model's state and each run at half speed); the second waits."""

    def __init__(
        self,
        *,
        model_name: str,
        device: str = "cpu",
        torch_dtype: str = "float32",
        gen_kwargs: Mapping[str, Any] | None = None,
        is_vlm: bool = False,
        threads: int | None = None,
        cache_dir: Path | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> None:
        """`tools`: offered to the model through its chat template (not to background work)."""
        try:
            import torch
            import transformers
        except ImportError:
            raise SetupError(
                "transformers is not installed: run `pip install 'local-voice-agent[transformers]'`"
            ) from None
        if threads is not None:
            torch.set_num_threads(threads)
        source = model_name
        if model_name.endswith(".gguf"):
            gguf = Path(model_name).expanduser()
            if not gguf.is_file():
                raise SetupError(f"GGUF model not found: {gguf}")
            source = str(converted_gguf_dir(gguf, torch_dtype=torch_dtype, cache_root=cache_dir))
        model_class: Any = transformers.AutoModelForCausalLM
        text_class: Any = transformers.AutoTokenizer
        if is_vlm:
            model_class = transformers.AutoModelForImageTextToText
            text_class = transformers.AutoProcessor
        try:
            model = model_class.from_pretrained(source, dtype=_torch_dtype(torch_dtype))
            self._tokenizer: Any = text_class.from_pretrained(source)
            self._model: Any = model.to(device).eval()
        # A missing CUDA build raises AssertionError ("Torch not compiled with CUDA enabled").
        except (OSError, ValueError, RuntimeError, AssertionError) as error:
            raise SetupError(f"Cannot load {model_name} on {device}: {error}") from None
        self._is_vlm = is_vlm
        self._tools = [tool.function for tool in tools] or None
        self._options = generation_options(gen_kwargs)
        self._lock = threading.Lock()
        context = getattr(self._model.config, "max_position_embeddings", None)
        self.prompt_budget = (
            context - int(self._options.get("max_new_tokens", 0)) if context else None
        )

    @property
    def background_yields(self) -> bool:
        """False: one generation at a time; a summary must be cancelled for a reply."""
        return False

    def count_tokens(self, text: str) -> int:
        tokenizer = getattr(self._tokenizer, "tokenizer", self._tokenizer)  # a processor's
        return len(tokenizer.encode(text, add_special_tokens=False))

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Generator[str, None, None]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        with self._lock:
            inputs = self._encode(messages, offered=offer_tools and not background)
            streamer = TextIteratorStreamer(
                self._tokenizer, skip_prompt=True, skip_special_tokens=True
            )
            # Also stop when the caller abandons the iterator, so the lock is not held by a
            # generation nobody reads.
            abandoned = threading.Event()
            criteria = StoppingCriteriaList(
                [_stop_when(lambda: cancel.is_set() or abandoned.is_set())]
            )
            failures: list[BaseException] = []

            def generate() -> None:
                try:
                    self._model.generate(
                        **inputs, streamer=streamer, stopping_criteria=criteria, **self._options
                    )
                except BaseException as error:
                    failures.append(error)
                    streamer.end()  # type: ignore[no-untyped-call]  # unblocks the reader

            worker = threading.Thread(target=generate, name="transformers-generate", daemon=True)
            worker.start()
            try:
                for text in streamer:
                    if cancel.is_set():
                        return
                    if text:
                        yield text
            finally:
                abandoned.set()
                worker.join()
            if failures:
                raise LanguageModelError(f"generation failed: {failures[0]}"[:200])

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Nothing: each reply reads its whole prompt (no cache is kept between requests)."""

    def warm_up(self) -> None:
        """One short generation, so the first reply does not pay for torch's first pass."""
        deltas = self.stream([ChatMessage("user", "Hi")], threading.Event())
        next(deltas, None)
        deltas.close()

    def _encode(self, messages: Sequence[ChatMessage], offered: bool = False) -> Any:
        chat: list[dict[str, Any]] = [
            {
                "role": m.role,
                # Processors of vision-language models take a list of typed parts.
                "content": [{"type": "text", "text": m.content}] if self._is_vlm else m.content,
            }
            for m in messages
        ]
        encoded: Any = self._tokenizer.apply_chat_template(
            chat,
            tools=self._tools if offered else None,
            add_generation_prompt=True,
            enable_thinking=False,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return encoded.to(self._model.device)
