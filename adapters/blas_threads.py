"""numpy's BLAS on one thread.

OpenBLAS, which numpy bundles, keeps its worker threads spinning for ~70 ms after every
multi-threaded call. faster-whisper's log-mel features are one such call (a matrix product), made
just before the reply is asked for: the spinning worker then took a core from llama.cpp while
it read the prompt, ~40 ms more to the first token on 2 cores. The agent's matrix products are
small, so one thread costs them nothing.
"""

from __future__ import annotations


def limit_blas_threads() -> None:
    """For the rest of the process, in every BLAS library loaded so far (numpy's)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
