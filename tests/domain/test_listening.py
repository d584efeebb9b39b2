import pytest

from domain import listening as t
from domain.listening import ListeningStateMachine, Phase


def to_speaking(machine: ListeningStateMachine) -> None:
    for transition in (t.SPEECH_STARTED, t.TURN_ENDED, t.REPLY_STARTED):
        assert machine.fire(transition, 0.0)


def test_the_happy_path_goes_round_and_back_to_listening() -> None:
    machine = ListeningStateMachine(watchdog_s=10)
    assert machine.should_listen
    seen = []
    for i, transition in enumerate(
        (t.SPEECH_STARTED, t.TURN_ENDED, t.REPLY_STARTED, t.RESPONSE_PLAYED)
    ):
        assert machine.fire(transition, float(i))
        seen.append((machine.phase, machine.should_listen))
    assert seen == [
        (Phase.USER_SPEAKING, True),
        (Phase.WAITING_FOR_REPLY, False),
        (Phase.SPEAKING, False),
        (Phase.LISTENING, True),
    ]


@pytest.mark.parametrize(
    "terminal", [t.RESPONSE_PLAYED, t.EMPTY_TRANSCRIPT, t.STAGE_FAILED, t.WATCHDOG_EXPIRED]
)
def test_every_terminal_path_reopens_listening(terminal: t.Transition) -> None:
    machine = ListeningStateMachine(watchdog_s=10)
    machine.fire(t.SPEECH_STARTED, 0.0)
    machine.fire(t.TURN_ENDED, 0.0)
    assert machine.fire(terminal, 1.0)
    assert machine.should_listen


def test_a_transition_from_the_wrong_phase_changes_nothing() -> None:
    machine = ListeningStateMachine(watchdog_s=10)
    assert not machine.fire(t.REPLY_STARTED, 0.0)
    assert not machine.fire(t.RESPONSE_PLAYED, 0.0)
    assert machine.phase is Phase.LISTENING


def test_the_watchdog_reopens_listening_after_no_progress() -> None:
    machine = ListeningStateMachine(watchdog_s=5)
    machine.fire(t.SPEECH_STARTED, 0.0)
    machine.fire(t.TURN_ENDED, 0.0)
    machine.progress(3.0)
    assert not machine.check_watchdog(7.9)
    assert machine.check_watchdog(8.0)
    assert machine.should_listen


def test_the_watchdog_leaves_a_listening_agent_alone() -> None:
    machine = ListeningStateMachine(watchdog_s=5)
    assert not machine.check_watchdog(100.0)
    machine.fire(t.SPEECH_STARTED, 0.0)
    assert not machine.check_watchdog(100.0)  # the user may talk for a long time


def test_watchdog_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ListeningStateMachine(watchdog_s=0)
