"""A stand-in model whose timing tests control (tests/test_server*.py)."""
from __future__ import annotations

import threading
import time

from chatgui.common.records import Capabilities, ModelInfo
from chatgui.engine import GenerationStats, TokenEvent


class SlowModel:
    """Yields "x" every `delay` seconds, up to `tokens`, until cancelled; can be held at the
    start of each reply until `release` is set. A ServableBackend (chatgui.common.backend) that
    declares it has no token probabilities and no JSON constraints."""
    name, file_name, sha256, context_length = "slow", "slow", None, 1024
    capabilities = Capabilities(token_probabilities=False, next_token_logits=False, reply_prefix=False,
                                batched_candidates=False, json_constraints=False)

    def info(self):
        return ModelInfo(self.name, "", "cpu", self.context_length, capabilities=self.capabilities)

    def count_tokens(self, messages):
        return 3

    def tokenize(self, text):
        return [1] * len(text)

    def __init__(self, tokens=1000, delay=0.01):
        self.tokens, self.delay = tokens, delay
        self.release = threading.Event()
        self.release.set()
        self.started = []            # one cancel Event per reply that started
        self.cancelled = threading.Event()

    def generate(self, messages, settings, cancel, **options):
        self.started.append(cancel)
        return SlowGeneration(self, cancel)


class SlowGeneration:
    def __init__(self, model, cancel):
        self.model, self.cancel = model, cancel
        self.stats = GenerationStats(prompt_tokens=3)
        self.text = ""

    def __iter__(self):
        m = self.model
        while not m.release.wait(0.01):
            if self.cancel.is_set():
                break
        for i in range(m.tokens):
            if self.cancel.is_set():
                self.stats.finish_reason = "cancelled"
                m.cancelled.set()
                return
            time.sleep(m.delay)
            self.text += "x"
            self.stats.generated_tokens = i + 1
            yield TokenEvent(i, 1, "x", 1.0, (), 1.0, ())
        self.stats.finish_reason = "length"


def wait_until(condition, timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
