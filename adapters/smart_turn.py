"""pipecat's smart-turn v3.2 end-of-turn model on onnxruntime.

The ONNX file is copied out of the `pipecat-ai` wheel into the model cache at install time
(`bash scripts/install-model.sh smart-turn-v3.2`); pipecat is never imported. The model reads
Whisper log-mel features of the last 8 s of the turn, computed here with faster-whisper's numpy
feature extractor (the same transform: n_fft 400, hop 160, 80 Slaney mel bins, periodic Hann
window, reflect padding, log10 clamped at max - 8, then (x + 4) / 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adapters.errors import SetupError
from adapters.model_catalogue import SMART_TURN
from domain.audio import SAMPLE_RATE

WINDOW_SECONDS = 8
_WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
# transformers' WhisperFeatureExtractor normalises the waveform with this variance floor.
_VARIANCE_FLOOR = 1e-7


def installed_model_path() -> Path:
    """The smart-turn file in the model cache; a one-line SetupError saying how to install it."""
    from adapters.model_files import models_dir

    path = models_dir() / SMART_TURN.file_name
    try:
        if path.stat().st_size == SMART_TURN.size:
            return path
    except OSError:
        pass
    raise SetupError(
        f"The smart-turn end-of-turn model is not installed ({path} is missing): run "
        f"`{SMART_TURN.install_command}`, or pass --turn_detection silence"
    )


class SmartTurn:
    """`EndOfTurn` with smart-turn v3.2: about 45 ms per call on one core."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        path = model_path or installed_model_path()
        options = onnxruntime.SessionOptions()
        # One thread: it runs in the listening thread beside STT, the LLM and TTS on few cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        # An 8 s window: 800 frames of 10 ms once the extractor drops its last frame.
        self._features: Any = FeatureExtractor(
            feature_size=80, sampling_rate=SAMPLE_RATE, hop_length=160, n_fft=400,
            chunk_length=WINDOW_SECONDS,
        )  # fmt: skip

    def warm_up(self) -> None:
        """The first run allocates onnxruntime's buffers: done before the microphone opens."""
        self.complete_probability(bytes(2 * SAMPLE_RATE))

    def complete_probability(self, audio: bytes) -> float:
        samples = np.frombuffer(audio, dtype="<i2")[-_WINDOW_SAMPLES:].astype(np.float32) / 32768
        window = np.zeros(_WINDOW_SAMPLES, dtype=np.float32)  # left-padded with silence
        window[_WINDOW_SAMPLES - samples.size :] = samples
        window = (window - window.mean()) / np.sqrt(window.var() + _VARIANCE_FLOOR)
        features = self._features(window, padding=0)[np.newaxis].astype(np.float32)
        (logits,) = self._session.run(None, {"input_features": features})
        return float(logits[0, 0])  # the model's output is already a sigmoid
