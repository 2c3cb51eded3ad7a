"""Write tiny GGUF chat models with random weights (fixed seed) for fast engine and UI tests."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

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


# A Gemma 4 style vocabulary (tokenizer.ggml.model "gemma4"): raw characters with spaces as
# U+2581, merges ranked as listed, byte tokens for what has no token (here "É" and "'"), and
# newline runs.
GEMMA4_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
GEMMA4_MERGES = [("\u2581", "t"), ("h", "e"), ("\u2581t", "he"), ("i", "n"), ("\u2581", "a"), ("o", "n"), ("e", "r"),
                 ("\n", "\n"), ("\u2581", "\u2581"), ("\u2581", "s"), ("T", "H"), ("TH", "E")]


def gemma4_vocabulary() -> tuple[list[str], list[int], list[str]]:
    chars = [chr(c) for c in range(33, 127) if chr(c) != "'"] + ["\u2581", "\n", "\t", "\r", "é"]
    tokens = GEMMA4_SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + chars + [a + b for a, b in GEMMA4_MERGES]
    types = [3] * len(GEMMA4_SPECIALS) + [6] * 256 + [1] * (len(chars) + len(GEMMA4_MERGES))
    return tokens, types, [f"{a} {b}" for a, b in GEMMA4_MERGES]


# A SentencePiece vocabulary (tokenizer.ggml.model "llama", as Gemma 3's and Llama 2's): no merges
# but scores, the merged pieces' deciding which neighbours join first (some tied: the leftmost
# pair wins), byte tokens for what has no token (here "É" and "'"), and a user-defined "\n\n".
SPM_PIECES = {"\u2581t": -1.0, "he": -1.0, "\u2581the": -2.0, "in": -3.0, "\u2581a": -3.0, "on": -4.0, "er": -4.0,
              "\u2581\u2581": -5.0, "\u2581s": -6.0, "TH": -6.0, "THE": -7.0, "th": -8.0, "\u2581th": -9.0, "12": -9.0,
              "123": -10.0, "23": -10.0, "Wor": -11.0, "or": -12.0, "ld": -12.0, "Wo": -13.0}


def spm_vocabulary() -> tuple[list[str], list[int], list[float]]:
    chars = [chr(c) for c in range(33, 127) if chr(c) != "'"] + ["\u2581", "\n", "\t", "\r", "é"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + chars + list(SPM_PIECES) + ["\n\n"]
    types = [2, 3, 3] + [6] * 256 + [1] * (len(chars) + len(SPM_PIECES)) + [4]
    scores = [0.0] * 259 + [-20.0] * len(chars) + list(SPM_PIECES.values()) + [0.0]
    return tokens, types, scores


def _add(w: gguf.GGUFWriter, name: str, arr: np.ndarray, qtype: str):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim == 1 or qtype == "F32" or name.endswith(".bias") or arr.shape[-1] % 32:
        w.add_tensor(name, arr)
    elif qtype == "F16":
        w.add_tensor(name, arr.astype(np.float16))
    else:
        qt = gguf.GGMLQuantizationType[qtype]
        w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)


def _values(rng: np.random.Generator, name: str, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Random values for tensor `name`, scaled so that a random model's activations stay in a
    range where its logits are neither flat nor saturated."""
    if name.endswith("norm.weight"):
        return 1 + 0.1 * rng.standard_normal(shape)
    if name.startswith(("rope_factors", "rope_freqs")):
        return 1 + 3 * np.abs(rng.standard_normal(shape))
    if name.endswith("layer_output_scale.weight"):
        return 0.5 + np.abs(rng.standard_normal(shape))
    if name.endswith("ffn_gate_inp.scale"):    # (gemma4's router input: RMS-normed / sqrt(dim), times this)
        return 4 + 2 * np.abs(rng.standard_normal(shape))
    if name.endswith("ffn_down_exps.scale"):   # (gemma4: each expert's output scale)
        return 0.5 + np.abs(rng.standard_normal(shape))
    if name.endswith(".ssm_a"):                # -exp(A_log): a decay, never a growth
        return -np.exp(0.5 * rng.standard_normal(shape))
    if name.endswith("attn_sinks.weight"):
        return rng.standard_normal(shape)
    if name.endswith(".bias"):
        return 0.1 * rng.standard_normal(shape)
    if name == "token_embd.weight":
        return rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape).astype(np.float32) * scale / np.sqrt(shape[-1])
    if name == "output.weight":
        return w * 8
    if name.endswith(("attn_q.weight", "attn_k.weight")):
        return w * 4
    if name.endswith("attn_qkv.weight"):       # (between attn_q/k's and attn_v's)
        return w * 3
    if name.endswith("ffn_gate_inp.weight"):   # a router that prefers some experts clearly
        return w * 8
    if name.endswith("ffn_gate_up_exps.weight"):   # (gemma4: activations past GELU's near-linear middle)
        return w * 6
    return w


def _shortconv_layers(spec, meta: dict, n_layers: int) -> tuple[int, ...]:
    """Layers the per-layer KV head counts mark as short convolutions (0 heads; lfm2)."""
    pattern = meta.get("attention.head_count_kv")
    if spec is None or not spec.shortconv or not pattern:
        return ()
    return tuple(i for i in range(n_layers) if not pattern[i % len(pattern)])


def write_tiny_model(path: Path, *, arch: str = "llama", qtype: str = "F32", seed: int = 0, dim: int = 64,
                     n_layers: int = 2, n_heads: int = 4, n_kv_heads: int = 2, hidden: int = 128,
                     context: int = 256, chat_template: str | None = CHATML, tied: bool = False,
                     scale: float = 0.5, pre_tokenizer: str = "smollm", metadata: dict | None = None,
                     edit=None, tokenizer: str = "gpt2", control_tokens: tuple[str, ...] = ()) -> Path:
    """A random-weight model that really runs through the whole engine: the tensors and metadata
    its architecture's entry in chatgui/engine/archs.py says. Row lengths are multiples of 32 so
    every block quant type can hold them. The same arguments write the same bytes.
    edit(writer): change metadata before it is written (a key added again replaces the first).
    control_tokens: more special tokens at the end of the vocabulary (a template's markers, e.g.
    gpt-oss's <|channel|> or Gemma 4's <|tool_call>, which real vocabularies hold as one token)."""
    from chatgui.engine.archs import ARCHS, apply_layer_layout, deltanet_layers, tensor_shapes

    spec = ARCHS.get(arch)
    meta = {**(spec.test_metadata if spec else {}), **(metadata or {})}   # metadata: over the entry's own
    rng = np.random.default_rng(seed)
    scores = None
    if tokenizer == "llama":
        tokens, types, scores = spm_vocabulary()
        merges = []
    else:
        tokens, types, merges = gemma4_vocabulary() if tokenizer == "gemma4" else vocabulary()
    tokens, types = tokens + list(control_tokens), types + [3] * len(control_tokens)
    vocab = len(tokens)
    head_dim = dim // n_heads
    w = gguf.GGUFWriter(str(path), arch)
    # (not "phi3" in the name: llama.cpp then expects Phi-3's own special tokens in the vocabulary)
    w.add_name(f"tiny-{arch}-{qtype}".replace("phi3", "phi-three"))
    w.add_context_length(context)
    w.add_embedding_length(dim)
    w.add_block_count(n_layers)
    if "feed_forward_length" not in meta:
        w.add_feed_forward_length(hidden)
    w.add_head_count(n_heads)
    if "attention.head_count_kv" not in meta:
        w.add_head_count_kv(n_kv_heads)
    if "rope.dimension_count" not in meta:
        w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    for key, value in meta.items():
        name = f"{arch}.{key}"
        if isinstance(value, list):       # per layer: the pattern repeated over the layers
            w.add_array(name, [value[i % len(value)] for i in range(n_layers)])
        elif isinstance(value, tuple):    # an array as it is
            w.add_array(name, list(value))
        elif isinstance(value, str):
            w.add_string(name, value)
        elif isinstance(value, int):
            w.add_uint32(name, value)
        else:
            w.add_float32(name, value)
    w.add_tokenizer_model(tokenizer)
    if tokenizer == "gpt2":
        w.add_tokenizer_pre(pre_tokenizer)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges:
        w.add_token_merges(merges)
    if scores is not None:
        w.add_token_scores(scores)
    if tokenizer == "gemma4":           # (as Gemma 4 files: scores, <bos> 2, <eos> 1, BOS added)
        w.add_token_scores([0.0] * len(tokens))
        w.add_bos_token_id(2)
        w.add_eos_token_id(1)
        w.add_add_bos_token(True)
    else:
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    # The ModelArgs fields tensor_shapes reads: the common ones, then those the architecture's
    # metadata keys set (archs.Key), from what was written.
    written = {"feed_forward_length": hidden, **meta}
    args = SimpleNamespace(dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
                           hidden_dim=hidden, vocab_size=vocab, rope_dim=meta.get("rope.dimension_count", head_dim),
                           tied_embeddings=tied or (spec is not None and spec.always_tied),
                           n_experts=0, expert_hidden=0, shortconv_kernel=0,
                           shortconv_layers=_shortconv_layers(spec, meta, n_layers), deltanet_layers=(),
                           swa_layers=(), kv_heads=(), head_dim_swa=0, kv_shared_from=0, per_layer_dim=0,
                           hidden_per_layer=(), k_eq_v_layers=spec.test_k_eq_v_layers if spec else ())
    if isinstance(meta.get("feed_forward_length"), list):
        ff = meta["feed_forward_length"]
        args.hidden_per_layer = tuple(ff[i % len(ff)] for i in range(n_layers))
    if "attention.key_length" in meta:
        args.head_dim = meta["attention.key_length"]
    for key in spec.keys if spec else ():
        setattr(args, key.field, written.get(key.key, key.default))
    if spec is not None:
        apply_layer_layout(spec, args, lambda key, default: [meta[key][i % len(meta[key])] for i in range(n_layers)]
                           if isinstance(meta.get(key), list) else meta.get(key, default))
    if spec is not None and spec.deltanet:
        args.deltanet_layers = deltanet_layers(spec, n_layers, args.full_attention_interval)
    # (an architecture the engine does not know is written as llama: its refusal is what is tested)
    for name, shape in tensor_shapes(spec or ARCHS["llama"], args).items():
        expert_qtype = spec.test_expert_qtype if spec and qtype != "F32" and name.endswith("_exps.weight") else None
        _add(w, name, _values(rng, name, shape, scale), expert_qtype or qtype)
    if edit is not None:
        edit(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)
