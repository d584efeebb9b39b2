"""The llama.cpp model a machine gets when `--model_name` is not given: the best of the
catalogue's defaults its pace allows (domain/model_choice.py). The pace is measured once with
the small default, on the threads the agent gives the model, and cached; a busy machine is not
measured (its pace would be the other programs'), and gets the small default until it is quiet.

`python -m composition.default_model [THREADS]` measures now if needed and prints the choice:
the set-up installs it.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import structlog

from adapters.errors import SetupError
from adapters.llama_server import DEFAULT_THREADS
from adapters.machine_load import MachineLoad
from adapters.machine_pace import CACHE_FILE, PaceCache, machine_key, measure
from adapters.model_catalogue import CATALOGUE, DEFAULT_CHOICES, DEFAULT_MODEL
from adapters.model_files import catalogue_file, is_assembled, models_dir
from composition.logging_setup import configure_logging
from domain.model_choice import Candidate, Pace, choose

log = structlog.get_logger()

# Another program using more than this share of a core makes a measurement of the other
# programs' pace, not the machine's (domain/generation_threads.py's busy share).
BUSY_SHARE = 0.5
LOAD_MEASURE_S = 0.5


def machine_pace(threads: int, *, may_measure: bool = True) -> Pace | None:
    """The cached pace, else measured now (about 3 s) when allowed and the machine is quiet."""
    cache = PaceCache(models_dir() / CACHE_FILE)
    key = machine_key(threads)
    pace = cache.get(key)
    if pace is not None or not may_measure:
        return pace
    others = MachineLoad().measure(LOAD_MEASURE_S)
    if others is not None and others > BUSY_SHARE:
        log.info(f"other programs keep {others:.1f} cores busy: the pace is measured later")
        return None
    probe = CATALOGUE[DEFAULT_MODEL]
    log.info(f"measuring this machine's pace with {probe.name} (once)")
    try:
        pace = measure(catalogue_file(probe), threads)
    except (SetupError, OSError, ValueError, KeyError) as error:
        log.warning(f"could not measure this machine's pace ({error}): {DEFAULT_MODEL} it is")
        return None
    cache.put(key, pace)
    return pace


def cost(name: str) -> float:
    """How heavy a catalogue model is against the small default: its file's size."""
    return CATALOGUE[name].size / CATALOGUE[DEFAULT_MODEL].size


def chosen_model(pace: Pace | None) -> str:
    return choose(pace, [Candidate(name, cost(name)) for name in DEFAULT_CHOICES])


def default_model(threads: int = DEFAULT_THREADS, *, may_measure: bool = True) -> str:
    """The model to load: the choice when installed, else the small default and how to
    install the choice."""
    pace = machine_pace(threads, may_measure=may_measure)
    name = chosen_model(pace)
    if name != DEFAULT_MODEL and not is_assembled(CATALOGUE[name]):
        log.warning(
            f"this machine is fast enough for {name}, the better answers: "
            f"install it with `bash scripts/install-model.sh {name}`"
        )
        return DEFAULT_MODEL
    if pace is not None and may_measure:
        log.info(
            f"model {name}, chosen for this machine: a first sentence in about "
            f"{pace.first_sentence_s(cost(name)):.2f} s (--model_name sets another)"
        )
    return name


def main(argv: list[str] | None = None) -> int:
    """Prints the model this machine gets (the only line on stdout; the log goes to stderr),
    measuring its pace first if it was never measured."""
    args = sys.argv[1:] if argv is None else argv
    threads = int(args[0]) if args else DEFAULT_THREADS
    with contextmanager(configure_logging)():
        print(chosen_model(machine_pace(threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
