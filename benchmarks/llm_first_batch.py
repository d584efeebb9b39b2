"""Which embedded LLM reaches the first sentence sooner: transformers on the SmolLM2 GGUF, or
llama.cpp's server (in-process) through the chat-completions adapter; and which llama.cpp
thread plan suits a catalogue model.

    python -m benchmarks.llm_first_batch [--repeats 1] [--beside]
    python -m benchmarks.llm_first_batch --model_name qwen2.5-coder-0.5b --beside  # llama.cpp only

With `--model_name`, three llama.cpp thread plans are compared: 1 thread, 2 threads, and the
agent's (the prompt read on every core, generation on one); tokens are counted as streamed
deltas (llama.cpp sends one token per event).

Per backend, medians over a few spoken-style questions: TTFT (first text delta), time to the
first complete sentence (what the first TTS batch waits for with --stream_batch_sentences 1),
and decode tokens/s. `--beside` repeats every run with one busy core beside the LLM, as when
STT or TTS works during a reply. Replies are capped at 64 tokens; the first sentence is not.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapters.llama_server import LlamaServer
from adapters.model_files import smollm2_gguf
from adapters.openai_chat_completions import ChatCompletionsLanguageModel
from adapters.transformers_llm import TransformersLanguageModel, converted_gguf_dir
from domain.messages import ChatMessage
from ports.language_model import LanguageModel

SYSTEM = "You are a helpful voice assistant. Answer in two or three short sentences."
QUESTIONS = (
    "What is the capital of France?",
    "Can you tell me a fun fact about cats?",
    "How many legs does a spider have?",
    "Give me a tip for sleeping better.",
    "Why do leaves change colour in autumn?",
)
MAX_TOKENS = 64
# A sentence ends at . ! or ? followed by a space (or the end of the reply).
SENTENCE_END = re.compile(r"[.!?](\s|$)")


def measure(
    model: LanguageModel, question: str, count_tokens: Callable[[str], int] | None
) -> dict[str, float]:
    messages = [ChatMessage("system", SYSTEM), ChatMessage("user", question)]
    text = ""
    deltas = 0
    first_delta = first_sentence = None
    started = time.perf_counter()
    for delta in model.stream(messages, threading.Event()):
        deltas += 1
        now = time.perf_counter() - started
        first_delta = first_delta if first_delta is not None else now
        text += delta
        if first_sentence is None and SENTENCE_END.search(text):
            first_sentence = now
    total = time.perf_counter() - started
    assert first_delta is not None, "empty reply"
    tokens = count_tokens(text) if count_tokens is not None else deltas
    return {
        "ttft_ms": first_delta * 1000,
        "first_sentence_ms": (first_sentence if first_sentence is not None else total) * 1000,
        "tokens_per_s": (tokens - 1) / (total - first_delta) if total > first_delta else 0.0,
    }


def _spin(stop: Any) -> None:
    import numpy as np

    a = np.random.rand(256, 256)
    while not stop.is_set():
        a @ a


@contextmanager
def one_busy_core(enabled: bool) -> Iterator[None]:
    """A process that keeps one core busy (single-threaded matmuls), like STT or TTS would."""
    if not enabled:
        yield
        return
    stop = multiprocessing.Event()
    worker = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def run(
    name: str,
    model: LanguageModel,
    count_tokens: Callable[[str], int] | None,
    repeats: int,
    beside: bool,
) -> None:
    for busy in (False, True) if beside else (False,):
        with one_busy_core(busy):
            model.warm_up()
            runs = [measure(model, q, count_tokens) for q in QUESTIONS for _ in range(repeats)]
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        label = f"{name}{' + busy core' if busy else ''}"
        print(
            f"  {label:<58} {medians['ttft_ms']:>8.0f} {medians['first_sentence_ms']:>16.0f}"
            f" {medians['tokens_per_s']:>10.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--beside", action="store_true", help="also run beside one busy core")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--model_name", default=None,
                        help="a catalogue model or .gguf: llama.cpp thread plans only")  # fmt: skip
    args = parser.parse_args()
    if args.model_name:
        thread_plans(args.model_name, args.repeats, args.beside)
        return

    from tokenizers import Tokenizer

    gguf = smollm2_gguf()
    tokenizer = Tokenizer.from_file(
        str(converted_gguf_dir(gguf, torch_dtype="float32") / "tokenizer.json")
    )

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    print(f"SmolLM2-135M-Instruct Q4_1, medians over {len(QUESTIONS) * args.repeats} replies")
    print(f"  {'backend':<58} {'TTFT ms':>8} {'1st sentence ms':>16} {'tokens/s':>10}")
    for threads in (1, 2):
        started = time.perf_counter()
        with LlamaServer(gguf, threads=threads) as server:
            ready_s = time.perf_counter() - started
            model = ChatCompletionsLanguageModel(
                base_url=server.base_url, api_key=server.api_key, max_output_tokens=MAX_TOKENS
            )
            name = (
                f"llama.cpp server, {threads} thread{'s' * (threads > 1)} (ready {ready_s:.2f} s)"
            )
            run(name, model, count_tokens, args.repeats, args.beside)
    for dtype in args.dtypes:
        started = time.perf_counter()
        transformers_model = TransformersLanguageModel(
            model_name=str(gguf),
            torch_dtype=dtype,
            threads=2,
            gen_kwargs={"max_new_tokens": MAX_TOKENS},
        )
        name = f"transformers {dtype}, 2 threads (load {time.perf_counter() - started:.1f} s)"
        run(name, transformers_model, count_tokens, args.repeats, args.beside)


def thread_plans(model_name: str, repeats: int, beside: bool) -> None:
    import os

    from adapters.model_files import model_path

    resolved = model_path(model_name)
    cores = os.cpu_count() or 1
    print(f"{resolved.name}, medians over {len(QUESTIONS) * repeats} replies")
    print(f"  {'plan':<58} {'TTFT ms':>8} {'1st sentence ms':>16} {'tokens/s':>10}")
    for threads, batch in ((1, 1), (cores, cores), (1, cores)):
        started = time.perf_counter()
        with LlamaServer(resolved.path, threads=threads, batch_threads=batch) as server:
            ready_s = time.perf_counter() - started
            model = ChatCompletionsLanguageModel(
                base_url=server.base_url,
                api_key=server.api_key,
                max_output_tokens=MAX_TOKENS,
                temperature=0.0,
            )
            name = f"generate on {threads}, prompt on {batch} (ready {ready_s:.2f} s)"
            run(name, model, None, repeats, beside)


if __name__ == "__main__":
    main()
