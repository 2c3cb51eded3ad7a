"""Render a model's own chat template safely.

Templates come inside model files from strangers (CVE-2024-34359 let one run code through
llama-cpp-python), so they run in jinja2's immutable sandbox, with a time limit, an output size
limit, and a size limit on every value they build (template_sandbox.py: no single operation can
ask for gigabytes). A file without a template gets ChatML.

Messages arrive as common/prompt.py PromptMessages and become the dicts a template iterates over
here (template_dicts), the one place they are made.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Sequence

from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SecurityError

from chatgui.common.harmony import final_answer, is_harmony
from chatgui.common.prompt import PromptMessage, Role

from .errors import TemplateError
from .template_sandbox import SizedSandbox, checked_filter, text_size

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
          " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")
MAX_TEMPLATE_CHARS = 256 * 1024
MAX_OUTPUT_CHARS = 8 * 1024 * 1024
MAX_SECONDS = 2.0


class _Limits(Exception):
    pass


def _raise_exception(message):
    text_size(message)   # the message is shown: not a text of gigabytes
    raise TemplateError(f"the chat template refused the conversation: {message}")


def _strftime_now(fmt) -> str:
    if not isinstance(fmt, str) or len(fmt) > 1000:   # every directive can write ~30 characters
        raise SecurityError("strftime_now wants a short text as its format")
    return datetime.now().strftime(fmt)


def _tojson(value, indent=None, ensure_ascii=False):
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def _make_env() -> SizedSandbox:
    env = SizedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    checked_filter(env, "tojson", _tojson)
    return env


class _Deadline:
    """A trace function that aborts template code running past its time limit.

    The sandbox stops attribute access but not a template that loops for ever; checking the
    clock on every traced line of the compiled template code does.
    """

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def __call__(self, frame, event, arg):
        if time.monotonic() > self.deadline:
            raise _Limits("the chat template took too long to render")
        return self


def template_dicts(messages: Sequence[PromptMessage]) -> list[dict]:
    """Messages as a template iterates over them (PromptMessage.to_template). An earlier gpt-oss
    reply is saved with its harmony channels; the template wants what it said to the user (it adds
    the channel markers itself, and drops the analysis of earlier turns, as the format asks)."""
    return [(m.with_content(final_answer(m.content)) if m.role is Role.ASSISTANT and is_harmony(m.content)
             else m).to_template() for m in messages]


class ChatTemplate:
    def __init__(self, source: str | None, bos_token: str = "", eos_token: str = ""):
        self.is_fallback = not source
        source = source or CHATML
        if not isinstance(source, str):
            raise TemplateError("the chat template is not text")
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError("the chat template is too large")
        self.source = source
        self.bos_token, self.eos_token = bos_token, eos_token
        try:
            self.template = _make_env().from_string(source)
        except JinjaTemplateError as e:
            raise TemplateError(f"the chat template does not compile ({e})") from e

    def render(self, messages: Sequence[PromptMessage], add_generation_prompt: bool = True, **extra) -> str:
        """The prompt text for these messages; extra: more template variables (`tools`, ...)."""
        return self.render_dicts(template_dicts(messages), add_generation_prompt, **extra)

    def render_dicts(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        """render() of messages already in the template's form (template_dicts), for a tool format
        that adds what PromptMessage does not hold (tool_calls.py: Gemma 4's tool_responses,
        Phi-4-mini's tools in the system message), and for llama.cpp's reference conversations."""
        variables = dict(messages=messages, add_generation_prompt=add_generation_prompt,
                         bos_token=self.bos_token, eos_token=self.eos_token)
        # tools stay undefined when there are none, as llama.cpp's server leaves them: Phi-4-mini's
        # template asks `tools is defined` and then loops over them (None would fail)
        variables.update({k: v for k, v in extra.items() if not (k == "tools" and v is None)})
        out, size = [], 0
        self.template.environment.start_render()
        previous = sys.gettrace()
        sys.settrace(_Deadline(MAX_SECONDS))
        try:
            for chunk in self.template.generate(**variables):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise _Limits("the chat template produced too much text")
                out.append(chunk)
        except TemplateError:
            raise
        except _Limits as e:
            raise TemplateError(str(e)) from None
        except SecurityError as e:
            raise TemplateError(f"the chat template was refused by the sandbox ({e})") from None
        except RecursionError:
            raise TemplateError("the chat template recursed too deeply") from None
        except Exception as e:  # any other failure inside untrusted template code
            raise TemplateError(f"the chat template failed ({type(e).__name__}: {e})") from None
        finally:
            sys.settrace(previous)
        return "".join(out)
