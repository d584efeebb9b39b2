"""What the voice-activity detector hears, half duplex."""

from domain.mute_policy import Admission, HalfDuplex


def test_blocks_are_heard_while_listening_and_nothing_plays() -> None:
    policy = HalfDuplex()
    assert policy.admit(playing=False, should_listen=True) is Admission.HEAR
    assert policy.admit(playing=False, should_listen=True) is Admission.HEAR


def test_the_agent_does_not_hear_its_own_reply() -> None:
    policy = HalfDuplex()
    assert policy.admit(playing=True, should_listen=True) is Admission.DROP


def test_the_agent_does_not_hear_while_busy_with_a_turn() -> None:
    policy = HalfDuplex()
    assert policy.admit(playing=False, should_listen=False) is Admission.DROP


def test_hearing_resumes_afresh_after_a_deaf_stretch_and_only_once() -> None:
    policy = HalfDuplex()
    policy.admit(playing=False, should_listen=False)
    policy.admit(playing=True, should_listen=True)
    assert policy.admit(playing=False, should_listen=True) is Admission.HEAR_AFRESH
    assert policy.admit(playing=False, should_listen=True) is Admission.HEAR
