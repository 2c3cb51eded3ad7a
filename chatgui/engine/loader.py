"""GGUF metadata -> ModelArgs, GGUF tensors -> a ready Transformer."""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import Future

import torch
from torch import nn

from .errors import ModelLoadError
from .gguf_file import MAX_CONTEXT, MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, GGUFFile
from .gguf_header import StringArray
from .model import ModelArgs, Transformer, cache_slots
from . import native_linear
from .qlinear import (DENSE_TYPES, INT4_EXACT, INT4_REROUNDED, DenseLinear, Fp16Linear, Int4Linear, Int8GemmLinear,
                      Int8Linear, fp16_gemm_works, fp16_parts, fp16_rows_of, int4_groupwise, int4_parts, int8_rows_of,
                      linear_form, outliers_per_row, pack_int4, uses_fp16_for_int4, uses_int8_gemm)
from .quant import check_supported, dequantize
from .rows import DenseRows, QuantRows, _in_background, ranker_parts
from .weight_cache import WeightCache, release_pages
from chatgui.common.malloc import give_back_freed_memory

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3", "gemma3")
# The tensors each compact form keeps in the weight cache.
INT4_FIELDS = ("packed", "scales_zeros")
FP16_FIELDS = ("weight16", "exponent")
INT8_FIELDS = ("weight", "scales")
INT8_OUTLIER_FIELDS = INT8_FIELDS + ("outlier_cols", "outlier_vals")
RANKER_FIELDS = ("q", "scale")


def read_model_args(gf: GGUFFile) -> ModelArgs:
    arch = gf.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelLoadError(gf.path, "metadata field 'general.architecture' is missing")
    if arch not in SUPPORTED_ARCHS:
        raise ModelLoadError(
            gf.path, f"architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHS)})")
    k = lambda name: f"{arch}.{name}"  # noqa: E731
    dim = gf.get_int(k("embedding_length"), lo=1, hi=MAX_DIM)
    n_layers = gf.get_int(k("block_count"), lo=1, hi=MAX_LAYERS)
    n_heads = gf.get_int(k("attention.head_count"), lo=1, hi=MAX_HEADS)
    n_kv = gf.get_int(k("attention.head_count_kv"), n_heads, lo=1, hi=MAX_HEADS)
    if n_heads % n_kv:
        raise ModelLoadError(gf.path, f"{n_heads} attention heads cannot be shared by {n_kv} KV heads")
    head_dim = gf.get_int(k("attention.key_length"), dim // n_heads if dim % n_heads == 0 else 0, lo=1, hi=MAX_DIM)
    hidden = gf.get_int(k("feed_forward_length"), lo=1, hi=MAX_DIM * 16)
    tokens = gf.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, (list, StringArray)) or not tokens:
        raise ModelLoadError(gf.path, "the file has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    vocab = gf.get_int(k("vocab_size"), len(tokens), lo=1, hi=MAX_VOCAB)
    rope_dim = gf.get_int(k("rope.dimension_count"), head_dim, lo=2, hi=head_dim)
    ctx = gf.get_int(k("context_length"), 2048, lo=1, hi=1 << 40)
    args = ModelArgs(
        arch=arch, dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim,
        hidden_dim=hidden, vocab_size=vocab,
        norm_eps=gf.get_float(k("attention.layer_norm_rms_epsilon"), 1e-6),
        rope_base=gf.get_float(k("rope.freq_base"), 10000.0 if arch == "llama" else 1_000_000.0),
        rope_dim=rope_dim - rope_dim % 2,
        rope_interleaved=arch == "llama",
        train_context=min(ctx, MAX_CONTEXT),
        qkv_bias=arch == "qwen2",
        qk_norm=arch in ("qwen3", "gemma3"),
        tied_embeddings=not gf.has("output.weight"),
    )
    scaling = gf.get(k("rope.scaling.type"))
    if scaling == "linear":
        args.rope_scale = gf.get_float(k("rope.scaling.factor"), 1.0) or 1.0
    elif scaling not in (None, "none"):
        raise ModelLoadError(gf.path, f"RoPE scaling {scaling!r} is not supported")
    if arch == "gemma3":
        args.act = "gelu_tanh"
        args.embed_scale = math.sqrt(dim)
        args.post_norms = True
        args.sliding_window = gf.get_int(k("attention.sliding_window"), 512, lo=1, hi=MAX_CONTEXT)
        args.sliding_window_pattern = 6
        args.rope_base_local = 10000.0
        args.rope_base = gf.get_float(k("rope.freq_base"), 1_000_000.0)
    return args


def neox_to_interleaved(n_heads: int, head_dim: int, rope_dim: int) -> torch.Tensor:
    """Row order that turns rotate-half pairs (j, j + rope_dim/2) into adjacent pairs (2j, 2j+1)
    within each head. Applied to both Q and K it leaves every q.k product unchanged."""
    half = rope_dim // 2
    within = torch.arange(head_dim)
    within[:rope_dim] = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
    return (torch.arange(n_heads)[:, None] * head_dim + within[None, :]).flatten()


def _check_shape(gf: GGUFFile, name: str, expected: tuple):
    t = gf.tensor(name)
    if tuple(t.shape) != tuple(expected):
        raise ModelLoadError(gf.path, f"tensor {name!r} has shape {t.shape}, expected {expected}")
    check_supported(gf.path, t)


class PackedWeights:
    """Repacked tensors by module key: from the weight cache when it is valid, else made here
    (and then saved, on another thread, once the model is built)."""
    TRIM_EVERY = 256 << 20

    def __init__(self, cache: WeightCache | None):
        self.cache = cache
        self.cached: dict[str, dict[str, torch.Tensor]] = {}
        for name, t in ((cache.load() if cache else None) or {}).items():
            module, field = name.rsplit("/", 1)
            self.cached.setdefault(module, {})[field] = t
        self.all: dict[str, dict[str, torch.Tensor]] = {}
        self.mapped: set[str] = set()        # modules whose tensors come from the cache file
        self.made = False
        self._since_trim = 0

    def get(self, key: str, make, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The tensors `names` of module `key`: cached ones when the cache holds exactly those
        (a cache made when the module had another form is not used for it), else make()."""
        fields = self.cached.get(key)
        if fields is None or set(fields) != set(names):
            fields, self.made = make(), True
            # the conversion's temporaries (else ~1 GB more at peak); every TRIM_EVERY bytes made,
            # not after each module: each malloc_trim walks the heap (113 calls took 0.9 s)
            self._since_trim += sum(t.numel() * t.element_size() for t in fields.values())
            if self._since_trim >= self.TRIM_EVERY:
                give_back_freed_memory()
                self._since_trim = 0
        else:
            self.mapped.add(key)
        self.all[key] = fields
        return fields

    def release(self, key: str):
        """A function that gives back the memory of a mapped cache tensor of `key` once it is no
        longer read (None for tensors made here: the cache writer may still read them, and on
        memory that is not mapped from a file, release_pages would zero them)."""
        return release_pages if key in self.mapped else None

    def save(self) -> threading.Thread | None:
        """Write the cache on another thread (returned, started), dropping this object's
        references to the tensors: once written, only the modules hold them."""
        if self.cache is None:
            return None
        flat = {f"{m}/{k}": t for m, fields in self.all.items() for k, t in fields.items()}
        self.all = {}
        # Not a daemon thread: the interpreter waits for it at exit, so the cache is complete
        # (and written under a temporary name until then).
        thread = threading.Thread(target=self.cache.save, args=(flat,), name="chatgui-cache-save")
        thread.start()
        return thread


def build_transformer(gf: GGUFFile, args: ModelArgs, device: torch.device, max_seq: int,
                      precision: str = "auto", use_cache: bool = True) -> Transformer:
    """precision \"auto\": compact weights (int4 / int8 / bfloat16); \"float32\": the dequantized
    reference. use_cache: read and write the repacked weights under the models folder."""
    a = args
    q_out, kv_out = a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim
    # Check every shape before dequantizing anything: a bogus file fails fast and cheaply.
    expect = {"token_embd.weight": (a.vocab_size, a.dim), "output_norm.weight": (a.dim,)}
    if not a.tied_embeddings:
        expect["output.weight"] = (a.vocab_size, a.dim)
    for i in range(a.n_layers):
        p = f"blk.{i}."
        expect.update({
            p + "attn_norm.weight": (a.dim,), p + "attn_q.weight": (q_out, a.dim),
            p + "attn_k.weight": (kv_out, a.dim), p + "attn_v.weight": (kv_out, a.dim),
            p + "attn_output.weight": (a.dim, q_out), p + "ffn_norm.weight": (a.dim,),
            p + "ffn_gate.weight": (a.hidden_dim, a.dim), p + "ffn_up.weight": (a.hidden_dim, a.dim),
            p + "ffn_down.weight": (a.dim, a.hidden_dim),
        })
        if a.qkv_bias:
            expect.update({p + "attn_q.bias": (q_out,), p + "attn_k.bias": (kv_out,), p + "attn_v.bias": (kv_out,)})
        if a.qk_norm:
            expect.update({p + "attn_q_norm.weight": (a.head_dim,), p + "attn_k_norm.weight": (a.head_dim,)})
        if a.post_norms:
            expect.update({p + "post_attention_norm.weight": (a.dim,), p + "post_ffw_norm.weight": (a.dim,)})
    for name, shape in expect.items():
        _check_shape(gf, name, shape)

    def w(name):
        return dequantize(gf.path, gf.tensor(name))

    fast = precision != "float32"
    dense_dtype = torch.float32
    if fast:
        dense_dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    packed = PackedWeights(WeightCache(gf.path, device, str(dense_dtype)) if fast and use_cache else None)

    # Rows of Q and K (and their biases and norms) in NeoX layout are put in interleaved order.
    q_perm = k_perm = d_perm = None
    if not a.rope_interleaved:
        d_perm = neox_to_interleaved(1, a.head_dim, a.rope_dim)
        q_perm = neox_to_interleaved(a.n_heads, a.head_dim, a.rope_dim)
        k_perm = neox_to_interleaved(a.n_kv_heads, a.head_dim, a.rope_dim)
    perms = {"attn_q": q_perm, "attn_k": k_perm, "attn_q_norm": d_perm, "attn_k_norm": d_perm}

    def permuted(name: str, t: torch.Tensor) -> torch.Tensor:
        perm = perms.get(name.split(".")[-2])
        return t if perm is None else t[perm]

    def int4_fields(names, infos):
        parts = [int4_parts(t) if t.qtype_name in INT4_EXACT else int4_groupwise(w(n)) for n, t in zip(names, infos)]
        parts = [tuple(permuted(n, x) for x in p) for n, p in zip(names, parts)]
        return dict(zip(INT4_FIELDS, pack_int4(*(torch.cat(p) for p in zip(*parts)), dense_dtype)))

    def fp16_fields(names):
        parts = [fp16_rows_of(gf.path, gf.tensor(n)) for n in names]
        if all(p is not None for p in parts):        # the same as below, without a float32 copy
            parts = [permuted(n, p) for n, p in zip(names, parts)]
            w16, e = (parts[0] if len(parts) == 1 else torch.cat(parts)), 0
        else:
            w16, e = fp16_parts(torch.cat([permuted(n, w(n)) for n in names]))
        return dict(zip(FP16_FIELDS, (w16, torch.tensor([e], dtype=torch.int32))))

    def int8_fields(names, outliers=0, fields=INT8_FIELDS):
        parts = [tuple(permuted(n, x) for x in int8_rows_of(gf.path, gf.tensor(n), outliers=outliers))
                 for n in names]
        return dict(zip(fields, (torch.cat(p) for p in zip(*parts))))

    def linear(names: list[str], bias_names: list[str] | None = None, down: bool = False) -> nn.Module:
        bias = torch.cat([permuted(b, w(b)) for b in bias_names]) if bias_names else None
        infos = [gf.tensor(n) for n in names]
        if fast and device.type == "cpu" and native_linear.usable([t.qtype_name for t in infos], infos[0].shape[1]):
            # the native kernels read the file's blocks as stored (issue 33): nothing to convert or pack
            orders = [perms.get(n.split(".")[-2]) for n in names]
            return native_linear.NativeLinear(infos, bias, orders)
        out_features = sum(t.shape[0] for t in infos)
        form = linear_form([t.qtype_name for t in infos], infos[0].shape[1], device, dense_dtype,
                           out_features, down) if fast else "dense"
        if form == "int8gemm":
            k = outliers_per_row(infos[0].shape[1], down)
            fields = INT8_OUTLIER_FIELDS if k else INT8_FIELDS
            f = packed.get(names[0], lambda: int8_fields(names, k, fields), fields)
            mod = Int8GemmLinear(f["weight"], f["scales"], bias, packed.release(names[0]),
                                 (f["outlier_cols"], f["outlier_vals"]) if k else None)
            to_pack.append(mod)
            return mod
        if form == "int4":
            f = packed.get(names[0], lambda: int4_fields(names, infos), INT4_FIELDS)
            return Int4Linear(f["packed"], f["scales_zeros"], bias, out_features)
        if form == "fp16":
            f = packed.get(names[0], lambda: fp16_fields(names), FP16_FIELDS)
            mod = Fp16Linear(f["weight16"], int(f["exponent"][0]), bias, packed.release(names[0]))
            to_pack.append(mod)
            return mod
        if form == "int8":
            f = packed.get(names[0], lambda: int8_fields(names), INT8_FIELDS)
            return Int8Linear(f["weight"], f["scales"], bias, dense_dtype)
        return DenseLinear(torch.cat([permuted(n, w(n)) for n in names]), bias, dense_dtype)

    def rows(name: str, head: bool) -> nn.Module:
        t = gf.tensor(name)
        if fast and device.type == "cpu" and native_linear.usable([t.qtype_name], t.shape[1]):
            return native_linear.NativeRows(gf.path, t)
        if fast and device.type == "cpu" and t.qtype_name not in DENSE_TYPES and t.shape[1] % 32 == 0:
            ranker = None
            if head:
                f = packed.get(name, lambda: dict(zip(RANKER_FIELDS, ranker_parts(gf.path, t))), RANKER_FIELDS)
                ranker = f["q"], f["scale"]
            return QuantRows(gf.path, t, ranker, packed.release(name) if head else None)
        return DenseRows(w(name), dense_dtype)

    to_pack: list[Fp16Linear | Int8GemmLinear] = []
    model = Transformer(args)
    model.tok_embeddings = rows("token_embd.weight", head=a.tied_embeddings)
    model.output = model.tok_embeddings if a.tied_embeddings else rows("output.weight", head=True)
    model.norm.weight.copy_(w("output_norm.weight"))
    for i, layer in enumerate(model.layers):
        p = f"blk.{i}."
        norms = {layer.attn_norm: "attn_norm", layer.ffn_norm: "ffn_norm"}
        if a.qk_norm:
            norms.update({layer.attn.q_norm: "attn_q_norm", layer.attn.k_norm: "attn_k_norm"})
        if a.post_norms:
            norms.update({layer.attn_post_norm: "post_attention_norm", layer.ffn_post_norm: "post_ffw_norm"})
        for norm, name in norms.items():
            weight = permuted(p + name + ".weight", w(p + name + ".weight"))
            if not torch.isfinite(weight).all():
                raise ModelLoadError(gf.path, f"tensor {p + name}.weight holds NaN or infinite values")
            norm.weight.copy_(weight)
        qkv = [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"]
        layer.attn.wqkv = linear(qkv, [n.replace(".weight", ".bias") for n in qkv] if a.qkv_bias else None)
        layer.attn.wo = linear([p + "attn_output.weight"])
        layer.ffn.w13 = linear([p + "ffn_gate.weight", p + "ffn_up.weight"])
        # The down projection's rows are 4-6x longer: one int8 scale per row spans many Q4_K/Q6_K
        # blocks, and re-rounding all of them cost parity (teacher-forced top-1 on Qwen2.5-1.5B
        # 97.4% -> 96.1%). So only its large 4-bit ones are int8, with their outliers exact, and
        # the rest keep their exact forms (qlinear.uses_int8_gemm, int8_rows_outliers).
        layer.ffn.w2 = linear([p + "ffn_down.weight"], down=True)
    saving = packed.save() if packed.made else None
    if to_pack:
        # FBGEMM's packing (~6 ns a weight) runs while the caller waits for a first prompt; the
        # first forward pass waits for it (Transformer.finish_loading).
        # Two threads (FBGEMM's packing is single-threaded and lets go of the GIL). After a
        # first load, what has an interim kernel is packed once the cache is written: each
        # module then drops its unpacked copy as it is packed, instead of both forms of every
        # weight being held at once.
        def pack_all(part):
            scratch = torch.empty(max(mod.out_features * mod.in_features if isinstance(mod, Fp16Linear) else 0
                                      for mod in part))
            for mod in part:
                mod.pack(scratch)
                # Each packing frees tens of MB of temporaries that glibc would otherwise keep:
                # without this, RSS while packing the 1.5B model rose ~1 GB above what it needs.
                give_back_freed_memory()

        # Modules that cannot run unpacked go first: forward waits for them (pending_required).
        required = [mod for mod in to_pack if not getattr(mod, "interim", False)]
        required_done: Future = Future()

        def pack_everything():
            try:
                give_back_freed_memory()         # the conversions' temporaries (a first load)
                for group in (required, [mod for mod in to_pack if mod not in required]):
                    if group is not required and saving is not None:
                        saving.join()            # (the first answer need not wait for the cache)
                    jobs = [_in_background(pack_all, group[i::2]) for i in range(2) if group[i::2]]
                    for job in jobs:
                        job.result()
                    if not required_done.done():
                        required_done.set_result(None)
                give_back_freed_memory()
            except BaseException as e:
                if not required_done.done():
                    required_done.set_exception(e)
                raise
        model.pending = _in_background(pack_everything)
        model.pending_required = required_done if required else None
    else:
        give_back_freed_memory()
    # The GGUF file's pages read while converting count as this process's memory until given
    # back (a 1 GB file's worth on a first load); what is read later (embedding rows, the head's
    # exact refinement) is read back from the file.
    release_pages(torch.from_numpy(gf.buf))
    model = model.to(device)
    freq_factors = w("rope_freqs.weight") if gf.has("rope_freqs.weight") else None
    model.setup_cache(max_seq, kv_cache_dtype(gf, args, max_seq, precision, dense_dtype), freq_factors=freq_factors)
    return model.eval()


def available_memory_bytes() -> int | None:
    """Memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


BASE_MEMORY = 400 << 20       # torch, the tokenizer and buffers, measured on the default model
# The KV cache is halved (bfloat16) when in float32 it would take more than this share of the
# model file's size.
KV_HALVED_ABOVE = 0.5


def _kv_bytes(args: ModelArgs, max_seq: int, element_bytes: int) -> int:
    positions = sum(cache_slots(args, args.is_sliding(i), max_seq) for i in range(args.n_layers))
    return 2 * args.n_kv_heads * args.head_dim * positions * element_bytes


def kv_cache_dtype(gf: GGUFFile, args: ModelArgs, max_seq: int, precision: str = "auto",
                   compact: torch.dtype = torch.bfloat16) -> torch.dtype:
    """float32, or `compact` (bfloat16; llama.cpp keeps float16) where the cache would be a large
    part of the memory. A trade: torch's CPU attention runs as fast on bfloat16 (float16: 1.7-5x
    slower), and it halves the largest allocation of a small model at a long context (SmolLM2-135M
    at 4k: 184 MB in float32, its weights 100 MB). But its 8-bit mantissa moves the attention
    scores: Qwen2.5-1.5B's teacher-forced top-1 against llama.cpp fell 97.4% -> 96.9% (one more
    near-tie). So models whose cache is small next to their weights keep float32."""
    if precision == "float32" or _kv_bytes(args, max_seq, 4) <= KV_HALVED_ABOVE * gf.buf.nbytes:
        return torch.float32
    return compact


def estimated_memory_bytes(gf: GGUFFile, args: ModelArgs, max_seq: int, precision: str = "auto",
                           device_type: str = "cpu") -> int:
    """What loading and running the model will need, roughly: the weights in the forms the loader
    gives them (qlinear.py), the KV cache, the output head's ranker and the runtime."""
    total = BASE_MEMORY + _kv_bytes(args, max_seq, kv_cache_dtype(gf, args, max_seq, precision).itemsize)
    for name, t in gf.tensors.items():
        n = 1
        for d in t.shape:
            n *= d
        if precision == "float32":
            total += 4 * n
        elif device_type == "cpu" and len(t.shape) == 2 and native_linear.usable([t.qtype_name], t.shape[1]):
            total += t.data.nbytes                    # the file's own blocks, read where mapped
        elif name in ("token_embd.weight", "output.weight"):
            total += t.data.nbytes                    # read from the mapped file
            if name == "output.weight" or args.tied_embeddings:
                total += 2 * n                        # the int8 ranker and its FBGEMM copy
        elif len(t.shape) == 2 and uses_int8_gemm(
                [t.qtype_name], t.shape[1], t.shape[0], device_type, down="ffn_down" in name):
            total += n                                # int8 in FBGEMM's int8 GEMM (per tensor, not fused)
        elif t.qtype_name in INT4_EXACT + INT4_REROUNDED and not uses_fp16_for_int4(
                [t.qtype_name], t.shape[1], t.shape[0], device_type, down="ffn_down" in name):
            total += n * 5 // 8                       # 4 bits + a bfloat16 scale and zero per 32
        elif t.qtype_name not in DENSE_TYPES and device_type == "cpu" and fp16_gemm_works():
            total += 2 * n                            # float16 in FBGEMM's fp16 GEMM
        else:
            total += n if t.qtype_name not in DENSE_TYPES else 2 * n
    return total


def check_memory(gf: GGUFFile, args: ModelArgs, max_seq: int, precision: str = "auto") -> None:
    """Refuse, before loading anything, a model this machine cannot hold."""
    need, have = estimated_memory_bytes(gf, args, max_seq, precision), available_memory_bytes()
    if have is not None and need > have:
        raise ModelLoadError(gf.path, f"the model needs about {need / 2**30:.1f} GB of memory, and this machine has "
                                      f"{have / 2**30:.1f} GB available (close other programs, or use a smaller "
                                      f"model or a smaller context)")
