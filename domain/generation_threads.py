"""How many threads a local language model generates on, following the machine's load.

A model's threads work in lock-step: every step of a token waits for the slowest of them. When
another program keeps a core busy, a thread that shares that core runs a fraction of the time
and the others spin waiting for it. Measured on 2 cores beside one busy loop, Qwen2.5-0.5B on
llama.cpp decoded 0.4-0.7 tokens a second on 2 threads and 20 on 1. So the model takes only the
cores that other programs leave free: chosen at start, fewer as soon as the load or a slow reply
says so, more again only once the machine has stayed quieter for `settle_s`.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class ThreadPlan:
    threads: int
    niceness: int


@attrs.frozen
class ThreadsConfig:
    """`most` threads, at `niceness`, on a machine where nothing else runs; with fewer (the
    machine is shared) the threads run at `shared_niceness`."""

    cores: int = attrs.field(validator=attrs.validators.ge(1))
    most: int = attrs.field(validator=attrs.validators.ge(1))
    niceness: int = 0
    shared_niceness: int = 0
    # Another program using more than this share of a core takes the core from the model.
    busy_share: float = 0.5
    settle_s: float = 30.0
    # A reply of at least `slow_min_tokens` decoded slower than this on more than one thread:
    # the threads wait for each other, one fewer is faster.
    slow_tokens_per_s: float = 5.0
    slow_min_tokens: int = 16


class GenerationThreads:
    """`others` is how many cores' worth of CPU the other programs use (None: unknown, as on a
    system without /proc). `plan` is the current choice; `load` and `pace` return a new plan
    when it should change, None otherwise."""

    def __init__(self, config: ThreadsConfig, others: float | None) -> None:
        self._config = config
        self.plan = self._plan(self._fitting(others))
        self._quiet_since: float | None = None

    def load(self, now_s: float, others: float | None) -> ThreadPlan | None:
        """A new measure of the other programs' load."""
        fitting = self._fitting(others)
        current = self.plan.threads
        if fitting < current:
            return self._change(fitting)
        if fitting == current:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = now_s
        if now_s - self._quiet_since < self._config.settle_s:
            return None
        return self._change(fitting)

    def pace(self, tokens: int, tokens_per_s: float) -> ThreadPlan | None:
        """A reply's decoding speed: too slow on several threads means they wait for each
        other (a load the measure missed, or one that came between two measures)."""
        config = self._config
        slow = tokens >= config.slow_min_tokens and tokens_per_s < config.slow_tokens_per_s
        if not slow or self.plan.threads == 1:
            return None
        return self._change(self.plan.threads - 1)

    def _fitting(self, others: float | None) -> int:
        config = self._config
        if others is None:
            return config.most
        free = config.cores - others
        return max(1, min(config.most, int(free + 1 - config.busy_share)))

    def _plan(self, threads: int) -> ThreadPlan:
        config = self._config
        niceness = config.niceness if threads >= config.most else config.shared_niceness
        return ThreadPlan(threads, niceness)

    def _change(self, threads: int) -> ThreadPlan:
        self._quiet_since = None
        self.plan = self._plan(threads)
        return self.plan
