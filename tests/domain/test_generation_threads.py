from domain.generation_threads import GenerationThreads, ThreadPlan, ThreadsConfig

TWO_CORES = ThreadsConfig(cores=2, most=2, niceness=10, shared_niceness=0, settle_s=30.0)


def test_an_idle_machine_gets_every_thread_at_the_configured_niceness() -> None:
    assert GenerationThreads(TWO_CORES, others=0.05).plan == ThreadPlan(2, 10)
    assert GenerationThreads(TWO_CORES, others=None).plan == ThreadPlan(2, 10)  # unknown


def test_a_busy_core_at_start_leaves_one_thread() -> None:
    assert GenerationThreads(TWO_CORES, others=1.0).plan == ThreadPlan(1, 0)
    assert GenerationThreads(TWO_CORES, others=0.6).plan == ThreadPlan(1, 0)
    assert GenerationThreads(TWO_CORES, others=0.4).plan == ThreadPlan(2, 10)
    assert GenerationThreads(TWO_CORES, others=3.0).plan == ThreadPlan(1, 0)  # never none


def test_more_cores_leave_more_threads_up_to_the_most() -> None:
    config = ThreadsConfig(cores=8, most=4, niceness=10)
    assert GenerationThreads(config, others=2.0).plan.threads == 4
    assert GenerationThreads(config, others=5.0).plan.threads == 3


def test_a_load_that_comes_takes_threads_at_once() -> None:
    threads = GenerationThreads(TWO_CORES, others=0.0)
    assert threads.load(10.0, 0.1) is None
    assert threads.load(12.0, 1.0) == ThreadPlan(1, 0)
    assert threads.load(14.0, 1.0) is None  # nothing new


def test_threads_come_back_only_after_the_machine_stayed_quiet() -> None:
    threads = GenerationThreads(TWO_CORES, others=1.0)
    assert threads.load(0.0, 0.1) is None
    assert threads.load(20.0, 0.1) is None
    assert threads.load(25.0, 0.9) is None  # busy again: the wait starts over
    assert threads.load(26.0, 0.1) is None
    assert threads.load(50.0, 0.1) is None
    assert threads.load(56.0, 0.1) == ThreadPlan(2, 10)


def test_a_slow_reply_on_several_threads_takes_one_away() -> None:
    threads = GenerationThreads(TWO_CORES, others=0.0)
    assert threads.pace(tokens=40, tokens_per_s=18.0) is None
    assert threads.pace(tokens=5, tokens_per_s=0.5) is None  # too short to tell
    assert threads.pace(tokens=40, tokens_per_s=0.7) == ThreadPlan(1, 0)
    assert threads.pace(tokens=40, tokens_per_s=0.7) is None  # one thread is the least
    assert threads.load(1.0, 0.0) is None  # and they come back only after a quiet while
    assert threads.load(31.0, 0.0) == ThreadPlan(2, 10)
