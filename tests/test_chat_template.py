"""Chat templates are untrusted: sandboxed, time- and size-limited; ChatML when absent."""
from __future__ import annotations

import time

import pytest

from chatgui.engine import ModelLoadError, TemplateError, load_model
from chatgui.engine.chat_template import ChatTemplate
from tiny_gguf import write_tiny_model

MSG = [{"role": "user", "content": "Hi"}]


def test_chatml_fallback_when_file_has_no_template(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", chat_template=None), device="cpu")
    assert m.template.is_fallback
    assert m.render_chat(MSG) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert m.render_chat(MSG, add_generation_prompt=False) == "<|im_start|>user\nHi<|im_end|>\n"


def test_template_helpers_work():
    t = ChatTemplate("{{ bos_token }}{% for m in messages %}{{ m.content | tojson }}{% endfor %}"
                     "{% if not messages %}{{ raise_exception('no messages') }}{% endif %}", bos_token="<s>")
    assert t.render([{"role": "user", "content": 'a"é'}]) == '<s>"a\\"é"'
    with pytest.raises(TemplateError, match="no messages"):
        t.render([])


@pytest.mark.parametrize("source,what", [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox"),
    ("{{ cycler.__init__.__globals__.os.system('echo pwned') }}", "sandbox"),
    ("{{ self.__init__.__globals__.__builtins__.__import__('os').listdir('/') }}", "sandbox"),
    ("{% import 'os' as os %}{{ os }}", "failed"),
    ("{% include '/etc/passwd' %}", "failed"),
    ("{{ 'x' * 100000000 }}", "enormous"),
    ("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}", "too much text"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed"),
    ("{{ 2 ** 100000000 }}", "enormous"),
])
def test_hostile_templates_are_refused(source, what):
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match=what):
        ChatTemplate(source).render(MSG)
    assert time.perf_counter() - t0 < 3


def test_endless_loop_times_out():
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="too long"):
        ChatTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").render(MSG)
    assert time.perf_counter() - t0 < 4


def test_template_that_does_not_compile_is_a_load_error(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", chat_template="{% for %}")
    with pytest.raises(ModelLoadError, match="does not compile"):
        load_model(p, device="cpu")


def test_no_code_ran(tmp_path):
    marker = tmp_path / "pwned"
    src = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    with pytest.raises(TemplateError):
        ChatTemplate(src).render(MSG)
    assert not marker.exists()
