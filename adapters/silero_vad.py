"""Silero VAD on onnxruntime, reading the ONNX file shipped in the `silero-vad` wheel.

The `silero_vad` package itself is never imported: it imports torch (1.3 s, and it pins torch to
one thread for the whole process). Only its data file is used, found through the import system.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, BLOCK_SAMPLES, SAMPLE_RATE

# Silero prepends the last 64 samples of the previous block to each 512-sample block (its
# OnnxWrapper does the same): the model was trained on 576-sample windows.
_CONTEXT = 64
_INSTALL_HINT = "run `pip install --no-deps silero-vad`"


def bundled_model_path() -> Path:
    """The ONNX model inside the installed `silero-vad` wheel, located without importing it."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise SetupError(f"The Silero VAD model is not installed: {_INSTALL_HINT}")
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise SetupError(f"The Silero VAD model is missing from {path.parent}: {_INSTALL_HINT}")
    return path


class SileroVad:
    """`VoiceActivity` with the recurrent state and the context carried from block to block."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime

        path = model_path or bundled_model_path()
        if not path.is_file():
            raise SetupError(f"No Silero VAD model at {path}: {_INSTALL_HINT}")
        options = onnxruntime.SessionOptions()
        # One thread: the VAD runs every 32 ms beside STT, the LLM and TTS on a few cores, and
        # a 576-sample window gains nothing from more.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._window = np.zeros((1, _CONTEXT + BLOCK_SAMPLES), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._sample_rate = np.array(SAMPLE_RATE, dtype=np.int64)

    def warm_up(self) -> None:
        self.speech_probability(bytes(BLOCK_BYTES))
        self.reset()

    def speech_probability(self, block: bytes) -> float:
        if len(block) != BLOCK_BYTES:
            raise ValueError(f"a VAD block is {BLOCK_BYTES} bytes, got {len(block)}")
        window = self._window[0]
        window[:_CONTEXT] = window[-_CONTEXT:]
        np.multiply(np.frombuffer(block, dtype="<i2"), np.float32(1 / 32768), out=window[_CONTEXT:])
        probability, self._state = self._session.run(
            None, {"input": self._window, "state": self._state, "sr": self._sample_rate}
        )
        return float(probability[0, 0])

    def reset(self) -> None:
        self._window.fill(0.0)
        self._state = np.zeros_like(self._state)
