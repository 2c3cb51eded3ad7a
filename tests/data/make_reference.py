"""Make the llama.cpp reference data the parity tests compare the engine with.

    python tests/data/make_reference.py MODEL.gguf [MODEL.gguf ...]

Writes tests/data/<model file stem>.llamacpp.json per model. Needs llama-cpp-python (a
benchmark/reference tool, never an app dependency). What each file holds:
- tokenize: {text, ids}: llama.cpp's tokenize(text, add_bos=the model's own setting, special=True)
- teacher_forced: {text, ids, top5_ids, top5_logprobs}: the whole text fed at once; at every
  position llama.cpp's five most likely next tokens and their log-probabilities
- detokenize: {ids, text}: llama.cpp's detokenize(ids) (control tokens left out) of the ids of
  every tokenize and teacher_forced text, a leading BOS included in ids
- greedy_chat: {messages, prompt, prompt_ids, greedy_ids, greedy_text}: the model's chat template
  rendered with add_generation_prompt=True and llama.cpp's greedy continuation (not a parity
  test: near-ties may go either way)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TOKENIZE = ["Hello, world!", "The capital of France is Paris.", "  leading spaces and\ttabs\nnewlines\n\n",
            "def add(a, b):\n    return a + b\n", "Ünïcödé: café, naïve, résumé — “quotes”", "ChatGPT的工作原理解析",
            "emoji 🤖🎨 end", "1234567890 3.14159 1e-9", "https://example.com/path?q=1&x=2",
            "<|im_start|>user\nx<tool_call>y</tool_call><|im_end|>\n<start_of_turn>z<end_of_turn>"]
TEACHER_FORCED = [
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were striking "
    "thirteen.",
    "Photosynthesis is the process by which green plants and some other organisms use sunlight to synthesize foods "
    "from carbon dioxide and water. It generally involves the green pigment chlorophyll and generates oxygen as a "
    "byproduct. The light-dependent reactions take place in the thylakoid membranes, where light energy is "
    "converted into chemical energy in the form of ATP and NADPH.",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n\n\nif __name__ == \"__main__\":\n    for i in range(10):\n"
    "        print(i, fibonacci(i))\n",
    "In 1969, Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while Michael Collins "
    "orbited above in the command module. The mission, Apollo 11, launched from Florida on July 16 and returned "
    "safely to Earth eight days later.",
]
CHATS = [[{"role": "user", "content": "What is the capital of France?"}],
         [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Say hello."}]]
SPECIAL_TOKENS = "special"       # chat-template control tokens are parsed as one token each


def make(path: Path) -> dict:
    from llama_cpp import Llama, __version__
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    m = Llama(model_path=str(path), n_ctx=2048, n_threads=2, logits_all=True, verbose=False, seed=0)
    add_bos = str(m.metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
    tok = lambda text: m.tokenize(text.encode(), add_bos=add_bos, special=True)  # noqa: E731
    out = {"model": path.name, "reference": f"llama.cpp via llama-cpp-python {__version__}, n_threads=2",
           "add_bos": add_bos, "tokenize": [], "teacher_forced": [], "detokenize": [], "greedy_chat": []}
    for text in TOKENIZE:
        out["tokenize"].append({"text": text, "ids": tok(text)})
    for text in TEACHER_FORCED:
        ids = tok(text)
        m.reset()
        m.eval(ids)
        sc = np.array(m.scores[:len(ids)], dtype=np.float64)
        mx = sc.max(1, keepdims=True)
        lp = sc - mx - np.log(np.exp(sc - mx).sum(1, keepdims=True))
        top = np.argsort(-lp, 1)[:, :5]
        out["teacher_forced"].append({"text": text, "ids": ids, "top5_ids": top.tolist(),
                                      "top5_logprobs": np.take_along_axis(lp, top, 1).round(4).tolist()})
    # (llama-cpp-python's detokenize drops the first space after a leading BOS, which llama.cpp's
    # own detokenize does not: the text is made without the BOS, a control token left out anyway)
    def text_of(ids):
        return m.detokenize(ids[1:] if ids[:1] == [m.token_bos()] else ids).decode("utf-8", "replace")
    out["detokenize"] = [{"ids": case["ids"], "text": text_of(case["ids"])}
                         for case in out["tokenize"] + out["teacher_forced"]]
    template = m.metadata.get("tokenizer.chat_template")
    if template:
        vocab = [m.detokenize([i], special=True).decode("utf-8", "replace") for i in (m.token_bos(), m.token_eos())]
        fmt = Jinja2ChatFormatter(template=template, bos_token=vocab[0], eos_token=vocab[1], add_generation_prompt=True)
        for chat in CHATS:
            try:
                prompt = fmt(messages=chat).prompt
            except Exception:         # a template that refuses a system message
                continue
            ids = m.tokenize(prompt.encode(), add_bos=False, special=True)
            m.reset()
            gen = []
            for t in m.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
                if t == m.token_eos() or len(gen) >= 32:
                    break
                gen.append(int(t))
            out["greedy_chat"].append({"messages": chat, "prompt": prompt, "prompt_ids": ids, "greedy_ids": gen,
                                       "greedy_text": m.detokenize(gen).decode("utf-8", "replace")})
    return out


def main() -> int:
    for arg in sys.argv[1:]:
        path = Path(arg)
        target = Path(__file__).parent / f"{path.stem.lower()}.llamacpp.json"
        target.write_text(json.dumps(make(path), ensure_ascii=False, indent=None) + "\n", encoding="utf-8")
        print("wrote", target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
