"""The application's side of the speaker: reply blocks go out only while their turn is open.

Closing a turn seals it under the same lock that every block takes on its way to the audio
port, and clears what is queued: no block of a closed turn can be queued after its close, even
from a text-to-speech call that was still running. The apology is synthesised once at start-up,
so it can be played when the text-to-speech engine itself is what failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from application.turn import Turn
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, Reblocker, ReplyDone, ReplyVoiced
from domain.heard_reply import SpokenBatch, heard_text
from ports import AudioDuplex, Clock, TextToSpeech

log = logging.getLogger(__name__)

# Any sample beyond the dither's +-1 LSB counts as the reply's voice.
_VOICED_LEVEL = 2


def is_voiced(block: bytes) -> bool:
    view = memoryview(block).cast("h")
    return max(view) >= _VOICED_LEVEL or min(view) <= -_VOICED_LEVEL


class Playback:
    def __init__(
        self,
        audio: AudioDuplex,
        clock: Clock,
        on_queued: Callable[[Turn, bool], None],
        apology: str,
    ) -> None:
        """`on_queued(turn, first_voiced)` follows every block queued, under the lock.
        `apology` ends a turn closed for a fault (the watchdog's), once prepared."""
        self._audio, self._clock, self._on_queued = audio, clock, on_queued
        self._apology_text = apology
        self._lock = threading.Lock()
        self._sealed: set[int] = set()
        self._voiced: set[int] = set()
        self._spoken: dict[str, list[bytes]] = {}  # what a fault is told with, by its text
        # Per open turn: each batch's text and how many blocks of it were queued (for what the
        # user heard of an interrupted reply).
        self._batches: dict[int, list[SpokenBatch]] = {}

    def prepare(self, tts: TextToSpeech, text: str) -> None:
        """Synthesise what a fault is told with, ahead (the apology, the restart notice)."""
        reblocker = Reblocker()
        try:
            blocks = [b for chunk in tts.synthesize(text, None) for b in reblocker.feed(chunk)]
        except Exception as error:  # the turn's close still says it on the console
            log.warning("could not synthesise %r: %s", text, error)
            return
        self._spoken[text] = blocks + reblocker.flush()

    @property
    def _apology(self) -> list[bytes]:
        return self._spoken.get(self._apology_text, [])

    def play(self, turn: Turn, blocks: Iterable[bytes], text: str | None = None) -> bool:
        """Queue `blocks` for the speaker; False (and nothing more queued) once the turn closed.
        `text` is what they say (a batch of the reply); without it they belong to the last."""
        if text is not None:
            with self._lock:
                self._batches.setdefault(turn.id, []).append(SpokenBatch(text, 0))
        for block in blocks:
            assert len(block) == BLOCK_BYTES
            with self._lock:
                if turn.id in self._sealed:
                    return False
                batches = self._batches.get(turn.id)
                if batches:
                    batches[-1] = SpokenBatch(batches[-1].text, batches[-1].blocks + 1)
                first_voiced = turn.id not in self._voiced and is_voiced(block)
                if first_voiced:
                    self._voiced.add(turn.id)
                    self._audio.mark(ReplyVoiced(turn.id))
                self._audio.play(block)
                # Queued audio plays in real time after this: the watchdog waits for it.
                turn.playback_until = max(turn.playback_until, self._clock.now()) + BLOCK_SECONDS
                self._on_queued(turn, first_voiced)
        return True

    def finish(self, turn: Turn) -> None:
        """Everything of the reply is queued: its close waits for this mark to play."""
        with self._lock:
            if turn.id not in self._sealed:
                self._audio.mark(ReplyDone(turn.id))

    def apologise(self, turn: Turn, text: str) -> None:
        """`text`, as prepared (else the apology), behind what is queued, then the mark the
        turn's close waits for."""
        if self.play(turn, self._spoken.get(text, self._apology)):
            self.finish(turn)

    def cut(self, turn: Turn) -> str:
        """Barge-in: seal the turn, drop what is queued, and return the words of the reply the
        user heard (blocks queued minus blocks dropped unplayed, words interpolated within the
        batch that was cut; the device's own buffer, under 100 ms, counts as heard)."""
        with self._lock:
            self._sealed.add(turn.id)
            dropped = self._audio.clear_playback()
            batches = self._batches.pop(turn.id, [])
        played = sum(batch.blocks for batch in batches) - dropped
        return heard_text(batches, played)

    def seal(self, turn: Turn, *, cut_short: bool, apologise: bool) -> None:
        """No more of the turn after this; `cut_short` drops what is still queued."""
        with self._lock:
            self._sealed.add(turn.id)
            self._voiced.discard(turn.id)
            self._batches.pop(turn.id, None)
            if cut_short:
                self._audio.clear_playback()
            if apologise:
                for block in self._apology:
                    self._audio.play(block)
