"""What the application needs from the outside world, as small Protocols over domain values.

No port mentions a library type: adapters translate at the boundary.
"""

from ports.audio import AudioDuplex
from ports.clock import Clock
from ports.console import Console
from ports.echo_canceller import EchoCanceller
from ports.end_of_turn import EndOfTurn
from ports.language_model import Cancellation, LanguageModel, LanguageModelError
from ports.metrics import MetricsSink
from ports.speech_to_text import SpeechToText
from ports.text_to_speech import TextToSpeech
from ports.voice_activity import VoiceActivity

__all__ = [
    "AudioDuplex",
    "Cancellation",
    "Clock",
    "Console",
    "EchoCanceller",
    "EndOfTurn",
    "LanguageModel",
    "LanguageModelError",
    "MetricsSink",
    "SpeechToText",
    "TextToSpeech",
    "VoiceActivity",
]
