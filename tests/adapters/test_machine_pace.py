from pathlib import Path

from adapters.machine_pace import PaceCache, machine_key, measure
from adapters.model_files import smollm2_gguf
from domain.model_choice import SENTENCE_TOKENS, Pace


def test_a_real_model_is_timed_reading_and_writing() -> None:
    pace = measure(smollm2_gguf(), threads=1)

    # SmolLM2-135M on one thread here: ~0.1 s for the question, a few ms a token.
    assert 0 < pace.read_s < 5
    assert 0 < pace.token_s < 1
    assert pace.first_sentence_s() == pace.read_s + SENTENCE_TOKENS * pace.token_s


def test_the_cache_keeps_a_pace_per_machine(tmp_path: Path) -> None:
    cache = PaceCache(tmp_path / "sub" / "pace.json")
    assert cache.get("a") is None

    cache.put("a", Pace(read_s=0.2, token_s=0.02))
    cache.put("b", Pace(read_s=0.1, token_s=0.01))

    again = PaceCache(tmp_path / "sub" / "pace.json")
    assert again.get("a") == Pace(read_s=0.2, token_s=0.02)
    assert again.get("b") == Pace(read_s=0.1, token_s=0.01)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["pace.json"]


def test_an_unreadable_cache_is_empty_and_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "pace.json"
    path.write_text("{not json")
    cache = PaceCache(path)
    assert cache.get("a") is None

    path.write_text('{"a": {"read_s": 0, "token_s": "x"}, "b": [1, 2]}')
    assert cache.get("a") is None
    assert cache.get("b") is None

    cache.put("a", Pace(read_s=0.3, token_s=0.03))
    assert cache.get("a") == Pace(read_s=0.3, token_s=0.03)


def test_the_key_names_the_processor_its_cores_and_the_threads(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t: sse\n")

    key = machine_key(3, cpuinfo)

    assert key.startswith("Example CPU 9000, ")
    assert key.endswith(" cores, 3 threads")
    assert machine_key(3, tmp_path / "missing") != key
