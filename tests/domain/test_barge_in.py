"""The barge-in policy, driven block by block with plain values."""

from __future__ import annotations

import pytest

from domain.audio import BLOCK_SECONDS
from domain.barge_in import BargeIn, BargeInConfig, Decision, State
from domain.mute_policy import Admission

CONFIG = BargeInConfig(min_interruption_ms=192, warmup_ms=320, confirm_window_ms=1000)


def run(policy: BargeIn, probabilities: list[float], start_block: int = 0) -> list[Decision]:
    """Blocks while the reply plays (blocks numbered on the audio clock from `start_block`)."""
    decisions = []
    for i, p in enumerate(probabilities, start=start_block):
        at_s = i * BLOCK_SECONDS
        admission = policy.admit(playing=True, should_listen=False, at_s=at_s)
        if admission is Admission.WATCH:
            decisions.append(policy.watched(p, at_s))
        else:
            decisions.append(policy.expired(at_s))
    return decisions


def state_of(policy: BargeIn) -> State:
    """Read afresh (mypy narrows `policy.state` after an assert)."""
    return policy.state


def test_listening_hears_and_a_busy_agent_is_deaf_until_its_reply_plays() -> None:
    policy = BargeIn(CONFIG)
    assert policy.admit(playing=False, should_listen=True, at_s=0) is Admission.HEAR
    assert policy.admit(playing=False, should_listen=False, at_s=0.1) is Admission.DROP
    assert policy.admit(playing=True, should_listen=False, at_s=0.2) is Admission.WATCH
    assert policy.state is State.WATCHING
    # A gap between two batches of the reply: still watched (the echo's tail is there too).
    assert policy.admit(playing=False, should_listen=False, at_s=0.3) is Admission.WATCH
    # The reply played out: listening starts afresh, nothing of the reply in the segmenter.
    assert policy.admit(playing=False, should_listen=True, at_s=0.4) is Admission.HEAR_AFRESH


def test_speech_for_min_interruption_after_the_warm_up_pauses_playback() -> None:
    policy = BargeIn(CONFIG)
    warm = round(0.320 / BLOCK_SECONDS)  # 10 blocks
    decisions = run(policy, [0.0] * warm + [0.9] * 6)
    assert decisions[:-1] == [Decision.NONE] * (warm + 5)
    assert decisions[-1] is Decision.PAUSE  # 6 blocks = 192 ms of speech
    assert policy.speech_start_s == pytest.approx(warm * BLOCK_SECONDS)
    assert policy.paused_at_s == pytest.approx((warm + 6) * BLOCK_SECONDS)
    assert policy.preroll_from_s() == pytest.approx(warm * BLOCK_SECONDS - 0.5)
    assert policy.state is State.PAUSED


def test_speech_during_the_warm_up_is_ignored_and_must_start_again_after_it() -> None:
    policy = BargeIn(CONFIG)
    decisions = run(policy, [0.9] * 15)  # speech from the first block on
    # Warm-up ends at block 10; the run counts from there: 6 blocks later, at block 15.
    assert Decision.PAUSE not in decisions
    assert run(policy, [0.9], start_block=15) == [Decision.PAUSE]
    assert policy.speech_start_s == pytest.approx(10 * BLOCK_SECONDS)


def test_short_bursts_and_a_dip_below_the_hysteresis_do_not_pause() -> None:
    policy = BargeIn(CONFIG)
    # 5 blocks (160 ms), a dip to silence, 5 more: never 192 ms in a row.
    decisions = run(policy, [0.0] * 10 + [0.9] * 5 + [0.1] + [0.9] * 5)
    assert Decision.PAUSE not in decisions
    # Within the hysteresis (>= 0.45 once started) the run goes on.
    later = run(policy, [0.0, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5], start_block=21)
    assert later == [Decision.NONE] * 6 + [Decision.PAUSE]


def test_an_unconfirmed_pause_resumes_after_the_window_and_counts_as_false() -> None:
    policy = BargeIn(CONFIG)
    run(policy, [0.0] * 10 + [0.9] * 6)
    paused_at = policy.paused_at_s
    assert paused_at is not None
    # Paused: the segmenter hears the user; blocks are no longer "playing".
    at_s = paused_at
    assert policy.admit(playing=False, should_listen=False, at_s=at_s) is Admission.HEAR
    assert policy.expired(paused_at + 0.99) is Decision.NONE
    assert policy.expired(paused_at + 1.0) is Decision.RESUME
    assert policy.state is State.WATCHING
    assert policy.confirm() is False  # a transcript arriving now is too late
    # No new warm-up: speech right away pauses again after min_interruption_ms.
    assert run(policy, [0.9] * 6, start_block=60)[-1] is Decision.PAUSE


def test_an_empty_transcript_resumes_at_once() -> None:
    policy = BargeIn(CONFIG)
    run(policy, [0.0] * 10 + [0.9] * 6)
    assert policy.reject(at_s=1.0) is Decision.RESUME
    assert policy.reject(at_s=1.1) is Decision.NONE  # already resumed


def test_a_confirmed_interruption_keeps_the_users_speech_in_the_segmenter() -> None:
    policy = BargeIn(CONFIG)
    run(policy, [0.0] * 10 + [0.9] * 6)
    assert policy.confirm() is True
    assert policy.state is State.INTERRUPTED
    assert policy.expired(100.0) is Decision.NONE  # no resume once confirmed
    # Listening re-opens for the user's turn: not afresh, their speech is already in there.
    assert policy.admit(playing=False, should_listen=True, at_s=1.1) is Admission.HEAR
    assert state_of(policy) is State.LISTENING


def test_an_interruption_the_user_had_finished_is_a_turn_the_agent_is_busy_with() -> None:
    policy = BargeIn(CONFIG)
    run(policy, [0.0] * 10 + [0.9] * 6)
    assert policy.confirm() is True
    # Their whole turn was transcribed: the agent answers it, and is deaf until its reply plays.
    assert policy.admit(playing=False, should_listen=False, at_s=1.0) is Admission.DROP
    assert policy.admit(playing=True, should_listen=False, at_s=2.0) is Admission.WATCH
    assert policy.state is State.WATCHING


def test_the_next_reply_warms_up_again() -> None:
    policy = BargeIn(CONFIG)
    run(policy, [0.0] * 20)
    policy.admit(playing=False, should_listen=True, at_s=1.0)  # the reply played out
    policy.admit(playing=False, should_listen=False, at_s=2.0)  # the next turn is busy
    assert Decision.PAUSE not in run(policy, [0.9] * 15, start_block=100)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        BargeInConfig(min_interruption_ms=0)
    with pytest.raises(ValueError):
        BargeInConfig(warmup_ms=-1)
