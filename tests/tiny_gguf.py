"""Write tiny GGUF chat models with random weights (fixed seed) for fast engine and UI tests."""
from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
          " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("o", "n"), ("e", "r"), ("Ġ", "s")]


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    tokens = SPECIALS + sorted(set(bytes_to_unicode().values())) + [a + b for a, b in MERGES]
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, types, [f"{a} {b}" for a, b in MERGES]


def _add(w: gguf.GGUFWriter, name: str, arr: np.ndarray, qtype: str):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim == 1 or qtype == "F32":
        w.add_tensor(name, arr)
    elif qtype == "F16":
        w.add_tensor(name, arr.astype(np.float16))
    else:
        qt = gguf.GGMLQuantizationType[qtype]
        w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)


def write_tiny_model(path: Path, *, arch: str = "llama", qtype: str = "F32", seed: int = 0, dim: int = 64,
                     n_layers: int = 2, n_heads: int = 4, n_kv_heads: int = 2, hidden: int = 128,
                     context: int = 256, chat_template: str | None = CHATML, tied: bool = False,
                     scale: float = 0.5, pre_tokenizer: str = "smollm", edit=None) -> Path:
    """A random-weight model that really runs through the whole engine. Row lengths are multiples
    of 32 so every block quant type can hold them. edit(writer): change metadata before it is
    written (a key added again replaces the first)."""
    rng = np.random.default_rng(seed)
    tokens, types, merges = vocabulary()
    vocab = len(tokens)
    head_dim = dim // n_heads
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}-{qtype}")
    w.add_context_length(context)
    w.add_embedding_length(dim)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(hidden)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre_tokenizer)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    def rnd(*shape):
        return rng.standard_normal(shape).astype(np.float32) * scale / np.sqrt(shape[-1])

    _add(w, "token_embd.weight", rng.standard_normal((vocab, dim)).astype(np.float32), qtype)
    _add(w, "output_norm.weight", 1 + 0.1 * rng.standard_normal(dim), "F32")
    if not tied:
        _add(w, "output.weight", rnd(vocab, dim) * 8, qtype)
    qo, kvo = n_heads * head_dim, n_kv_heads * head_dim
    for i in range(n_layers):
        p = f"blk.{i}."
        _add(w, p + "attn_norm.weight", 1 + 0.1 * rng.standard_normal(dim), "F32")
        _add(w, p + "attn_q.weight", rnd(qo, dim) * 4, qtype)
        _add(w, p + "attn_k.weight", rnd(kvo, dim) * 4, qtype)
        _add(w, p + "attn_v.weight", rnd(kvo, dim), qtype)
        _add(w, p + "attn_output.weight", rnd(dim, qo), qtype)
        if arch == "qwen2":
            _add(w, p + "attn_q.bias", 0.1 * rng.standard_normal(qo), "F32")
            _add(w, p + "attn_k.bias", 0.1 * rng.standard_normal(kvo), "F32")
            _add(w, p + "attn_v.bias", 0.1 * rng.standard_normal(kvo), "F32")
        if arch in ("qwen3", "gemma3"):
            _add(w, p + "attn_q_norm.weight", 1 + 0.1 * rng.standard_normal(head_dim), "F32")
            _add(w, p + "attn_k_norm.weight", 1 + 0.1 * rng.standard_normal(head_dim), "F32")
        if arch == "gemma3":
            _add(w, p + "post_attention_norm.weight", 1 + 0.1 * rng.standard_normal(dim), "F32")
            _add(w, p + "post_ffw_norm.weight", 1 + 0.1 * rng.standard_normal(dim), "F32")
        _add(w, p + "ffn_norm.weight", 1 + 0.1 * rng.standard_normal(dim), "F32")
        _add(w, p + "ffn_gate.weight", rnd(hidden, dim), qtype)
        _add(w, p + "ffn_up.weight", rnd(hidden, dim), qtype)
        _add(w, p + "ffn_down.weight", rnd(dim, hidden), qtype)
    if edit is not None:
        edit(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)
