"""The fit_prompt that the linear one replaced (it re-renders after each dropped turn): the
reference that tests/test_prompt_fitting.py and benchmarks/bench_history.py compare against."""
from chatgui.common.prompt import Role
from chatgui.engine.errors import PromptTooLongError


def fit_by_rerendering(model, messages, max_new_tokens):
    """The previous fit_prompt, quadratic, kept here as the reference."""
    messages = [m.text_only() for m in messages]
    system = [m for m in messages[:1] if m.role is Role.SYSTEM]
    rest = messages[len(system):]
    budget = model.context_length - max(1, min(max_new_tokens, model.context_length // 2))
    dropped = 0
    while True:
        ids = model.tokenize(model.render_chat(system + rest))
        if len(ids) <= budget or len(rest) <= 1:
            break
        n = 1
        while n < len(rest) - 1 and rest[n].role is not Role.USER:
            n += 1
        rest = rest[n:]
        dropped += n
    if len(ids) >= model.context_length:
        raise PromptTooLongError("too long")
    return ids, dropped
