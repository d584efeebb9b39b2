from __future__ import annotations

from typing import Protocol

from domain.audio import AudioEvent, ReplyMark


class AudioDuplex(Protocol):
    """The microphone and the speaker of local mode, as one duplex stream of 512-sample blocks
    (16 kHz, int16, mono).

    Input: `next_event` yields every mic block (with `playing` set while reply audio goes out;
    the application decides what the VAD hears), echoes of playback marks, `EndOfInput` when a
    finite source (a WAV file) runs out, and `AudioFailed` when the device is lost for good (a
    lost device is reported in the log and reopened by the adapter first).
    `check` resolves and verifies the devices or files without starting anything, so a bad
    device fails before the models load; it raises an error whose message is one actionable
    line.
    Output: `play` queues exactly one block; `mark` queues a mark behind everything queued so
    far, echoed back as a `PlaybackMark` once the output reached it; while nothing is queued the
    output plays a quiet dither that keeps the sink awake.
    """

    def check(self) -> None: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def next_event(self, timeout_s: float) -> AudioEvent | None:
        """The next input event, or None after `timeout_s` without one."""
        ...

    def play(self, block: bytes) -> None: ...

    def mark(self, mark: ReplyMark) -> None: ...

    def clear_playback(self) -> int:
        """Drop queued reply audio and marks (stop, or an interruption); returns how many
        reply blocks were dropped unplayed."""
        ...

    def pause_playback(self, paused: bool) -> None:
        """Paused, the output plays the dither from the next block on and keeps what is queued
        (barge-in: the user may be interrupting); unpaused, it goes on where it stopped."""
        ...
