"""GGUF metadata -> ModelArgs, GGUF tensors -> a ready Transformer."""
from __future__ import annotations

import math
import threading
from concurrent.futures import Future

import torch
from torch import nn

from chatgui.common.io import available_ram

from .archs import ARCHS, apply_layer_layout, arch_of, deltanet_layers, kv_source, layer_kv, tensor_shapes
from .deltanet import MAX_SNAPSHOTS
from .errors import ModelLoadError
from .experts import Experts
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

SUPPORTED_ARCHS = tuple(ARCHS)
# The tensors each compact form keeps in the weight cache.
INT4_FIELDS = ("packed", "scales_zeros")
FP16_FIELDS = ("weight16", "exponent")
INT8_FIELDS = ("weight", "scales")
INT8_OUTLIER_FIELDS = INT8_FIELDS + ("outlier_cols", "outlier_vals")
RANKER_FIELDS = ("q", "scale")


def read_model_args(gf: GGUFFile) -> ModelArgs:
    """ModelArgs from the file's metadata, as its architecture's entry in archs.ARCHS says."""
    arch = gf.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelLoadError(gf.path, "metadata field 'general.architecture' is missing")
    spec = arch_of(arch)
    if spec is None:
        raise ModelLoadError(
            gf.path, f"architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHS)})")
    k = lambda name: f"{arch}.{name}"  # noqa: E731
    dim = gf.get_int(k("embedding_length"), lo=1, hi=MAX_DIM)
    n_layers = gf.get_int(k("block_count"), lo=1, hi=MAX_LAYERS)
    n_heads = gf.get_int(k("attention.head_count"), lo=1, hi=MAX_HEADS)
    kv_per_layer = gf.get(k("attention.head_count_kv"))
    shortconv_layers: tuple[int, ...] = ()
    if spec.shortconv and isinstance(kv_per_layer, (list, tuple)):
        # (lfm2: 0 KV heads marks a short-convolution layer; the attention layers share one count)
        if len(kv_per_layer) != n_layers:
            raise ModelLoadError(gf.path, f"attention.head_count_kv has {len(kv_per_layer)} entries for "
                                          f"{n_layers} layers")
        shortconv_layers = tuple(i for i, v in enumerate(kv_per_layer) if not v)
        counts = {int(v) for v in kv_per_layer if v}
        if len(counts) > 1 or not all(1 <= v <= MAX_HEADS for v in counts):
            raise ModelLoadError(gf.path, f"attention.head_count_kv {list(kv_per_layer)} is not supported")
        n_kv = counts.pop() if counts else n_heads
        if dim % 2:
            raise ModelLoadError(gf.path, f"a short-convolution layer of odd width {dim} is not supported")
    elif spec.layer_layout and isinstance(kv_per_layer, (list, tuple)):
        # (gemma4: KV heads per layer, read again by apply_layer_layout)
        if len(kv_per_layer) != n_layers or not all(isinstance(v, int) and 1 <= v <= MAX_HEADS and n_heads % v == 0
                                                    for v in kv_per_layer):
            raise ModelLoadError(gf.path, f"attention.head_count_kv {list(kv_per_layer)} is not supported")
        n_kv = max(kv_per_layer)
    else:
        n_kv = gf.get_int(k("attention.head_count_kv"), n_heads, lo=1, hi=MAX_HEADS)
    if n_heads % n_kv:
        raise ModelLoadError(gf.path, f"{n_heads} attention heads cannot be shared by {n_kv} KV heads")
    head_dim = gf.get_int(k("attention.key_length"), dim // n_heads if dim % n_heads == 0 else 0, lo=1, hi=MAX_DIM)
    ff = gf.get(k("feed_forward_length"))
    hidden_per_layer: tuple[int, ...] = ()
    if spec.layer_layout and isinstance(ff, (list, tuple)) and len(set(ff)) > 1:     # (gemma4's double-wide MLPs)
        if len(ff) != n_layers or not all(isinstance(v, int) and 1 <= v <= MAX_DIM * 16 for v in ff):
            raise ModelLoadError(gf.path, f"feed_forward_length {list(ff)} is not supported")
        hidden_per_layer = tuple(ff)
        hidden = max(ff)
    else:
        hidden = gf.get_int(k("feed_forward_length"), 0 if spec.moe else None, lo=0 if spec.moe else 1,
                            hi=MAX_DIM * 16)
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
        rope_base=gf.get_float(k("rope.freq_base"), spec.rope_base),
        rope_dim=rope_dim - rope_dim % 2,
        rope_interleaved=spec.rope == "norm",
        train_context=min(ctx, MAX_CONTEXT),
        qkv_bias=spec.qkv_bias,
        qk_norm=bool(spec.qk_norm), qk_norm_full=spec.qk_norm == "full",
        tied_embeddings=spec.always_tied or not gf.has("output.weight"),
        act=spec.act, embed_scale=math.sqrt(dim) if spec.embed_scale_sqrt_dim else 1.0,
        pre_norms=spec.pre_norms, post_norms=spec.post_norms, nope_every=spec.nope_every,
        sliding_window_pattern=spec.sliding_window_pattern, swa_rope_scaled=spec.swa_rope_scaled,
        expert_act=spec.expert_act, shortconv_layers=shortconv_layers, attn_sinks=spec.attn_sinks,
        hidden_per_layer=hidden_per_layer,
    )
    for key in spec.keys:
        name = k(key.key)
        if key.default is None and name not in gf.metadata and not key.integer:
            value = None
        elif key.integer:
            value = gf.get_int(name, key.default, lo=0, hi=1 << 30)      # (no default: required)
        else:
            value = gf.get_float(name, key.default)
        setattr(args, key.field, value)
    args.attn_output_gate = spec.attn_output_gate
    if spec.attn_scale is not None:
        args.attn_scale = spec.attn_scale
    _read_layer_layout(gf, spec, args)
    if spec.deltanet:
        args.deltanet_layers = deltanet_layers(spec, n_layers, args.full_attention_interval)
        if not (args.ssm_k_heads and args.ssm_v_heads % args.ssm_k_heads == 0
                and args.ssm_inner % args.ssm_v_heads == 0 and args.ssm_inner // args.ssm_v_heads == args.ssm_state
                and args.ssm_conv_kernel >= 1):
            raise ModelLoadError(gf.path, f"DeltaNet sizes (heads {args.ssm_k_heads}/{args.ssm_v_heads}, state "
                                          f"{args.ssm_state}, inner {args.ssm_inner}) are not supported")
    args.rope_base_local = spec.rope_base_local if spec.rope_base_local is not None else args.rope_base
    if args.sliding_window and args.sliding_window_pattern:
        args.rope_base_local = gf.get_float(k("rope.freq_base_swa"), args.rope_base_local)
    if (spec.moe or args.n_experts) and not 0 < args.n_experts_used <= args.n_experts:
        raise ModelLoadError(gf.path, f"{args.n_experts_used} experts used of {args.n_experts} is not possible")
    args.dense_and_experts = spec.dense_and_experts and args.n_experts > 0
    if args.dense_and_experts and not args.expert_hidden:
        raise ModelLoadError(gf.path, "the file has experts but no expert_feed_forward_length")
    _read_rope_scaling(gf, k, args)
    return args


def _read_layer_layout(gf: GGUFFile, spec, args: ModelArgs) -> None:
    """gemma4's per-layer attention shapes (archs.apply_layer_layout), checked."""
    if not spec.layer_layout:
        return
    k = lambda name: f"{args.arch}.{name}"  # noqa: E731
    pattern = gf.get(k("attention.sliding_window_pattern"))
    if not isinstance(pattern, (list, tuple)) or len(pattern) != args.n_layers:
        raise ModelLoadError(gf.path, "attention.sliding_window_pattern must list every layer")
    args.layer_layout, args.v_norm = True, spec.v_norm
    args.layer_output_scale = spec.layer_output_scale
    if not spec.per_layer_embeddings:
        args.per_layer_dim = 0
    apply_layer_layout(spec, args, lambda key, default: gf.get(k(key), default))
    args.k_eq_v_layers = tuple(i for i in range(args.n_layers)
                               if gf.has(f"blk.{i}.attn_k.weight") and not gf.has(f"blk.{i}.attn_v.weight"))
    if not (1 <= args.head_dim_swa <= MAX_DIM and 2 <= args.rope_dim_swa <= args.head_dim_swa):
        raise ModelLoadError(gf.path, f"sliding layers' head size {args.head_dim_swa} / rotary dims "
                                      f"{args.rope_dim_swa} are not supported")
    args.rope_dim_swa -= args.rope_dim_swa % 2
    shared = args.n_layers - args.kv_shared_from
    if shared and (args.kv_shared_from < 2 or shared >= args.n_layers):
        raise ModelLoadError(gf.path, f"{shared} layers sharing KV of {args.n_layers} is not supported")
    for i in range(args.kv_shared_from, args.n_layers):
        src = args.kv_shared_from - (2 if i in args.swa_layers else 1)
        if (src in args.swa_layers) != (i in args.swa_layers) or layer_kv(args, src) != layer_kv(args, i):
            raise ModelLoadError(gf.path, f"layer {i} would share the keys and values of layer {src}, "
                                          "which has another kind or shape")


def _read_rope_scaling(gf: GGUFFile, k, args: ModelArgs) -> None:
    """RoPE scaling (none, linear, YaRN) and the attention factors that go with it."""
    scaling = gf.get(k("rope.scaling.type"))
    args.rope_attn_factor = gf.get_float(k("rope.scaling.attn_factor"), 1.0)
    args.attn_temp_scale = gf.get_float(k("attention.temperature_scale"), 0.0)
    orig = gf.get_int(k("rope.scaling.original_context_length"), 0, lo=0, hi=1 << 40)
    args.yarn_orig_context = orig or args.train_context
    if args.attn_temp_scale and not orig:
        raise ModelLoadError(gf.path, "attention temperature scaling needs rope.scaling.original_context_length")
    if scaling in ("linear", "yarn"):
        args.rope_scaling = scaling
        args.rope_scale = gf.get_float(k("rope.scaling.factor"), 1.0) or 1.0
        args.yarn_beta_fast = gf.get_float(k("rope.scaling.yarn_beta_fast"), 32.0)
        args.yarn_beta_slow = gf.get_float(k("rope.scaling.yarn_beta_slow"), 1.0)
        args.yarn_log_mul = gf.get_float(k("rope.scaling.yarn_log_multiplier"), 0.0)
    elif scaling not in (None, "none"):
        raise ModelLoadError(gf.path, f"RoPE scaling {scaling!r} is not supported")


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
    spec = ARCHS[a.arch]
    # Check every shape before dequantizing anything: a bogus file fails fast and cheaply.
    expect = tensor_shapes(spec, a)
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
    layer_perms: dict[int, dict] = {}       # (gemma4: layers whose shapes differ from the above)
    if a.layer_layout and not a.rope_interleaved:
        for i in range(a.n_layers):
            n_kv, hd = layer_kv(a, i)
            rd = a.rope_dim_swa if i in a.swa_layers else a.rope_dim
            d = neox_to_interleaved(1, hd, rd)
            layer_perms[i] = {"attn_q": neox_to_interleaved(a.n_heads, hd, rd),
                              "attn_k": neox_to_interleaved(n_kv, hd, rd), "attn_q_norm": d, "attn_k_norm": d}
    if spec.attn_output_gate:
        # attn_q holds each head's q rows then its gate rows: all q rows first (permuted as q),
        # then all gate rows (model.Attention splits them off)
        rows = torch.arange(2 * a.n_heads * a.head_dim).view(a.n_heads, 2, a.head_dim)
        q_rows, gate_rows = rows[:, 0].flatten(), rows[:, 1].flatten()
        perms["attn_q"] = torch.cat([q_rows if q_perm is None else q_rows[q_perm], gate_rows])
    if q_perm is not None and a.qk_norm_full:      # (norms over all heads: one weight per q / k row)
        perms.update({"attn_q_norm": q_perm, "attn_k_norm": k_perm})
    if q_perm is not None and spec.fused_qkv:
        q_out, kv_out = len(q_perm), len(k_perm)      # one fused tensor: its q rows, k rows, then v
        perms["attn_qkv"] = torch.cat([q_perm, k_perm + q_out, torch.arange(q_out + kv_out, q_out + 2 * kv_out)])

    def perm_of(name: str) -> torch.Tensor | None:
        """The row order a tensor is used in (None: as stored), its own layer's where shapes differ."""
        parts = name.split(".")
        table = layer_perms.get(int(parts[1]), perms) if layer_perms and parts[0] == "blk" else perms
        return table.get(parts[-2])

    def permuted(name: str, t: torch.Tensor) -> torch.Tensor:
        perm = perm_of(name)
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
            return native_linear.NativeLinear(infos, bias, [perm_of(n) for n in names])
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
    model.norm.weight.copy_(w(spec.output_norm_name + ".weight"))
    if a.per_layer_dim:
        model.per_layer_embd = rows("per_layer_token_embd.weight", head=False)
        model.per_layer_proj = linear(["per_layer_model_proj.weight"])
        model.per_layer_norm.weight.copy_(w("per_layer_proj_norm.weight"))
    for i, layer in enumerate(model.layers):
        p = f"blk.{i}."
        norms = {layer.attn_norm: "attn_norm", layer.ffn_norm: spec.ffn_norm_name} if a.pre_norms else {}
        conv = i in a.shortconv_layers or i in a.deltanet_layers
        shares_kv = not conv and layer.attn.shares_kv
        if a.qk_norm and not conv:
            norms.update({layer.attn.q_norm: "attn_q_norm"} if shares_kv else
                         {layer.attn.q_norm: "attn_q_norm", layer.attn.k_norm: "attn_k_norm"})
        if a.per_layer_dim:
            norms[layer.pl_norm] = "post_norm"
        if a.post_norms:
            norms.update({layer.attn_post_norm: "post_attention_norm", layer.ffn_post_norm: "post_ffw_norm"})
        if layer.dense_and_experts:
            norms.update({layer.ffn.dense_post_norm: "post_ffw_norm_1", layer.ffn.experts_norm: "pre_ffw_norm_2",
                          layer.ffn.experts_post_norm: "post_ffw_norm_2"})
        for norm, name in norms.items():
            weight = permuted(p + name + ".weight", w(p + name + ".weight"))
            if not torch.isfinite(weight).all():
                raise ModelLoadError(gf.path, f"tensor {p + name}.weight holds NaN or infinite values")
            norm.weight.copy_(weight)
        if i in a.deltanet_layers:
            layer.attn.in_proj = linear([p + n for n in ("attn_qkv.weight", "attn_gate.weight", "ssm_beta.weight",
                                                         "ssm_alpha.weight")])
            layer.attn.out_proj = linear([p + "ssm_out.weight"], down=True)
            for buffer, name in (("conv", "ssm_conv1d.weight"), ("dt_bias", "ssm_dt.bias"), ("a", "ssm_a"),
                                 ("norm", "ssm_norm.weight")):
                getattr(layer.attn, buffer).copy_(w(p + name))
        elif conv:
            layer.attn.in_proj = linear([p + "shortconv.in_proj.weight"])
            layer.attn.out_proj = linear([p + "shortconv.out_proj.weight"])
            layer.attn.conv.copy_(w(p + "shortconv.conv.weight"))
        else:
            qkv = [p + "attn_qkv.weight"] if spec.fused_qkv else [p + f"attn_{x}.weight" for x in "qkv"]
            if shares_kv:
                qkv = [p + "attn_q.weight"]
            elif i in a.k_eq_v_layers:
                qkv = [p + "attn_q.weight", p + "attn_k.weight"]
                d_perm_i = layer_perms.get(i, perms)["attn_q_norm"]
                if d_perm_i is not None:
                    layer.attn.v_order = torch.argsort(d_perm_i)
            layer.attn.wqkv = linear(qkv, [n.replace(".weight", ".bias") for n in qkv] if a.qkv_bias else None)
            layer.attn.wo = linear([p + "attn_output.weight"], [p + "attn_output.bias"] if spec.out_bias else None)
            if spec.attn_sinks:
                layer.attn.sinks = w(p + "attn_sinks.weight")
        if a.per_layer_dim:
            layer.pl_gate = linear([p + "inp_gate.weight"])
            layer.pl_proj = linear([p + "proj.weight"])
        if a.layer_output_scale:
            layer.out_scale = w(p + "layer_output_scale.weight")
        if a.n_experts:
            moe = layer.ffn.moe if layer.dense_and_experts else layer.ffn
            moe.router = w(p + "ffn_gate_inp.weight")
            parts = ("gate_up",) if layer.dense_and_experts else ("gate", "up")
            biases = None
            if spec.expert_biases:
                moe.router_bias = w(p + "ffn_gate_inp.bias")
                biases = [w(f"{p}ffn_{part}_exps.bias") for part in ("gate", "up", "down")]
            if spec.shared_expert:
                moe.shared_gate = w(p + "ffn_gate_inp_shexp.weight")
                moe.shared.w13 = linear([p + "ffn_gate_shexp.weight", p + "ffn_up_shexp.weight"])
                moe.shared.w2 = linear([p + "ffn_down_shexp.weight"], down=True)
            if layer.dense_and_experts:
                layer.ffn.router_scale = w(p + "ffn_gate_inp.scale") / math.sqrt(a.dim)
                moe.expert_scale = w(p + "ffn_down_exps.scale")
            exps = [gf.tensor(f"{p}ffn_{part}_exps.weight") for part in parts + ("down",)]
            on_native = fast and device.type == "cpu" and all(
                native_linear.usable([t.qtype_name], t.shape[-1]) for t in exps)
            moe.experts = Experts(gf.path, exps[:-1], exps[-1], biases=biases, act=a.expert_act, native=on_native)
            if not layer.dense_and_experts:
                continue
        dense = layer.ffn.dense if layer.dense_and_experts else layer.ffn
        # (phi3's ffn_up holds gate and up, in the order w13 has them)
        dense.w13 = linear([p + "ffn_up.weight"] if spec.fused_gate_up else [p + "ffn_gate.weight",
                                                                              p + "ffn_up.weight"])
        # The down projection's rows are 4-6x longer: one int8 scale per row spans many Q4_K/Q6_K
        # blocks, and re-rounding all of them cost parity with llama.cpp (figures in
        # benchmarks/results/2026-12-07-figures-from-docstrings.md). So only its large 4-bit ones
        # are int8, with their outliers exact, and the rest keep their exact forms
        # (qlinear.uses_int8_gemm, int8_rows_outliers).
        dense.w2 = linear([p + "ffn_down.weight"], down=True)
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
    if freq_factors is None and gf.has("rope_factors_long.weight"):
        # LongRoPE (phi3): the long factors when the context passes the trained one, as llama.cpp
        # chooses them (llama_model::get_rope_factors)
        long = max_seq > args.yarn_orig_context
        freq_factors = w("rope_factors_long.weight" if long else "rope_factors_short.weight")
    model.setup_cache(max_seq, kv_cache_dtype(gf, args, max_seq, precision, dense_dtype), freq_factors=freq_factors)
    return model.eval()


def available_memory_bytes() -> int | None:
    """Memory the system can give without swapping, or None if unknown (a seam tests replace)."""
    return available_ram()


BASE_MEMORY = 400 << 20       # torch, the tokenizer and buffers, measured on the default model
# The KV cache is halved (bfloat16) when in float32 it would take more than this share of the
# model file's size.
KV_HALVED_ABOVE = 0.5


def _kv_bytes(args: ModelArgs, max_seq: int, element_bytes: int) -> int:
    # (per layer: gemma4's differ, and its shared-KV layers have none)
    kv_numbers = sum(2 * n_kv * hd * cache_slots(args, args.is_sliding(i), max_seq)
                     for i in range(args.n_layers) for n_kv, hd in [layer_kv(args, i)]
                     if i not in args.shortconv_layers and i not in args.deltanet_layers and kv_source(args, i) == i)
    conv = len(args.shortconv_layers) * max_seq * args.dim * 4        # (float32: shortconv.py)
    # DeltaNet: the state and its snapshots, in float32 (deltanet.py), whatever the context
    recurrent = len(args.deltanet_layers) * (1 + MAX_SNAPSHOTS) * 4 * (
        args.ssm_v_heads * args.ssm_state ** 2 + (args.ssm_conv_kernel - 1) * (2 * args.ssm_k_heads * args.ssm_state
                                                                              + args.ssm_inner))
    return kv_numbers * element_bytes + conv + recurrent


def kv_cache_dtype(gf: GGUFFile, args: ModelArgs, max_seq: int, precision: str = "auto",
                   compact: torch.dtype = torch.bfloat16) -> torch.dtype:
    """float32, or `compact` (bfloat16; llama.cpp keeps float16) where the cache would be a large
    part of the memory. A trade: torch's CPU attention runs as fast on bfloat16 (float16 is
    several times slower), and it halves the largest allocation of a small model at a long
    context (where the cache outgrows the weights). But its 8-bit mantissa moves the attention
    scores (one more near-tie against llama.cpp on Qwen2.5-1.5B; figures:
    benchmarks/results/2026-12-07-figures-from-docstrings.md). So models whose cache is small
    next to their weights keep float32."""
    if precision == "float32" or _kv_bytes(args, max_seq, 4) <= KV_HALVED_ABOVE * gf.buf.nbytes:
        return torch.float32
    return compact


def estimated_memory_bytes(gf: GGUFFile, args: ModelArgs, max_seq: int, precision: str = "auto",
                           device_type: str = "cpu") -> int:
    """What loading and running the model will need, roughly: the weights in the forms the loader
    gives them (qlinear.py), the KV cache, the output head's ranker and the runtime."""
    total = BASE_MEMORY + _kv_bytes(args, max_seq, kv_cache_dtype(gf, args, max_seq, precision).itemsize)
    for name in tensor_shapes(ARCHS[args.arch], args):      # (what the model uses, not all the file holds)
        t = gf.tensors.get(name)
        if t is None:
            continue
        n = 1
        for d in t.shape:
            n *= d
        if name.endswith("_exps.weight"):
            total += t.data.nbytes                    # experts: used as stored, from the mapped file
        elif precision == "float32":
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
