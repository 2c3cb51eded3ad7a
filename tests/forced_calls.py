"""One forced tool call generated and checked, shared by the call-format tests: a tiny random
model writes under the argument constraint, and what it finishes must parse and validate."""
from __future__ import annotations

import json

import jsonschema

from chatgui.common.types import SamplingSettings
from chatgui.engine.tool_calls import split_tool_calls, tool_constraint, tool_prompt_ids
from chatgui.common.prompt import PromptMessage


def forced_call_problems(model, fmt, tools, prompt: str, choice: str, parallel: bool, seed: int,
                         max_tokens: int) -> tuple[int, list]:
    """(calls produced, problems found) for one prompt with tool_choice `choice`."""
    constraint = tool_constraint(model, tools, choice, fmt, parallel=parallel)
    ids, _ = tool_prompt_ids(model, [PromptMessage.user(prompt)], tools, fmt, max_tokens)
    gen = model.generate([], SamplingSettings(seed=seed, max_new_tokens=max_tokens, temperature=1.0),
                         prompt_ids=ids, constraint=constraint)
    for _ in gen:
        pass
    text = model.detokenize(gen.token_ids)
    if gen.stats.finish_reason != "stop":
        return 0, [("did not finish", gen.stats.finish_reason, text)]
    _content, calls = split_tool_calls(text, fmt, tools)
    problems: list = [] if calls else [("no call", text)]
    by_name = {t.name: t for t in tools}
    for call in calls:
        if call.error:
            problems.append((call.error, text))
            continue
        if choice != "required":
            assert call.name == choice
        jsonschema.validate(call.arguments, by_name[call.name].parameters)   # an independent check
        json.loads(call.to_openai()["function"]["arguments"])
    return len(calls), problems
