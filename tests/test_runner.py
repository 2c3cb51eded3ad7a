"""The model runner: one thread, jobs in order, cancel, a bounded waiting line, a clean close."""
import threading

import pytest

from chatgui.common.runner import ModelRunner, NoBackend, QueueFull, ShuttingDown, reply_job
from chatgui.common.types import GenerationStats, SamplingSettings, TokenEvent
from chatgui.common.prompt import PromptMessage


class FakeGeneration:
    def __init__(self, words, cancel):
        self.words, self.cancel = words, cancel
        self.stats = GenerationStats(prompt_tokens=3)
        self.text, self.token_ids = "", []

    def __iter__(self):
        for i, w in enumerate(self.words):
            if self.cancel.is_set():
                self.stats.finish_reason = "cancelled"
                return
            self.text += w
            self.token_ids.append(i)
            yield TokenEvent(i, i, w, 1.0, (), 1.0, ())
        self.stats.finish_reason = "stop"


class FakeBackend:
    def __init__(self, words=("a", "b", "c"), gate: threading.Event | None = None):
        self.words, self.gate, self.entered = words, gate, threading.Event()

    def generate(self, messages, settings=None, cancel=None, reply_prefix_ids=()):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        return FakeGeneration(self.words, cancel)


def collect():
    events, done = [], threading.Event()

    def sink(job, kind, value):
        events.append((kind, value))
        if kind in ("done", "error"):
            done.set()
    return events, done, sink


def test_jobs_run_in_order_on_one_thread():
    runner = ModelRunner("test-runner")
    order = []
    jobs = [runner.submit(lambda job, i=i: order.append((i, threading.current_thread().name))) for i in range(5)]
    assert all(j.done.wait(5) for j in jobs)
    assert [i for i, _ in order] == [0, 1, 2, 3, 4] and {name for _, name in order} == {"test-runner"}
    assert runner.close()


def test_a_reply_streams_started_tokens_done():
    runner = ModelRunner()
    runner.backend = FakeBackend()
    events, done, sink = collect()
    runner.submit(reply_job(runner, [PromptMessage.user("hi")], SamplingSettings()), sink)
    assert done.wait(5)
    kinds = [k for k, _ in events]
    assert kinds == ["started", "token", "token", "token", "done"]
    assert events[-1][1].text == "abc"
    runner.close()


def test_cancel_stops_a_running_reply_and_skips_a_waiting_one():
    gate = threading.Event()
    runner = ModelRunner()
    runner.backend = backend = FakeBackend(words=("x",) * 1000, gate=gate)
    events, done, sink = collect()
    running = runner.submit(reply_job(runner, [], SamplingSettings()), sink)
    assert backend.entered.wait(5)
    waiting = runner.submit(lambda job: pytest.fail("a cancelled job must not run"))
    waiting.cancel()
    running.cancel()
    gate.set()
    assert done.wait(5) and waiting.done.wait(5)
    assert events[-1][1].stats.finish_reason == "cancelled"
    runner.close()


def test_no_backend_is_an_error_event_and_the_thread_keeps_serving():
    runner = ModelRunner()
    events, done, sink = collect()
    runner.submit(reply_job(runner, [], SamplingSettings()), sink)
    assert done.wait(5) and isinstance(events[-1][1], NoBackend)
    assert runner.submit(lambda job: None).done.wait(5)
    runner.close()


def test_the_waiting_line_is_bounded_and_close_refuses_new_jobs():
    gate, entered = threading.Event(), threading.Event()
    runner = ModelRunner(max_waiting=2)
    runner.submit(lambda job: (entered.set(), gate.wait(5)))
    assert entered.wait(5)                       # the first job is running, the line is empty
    events, _done, sink = collect()
    runner.submit(lambda job: pytest.fail("never runs"), sink)
    runner.submit(lambda job: None)
    with pytest.raises(QueueFull):
        runner.submit(lambda job: None)
    assert not runner.close(timeout=0.1)         # the running job ignores its cancel flag for now
    assert [k for k, _ in events] == ["error"] and isinstance(events[0][1], ShuttingDown)
    with pytest.raises(ShuttingDown):
        runner.submit(lambda job: None)
    gate.set()
    assert runner.close()


def test_a_cancel_flag_calls_back_once_when_set_and_forgets_on_request():
    from chatgui.common.runner import CancelFlag, Job

    flag, calls = CancelFlag(), []
    flag.on_set(lambda: calls.append("a"))
    forget = flag.on_set(lambda: calls.append("b"))
    forget()
    flag.set()
    flag.set()
    assert calls == ["a"] and flag.is_set()
    flag.on_set(lambda: calls.append("late"))      # already set: called at once
    assert calls == ["a", "late"]
    assert isinstance(Job(lambda job: None).cancelled, CancelFlag)
