from pathlib import Path

import pytest
from structlog.testing import capture_logs

import composition.default_model as default_model_module
from adapters.machine_load import MachineLoad
from adapters.machine_pace import CACHE_FILE, PaceCache, machine_key
from adapters.model_catalogue import DEFAULT_MODEL, QWEN25_CODER_15B
from adapters.model_files import models_dir
from composition.default_model import chosen_model, default_model, machine_pace
from domain.model_choice import Pace

# The 0.5B's pace on the 2 cores the agent was tuned on, and a machine three times as fast.
TUNING_MACHINE = Pace(read_s=0.169, token_s=0.0223)
FAST_MACHINE = Pace(read_s=0.056, token_s=0.0074)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PaceCache:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return PaceCache(models_dir() / CACHE_FILE)


def test_the_pace_decides_between_the_two_qwens() -> None:
    assert chosen_model(TUNING_MACHINE) == DEFAULT_MODEL
    assert chosen_model(FAST_MACHINE) == QWEN25_CODER_15B.name
    assert chosen_model(None) == DEFAULT_MODEL


def test_a_cached_pace_is_used_without_measuring(
    cache: PaceCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.put(machine_key(2), TUNING_MACHINE)
    monkeypatch.setattr(default_model_module, "measure", _must_not_measure)

    assert machine_pace(2) == TUNING_MACHINE
    assert default_model(2) == DEFAULT_MODEL


def test_a_fast_machine_without_the_larger_model_is_told_how_to_install_it(
    cache: PaceCache,
) -> None:
    cache.put(machine_key(2), FAST_MACHINE)

    with capture_logs() as logs:
        name = default_model(2)

    assert name == DEFAULT_MODEL  # the 1.5B is not in this empty cache
    assert any(f"install-model.sh {QWEN25_CODER_15B.name}" in log["event"] for log in logs)


def test_a_busy_machine_is_not_measured(cache: PaceCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MachineLoad, "measure", lambda self, s: 1.5)
    monkeypatch.setattr(default_model_module, "measure", _must_not_measure)

    assert machine_pace(2) is None
    assert default_model(2) == DEFAULT_MODEL
    assert cache.get(machine_key(2)) is None  # measured on a later, quieter start


def test_a_quiet_machine_is_measured_once(
    cache: PaceCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[int] = []

    def measure(model: Path, threads: int) -> Pace:
        measured.append(threads)
        return TUNING_MACHINE

    monkeypatch.setattr(MachineLoad, "measure", lambda self, s: 0.0)
    monkeypatch.setattr(default_model_module, "catalogue_file", lambda model: Path("probe.gguf"))
    monkeypatch.setattr(default_model_module, "measure", measure)

    assert machine_pace(2) == TUNING_MACHINE
    assert machine_pace(2) == TUNING_MACHINE
    assert measured == [2]
    assert cache.get(machine_key(2)) == TUNING_MACHINE


def test_a_failed_measurement_keeps_the_small_default(
    cache: PaceCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def measure(model: Path, threads: int) -> Pace:
        raise OSError("connection refused")

    monkeypatch.setattr(MachineLoad, "measure", lambda self, s: 0.0)
    monkeypatch.setattr(default_model_module, "catalogue_file", lambda model: Path("probe.gguf"))
    monkeypatch.setattr(default_model_module, "measure", measure)

    with capture_logs() as logs:
        assert default_model(2) == DEFAULT_MODEL
    assert any("connection refused" in log["event"] for log in logs)


def _must_not_measure(model: Path, threads: int) -> Pace:
    raise AssertionError("measured")
