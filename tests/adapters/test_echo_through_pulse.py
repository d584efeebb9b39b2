"""Echo cancellation on the live audio path: a private PulseAudio server whose speaker comes
back into its microphone through a simulated room, each sound-device adapter (PortAudio's duplex
stream, PulseAudio's client), and WebRTC AEC3 fed in each tick with the adapter's guess of the
delay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.silero_vad import SileroVad
from adapters.simulated_room import RoomSpec
from adapters.webrtc_echo import WebrtcEchoCanceller
from domain.audio import BLOCK_BYTES, MicBlock, PlaybackMark, ReplyDone, ReplyVoiced
from ports.audio import AudioDuplex
from tests.adapters.duplex_checks import APIS, is_mic, server_audio, wait_for
from tests.adapters.pulse_server import PulseServer, serving
from tests.adapters.speech_samples import load_speech

SPEECH = 0.5
CONVERGED_AFTER_BLOCKS = 31  # the first second of the reply: the canceller finds the delay


@pytest.fixture(scope="module")
def echoing_pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    with serving(tmp_path_factory.mktemp("pulse-echo"), echo=RoomSpec()) as server:
        yield server


def play_reply(
    audio: AudioDuplex, pulse: PulseServer, reply: bytes, said: bytes = b""
) -> list[MicBlock]:
    """The mic blocks captured while `reply` played (and `said` was spoken 2 s into it)."""
    audio.mark(ReplyVoiced(1))
    for i in range(0, len(reply), BLOCK_BYTES):
        audio.play(reply[i : i + BLOCK_BYTES])
    audio.mark(ReplyDone(1))
    events = []
    if said:
        for _ in range(62):
            events += wait_for(audio, is_mic, timeout_s=10)
        pulse.say(said)
    events += wait_for(
        audio, lambda e: isinstance(e, PlaybackMark) and isinstance(e.mark, ReplyDone), 30
    )
    return [e for e in events if isinstance(e, MicBlock) and e.playing]


def speech_blocks(vad: SileroVad, blocks: list[MicBlock]) -> list[int]:
    vad.reset()
    return [i for i, b in enumerate(blocks) if vad.speech_probability(b.pcm) >= SPEECH]


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_the_canceller_removes_the_echo_and_keeps_the_user(
    api: str, echoing_pulse: PulseServer
) -> None:
    vad = SileroVad()
    reply = load_speech("two_cities")[: 250 * BLOCK_BYTES]  # 8 s
    user = load_speech("beckett")[: 80 * BLOCK_BYTES]  # "Ever tried. Ever failed."
    results = {}
    for name, canceller in (("raw", None), ("aec", WebrtcEchoCanceller())):
        audio = server_audio(api, echo_canceller=canceller)
        audio.open()
        try:
            for _ in range(4 * 31):  # a stream that starts stuck is restarted by then
                wait_for(audio, is_mic, timeout_s=10)
            echo_only = play_reply(audio, echoing_pulse, reply)
            over = play_reply(audio, echoing_pulse, reply, said=user) if canceller else []
        finally:
            audio.close()
        results[name] = (echo_only, over)
    raw, _ = results["raw"]
    echo_only, over = results["aec"]
    raw_hits, all_hits, heard = (speech_blocks(vad, b) for b in (raw, echo_only, over))
    print(
        f"\nVAD speech blocks: no canceller {len(raw_hits)}/{len(raw)}, AEC3 {len(all_hits)}/"
        f"{len(echo_only)} (blocks {all_hits}); user heard from block {heard[:1]}, {len(heard)}"
    )
    # Without the canceller, the agent hears its own voice as speech most of the time.
    assert len(raw_hits) > len(raw) // 3
    # With it: none of the echo, once converged.
    hits = [i for i in all_hits if i >= CONVERGED_AFTER_BLOCKS]
    assert hits == [], hits
    # And the user speaking over the reply (from block 62 on, the mic taking a few more blocks
    # to carry it) is heard, and only then.
    assert heard and heard[0] >= 62
    assert len(heard) >= 10
