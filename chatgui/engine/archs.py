"""The architecture table: what each supported GGUF architecture is, as data.

One `Arch` entry per `general.architecture` value. The loader reads its metadata and checks its
tensors from it (loader.read_model_args, build_transformer), the memory estimate counts from it,
and the test-model writer (tests/tiny_gguf.py) writes its files from it. An architecture that
differs from another only in flags is one entry here.

References: llama.cpp's src/llama-arch.cpp (names), src/models/<arch>.cpp (maths) and the gguf
package's constants (MODEL_TENSORS).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Key:
    """A metadata value some architectures have: its GGUF key after '<arch>.', the ModelArgs
    field it sets and the value when the file has none."""
    key: str
    field: str
    default: float | int | None
    integer: bool = False


@dataclass(frozen=True)
class Arch:
    name: str
    # RoPE pair layout in the file: "norm" (llama.cpp's LLAMA_ROPE_TYPE_NORM: the converter
    # permuted Q/K rows so that dims 2j, 2j+1 pair) or "neox" (rotate-half: j pairs j + d/2).
    rope: str = "neox"
    rope_base: float = 10000.0            # when the file has no rope.freq_base
    act: str = "silu"                     # gated MLP activation: "silu" or "gelu_tanh"
    qkv_bias: bool = False                # attn_q/k/v.bias
    out_bias: bool = False                # attn_output.bias
    attn_sinks: bool = False              # attn_sinks.weight: a logit per head in each softmax (gpt-oss)
    qk_norm: str = ""                     # "head": RMSNorm per head ([head_dim]); "full": over all heads (olmo2)
    pre_norms: bool = True                # attn_norm and ffn_norm before attention and MLP
    ffn_norm_name: str = "ffn_norm"       # the MLP's norm tensor (gpt-oss: post_attention_norm)
    post_norms: bool = False              # post_attention_norm and post_ffw_norm on their outputs
    embed_scale_sqrt_dim: bool = False    # embeddings times sqrt(dim) (gemma)
    sliding_window_pattern: int = 0       # every Nth layer is global, the rest slide (0: none)
    rope_base_local: float | None = None  # RoPE base of sliding layers (None: the global base)
    swa_rope_scaled: bool = False         # sliding layers' RoPE scaled as the global one (else unscaled)
    nope_every: int = 0                   # every Nth layer has no RoPE (smollm3: 4)
    fused_qkv: bool = False               # one attn_qkv.weight instead of attn_q/k/v
    fused_gate_up: bool = False           # ffn_up.weight holds [gate; up] (phi3)
    moe: bool = False                     # the MLP is a Mixture-of-Experts (ffn_*_exps)
    expert_act: str = "silu"              # "silu" (SwiGLU) or "swiglu_oai" (gpt-oss; experts.swiglu_oai)
    expert_biases: bool = False           # ffn_gate_inp.bias and ffn_*_exps.bias
    test_expert_qtype: str | None = None  # the type real files keep experts in, for quantized test models (MXFP4)
    rope_factors: bool = False            # LongRoPE frequency factors rope_factors_long/short (phi3)
    always_tied: bool = False             # the output head is token_embd even if output.weight exists
    output_norm_name: str = "output_norm"  # the final norm's tensor (lfm2: token_embd_norm)
    # Layers whose attention.head_count_kv entry is 0 are short-convolution layers (lfm2): an
    # in_proj to b, c, x; c * causal depthwise conv(b * x); out_proj.
    shortconv: bool = False
    # Gated DeltaNet layers (qwen35): all but every full_attention_interval-th layer; an
    # attn_qkv/attn_gate/ssm_* set in the place of attention (engine/deltanet.py).
    deltanet: bool = False
    attn_output_gate: bool = False        # attn_q holds [q; gate] per head: output * sigmoid(gate) (qwen35)
    shared_expert: bool = False           # a sigmoid-gated shared expert beside the routed ones (qwen35moe)
    # Files with experts (expert_count > 0) keep each layer's dense MLP beside them (gemma4's
    # 26B-A4B): both read the attention block's output, each branch normed before and after on
    # its own (ffn_norm / post_ffw_norm_1, pre_ffw_norm_2 / post_ffw_norm_2), their sum normed by
    # post_ffw_norm; gate and up experts fused (ffn_gate_up_exps); the router reads that output
    # RMS-normed without weight, times ffn_gate_inp.scale / sqrt(dim); each expert's output is
    # scaled by its ffn_down_exps.scale (experts.DenseAndExperts)
    dense_and_experts: bool = False
    # Gemma 4: which layers slide is a per-layer array (attention.sliding_window_pattern), sliding
    # layers have their own head size and rotary dims (*_swa keys), the last shared_kv_layers
    # layers attend to an earlier layer's keys and values (no attn_k/v of their own), V is
    # RMS-normed without weight, attention is unscaled, RoPE factors (rope_freqs) on global
    # layers, per-layer embeddings (per_layer_*, inp_gate, proj, post_norm) and an output scale.
    layer_layout: bool = False
    attn_scale: float | None = None       # a fixed attention scale (None: 1/sqrt(head_dim) or the file's)
    rope_freqs: bool = False              # rope_freqs.weight: frequency factors of global layers
    v_norm: bool = False
    per_layer_embeddings: bool = False
    layer_output_scale: bool = False
    # Layers whose values are their keys (gemma4 31B's and 26B's global layers: no attn_v; the
    # loader finds them in the file), in the test model
    test_k_eq_v_layers: tuple[int, ...] = ()
    keys: tuple[Key, ...] = ()            # architecture-specific metadata
    # Metadata the test-model writer adds (keys after '<arch>.') so that a tiny random model
    # exercises what the architecture has (a window shorter than the test text, scales not 1).
    test_metadata: dict = field(default_factory=dict)
    # Other tiny test models of the same architecture: name -> metadata over test_metadata; the
    # parity tests name their cases '<arch>-<name>' (make_arch_reference.case_spec)
    test_variants: dict = field(default_factory=dict)


SLIDING_WINDOW = Key("attention.sliding_window", "sliding_window", 0, integer=True)
SOFTCAPS = (Key("attn_logit_softcapping", "attn_softcap", 50.0), Key("final_logit_softcapping", "final_softcap", 30.0))
GRANITE_SCALES = (Key("embedding_scale", "embed_scale", 1.0), Key("residual_scale", "residual_scale", 1.0),
                  Key("attention.scale", "attn_scale", None), Key("logit_scale", "logit_scale", 1.0))
EXPERTS = (Key("expert_count", "n_experts", None, integer=True),
           Key("expert_used_count", "n_experts_used", None, integer=True),
           Key("expert_feed_forward_length", "expert_hidden", None, integer=True))

DELTANET = (Key("full_attention_interval", "full_attention_interval", 4, integer=True),
            Key("ssm.conv_kernel", "ssm_conv_kernel", None, integer=True),
            Key("ssm.state_size", "ssm_state", None, integer=True),
            Key("ssm.group_count", "ssm_k_heads", None, integer=True),
            Key("ssm.time_step_rank", "ssm_v_heads", None, integer=True),
            Key("ssm.inner_size", "ssm_inner", None, integer=True))
# (gemma4: the tiny model's shared-KV layers have wider MLPs, as E2B's "double-wide" ones)
# A tiny qwen35: head_dim 16 with 8 of it rotated (Qwen3.5 rotates a quarter), 2 key heads
# shared by 4 value heads in the DeltaNet layers, layers 0 and 2 DeltaNet, 1 and 3 attention.
DELTANET_TEST = {"full_attention_interval": 2, "ssm.conv_kernel": 4, "ssm.state_size": 16, "ssm.group_count": 2,
                 "ssm.time_step_rank": 4, "ssm.inner_size": 64, "rope.dimension_count": 8,
                 "rope.dimension_sections": (2, 1, 1, 0)}

GEMMA4_TEST = {"attention.key_length": 32, "attention.value_length": 32, "attention.key_length_swa": 16,
               "attention.value_length_swa": 16, "rope.dimension_count": 32, "rope.dimension_count_swa": 16,
               "rope.freq_base_swa": 10000.0, "attention.sliding_window": 8,
               "attention.sliding_window_pattern": [True, False], "attention.head_count_kv": [2, 1],
               "attention.shared_kv_layers": 2, "embedding_length_per_layer_input": 8,
               "final_logit_softcapping": 10.0, "feed_forward_length": [128, 128, 192, 192]}

# Gemma 4 26B-A4B's shape in small: experts beside the dense MLP in every layer, no per-layer
# embeddings and no shared KV
GEMMA4_MOE_TEST = {**{k: v for k, v in GEMMA4_TEST.items() if k != "feed_forward_length"},
                   "attention.shared_kv_layers": 0, "embedding_length_per_layer_input": 0, "expert_count": 8,
                   "expert_used_count": 2, "expert_feed_forward_length": 64}

ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("llama", rope="norm"),
    Arch("qwen2", rope_base=1_000_000.0, qkv_bias=True),
    Arch("qwen3", rope_base=1_000_000.0, qk_norm="head"),
    Arch("gemma3", rope_base=1_000_000.0, act="gelu_tanh", qk_norm="head", post_norms=True,
         embed_scale_sqrt_dim=True, sliding_window_pattern=6, rope_base_local=10000.0,
         keys=(Key("attention.sliding_window", "sliding_window", 512, integer=True),)),
    Arch("smollm3", rope="norm", nope_every=4),
    Arch("ernie4_5", rope="norm"),             # (the dense ERNIE 4.5 0.3B: llama's layers)
    # (OLMo 3 files are olmo2 ones with a sliding window in three layers of four)
    Arch("olmo2", qk_norm="full", pre_norms=False, post_norms=True, sliding_window_pattern=4, keys=(SLIDING_WINDOW,)),
    Arch("granite", rope="norm", keys=GRANITE_SCALES,
         test_metadata={"embedding_scale": 6.0, "residual_scale": 0.5, "attention.scale": 0.2, "logit_scale": 4.0}),
    # (its experts are feed_forward_length wide)
    Arch("granitemoe", rope="norm", moe=True,
         keys=GRANITE_SCALES + EXPERTS[:2] + (Key("feed_forward_length", "expert_hidden", None, integer=True),),
         test_metadata={"embedding_scale": 6.0, "residual_scale": 0.5, "attention.scale": 0.2, "logit_scale": 4.0,
                        "expert_count": 8, "expert_used_count": 2}),
    Arch("phi3", fused_qkv=True, fused_gate_up=True, rope_factors=True,
         test_metadata={"rope.dimension_count": 12, "rope.scaling.original_context_length": 32,
                        "rope.scaling.attn_factor": 1.1}),
    Arch("mistral3", rope="norm", rope_base=1_000_000.0,
         test_metadata={"rope.scaling.type": "yarn", "rope.scaling.factor": 4.0,
                        "rope.scaling.original_context_length": 16, "attention.temperature_scale": 0.1}),
    Arch("gemma2", act="gelu_tanh", post_norms=True, embed_scale_sqrt_dim=True, sliding_window_pattern=2,
         always_tied=True, keys=(Key("attention.sliding_window", "sliding_window", 4096, integer=True),) + SOFTCAPS,
         test_metadata={"attention.sliding_window": 8, "attn_logit_softcapping": 5.0,
                        "final_logit_softcapping": 10.0}),
    Arch("qwen3moe", rope_base=1_000_000.0, qk_norm="head", moe=True, keys=EXPERTS,
         test_metadata={"expert_count": 8, "expert_used_count": 2, "expert_feed_forward_length": 64}),
    Arch("lfm2", qk_norm="head", shortconv=True, output_norm_name="token_embd_norm",
         keys=(Key("shortconv.l_cache", "shortconv_kernel", None, integer=True),),
         test_metadata={"shortconv.l_cache": 3, "attention.head_count_kv": [0, 0, 2]}),
    Arch("gpt-oss", qkv_bias=True, out_bias=True, attn_sinks=True, ffn_norm_name="post_attention_norm",
         sliding_window_pattern=2, swa_rope_scaled=True, moe=True, expert_act="swiglu_oai", expert_biases=True,
         keys=(Key("attention.sliding_window", "sliding_window", None, integer=True),) + EXPERTS,
         test_metadata={"attention.sliding_window": 8, "expert_count": 8, "expert_used_count": 2,
                        "expert_feed_forward_length": 64, "rope.scaling.type": "yarn", "rope.scaling.factor": 4.0,
                        "rope.scaling.original_context_length": 16},
         test_expert_qtype="MXFP4"),
    # Qwen3.5 / 3.6 (text): text positions make its multi-section RoPE one NeoX rotation
    Arch("qwen35", rope_base=10_000_000.0, qk_norm="head", ffn_norm_name="post_attention_norm", deltanet=True,
         attn_output_gate=True, keys=DELTANET, test_metadata=DELTANET_TEST),
    Arch("qwen35moe", rope_base=10_000_000.0, qk_norm="head", ffn_norm_name="post_attention_norm", deltanet=True,
         attn_output_gate=True, moe=True, shared_expert=True,
         keys=DELTANET + EXPERTS + (Key("expert_shared_feed_forward_length", "shared_expert_hidden", None,
                                        integer=True),),
         test_metadata={**DELTANET_TEST, "expert_count": 8, "expert_used_count": 2, "expert_feed_forward_length": 64,
                        "expert_shared_feed_forward_length": 96}),
    # Gemma 4 (text): two of the tiny model's four layers share the first two's KV; its "moe"
    # variant is the 26B-A4B's kind (experts optional: expert_count 0 or absent in the dense ones)
    Arch("gemma4", rope_base=1_000_000.0, act="gelu_tanh", qk_norm="head", post_norms=True, embed_scale_sqrt_dim=True,
         layer_layout=True, attn_scale=1.0, rope_freqs=True, v_norm=True, per_layer_embeddings=True,
         layer_output_scale=True, test_k_eq_v_layers=(1,), expert_act="gelu_tanh", dense_and_experts=True,
         keys=(SLIDING_WINDOW, SOFTCAPS[1], Key("embedding_length_per_layer_input", "per_layer_dim", 0, integer=True),
               *(Key(key.key, key.field, 0, integer=True) for key in EXPERTS)),
         test_metadata=GEMMA4_TEST, test_variants={"moe": GEMMA4_MOE_TEST}),
)}


def apply_layer_layout(a: Arch, args, get) -> None:
    """Per-layer attention shapes of a layer_layout architecture (gemma4) into args, from the
    metadata (get(key after '<arch>.', default)): swa_layers, kv_heads (per layer), head_dim_swa,
    rope_dim_swa and kv_shared_from (the first layer that has no KV of its own)."""
    if not a.layer_layout:
        return
    n = args.n_layers
    pattern = get("attention.sliding_window_pattern", None)
    if isinstance(pattern, (list, tuple)) and len(pattern) == n:
        args.swa_layers = tuple(i for i, v in enumerate(pattern) if v)
    kv = get("attention.head_count_kv", None)
    if isinstance(kv, (list, tuple)) and len(kv) == n:
        args.kv_heads = tuple(int(v) for v in kv)
    args.head_dim_swa = int(get("attention.key_length_swa", args.head_dim))
    args.rope_dim_swa = int(get("rope.dimension_count_swa", args.head_dim_swa))
    args.kv_shared_from = n - int(get("attention.shared_kv_layers", 0))


def layer_kv(args, i: int) -> tuple[int, int]:
    """Layer i's (KV heads, head size)."""
    hd = args.head_dim_swa if args.head_dim_swa and i in args.swa_layers else args.head_dim
    return (args.kv_heads[i] if args.kv_heads else args.n_kv_heads), hd


def kv_source(args, i: int) -> int:
    """The layer whose keys and values layer i attends to: itself, or for the last shared layers
    (gemma4) the last own-KV layer of its kind, as llama.cpp's reuse rule has it."""
    start = args.kv_shared_from
    if not start or i < start:
        return i
    return start - (2 if i in args.swa_layers else 1)


def deltanet_layers(a: Arch, n_layers: int, interval: int) -> tuple[int, ...]:
    """The layers that are Gated DeltaNet ones: all but every interval-th (llama.cpp's default
    when the file lists none)."""
    if not a.deltanet:
        return ()
    return tuple(i for i in range(n_layers) if (i + 1) % max(interval, 1))


def arch_of(name: str) -> Arch | None:
    return ARCHS.get(name)


def _attention_tensors(a: Arch, args, i: int) -> dict[str, tuple[int, ...]]:
    """Layer i's attention tensors (names after 'blk.N.')."""
    n_kv, hd = layer_kv(args, i)
    q_out, kv_out, dim = args.n_heads * hd, n_kv * hd, args.dim
    s: dict[str, tuple[int, ...]] = {}
    if kv_source(args, i) != i:            # (attends to an earlier layer's keys and values)
        s.update({"attn_q.weight": (q_out, dim), "attn_output.weight": (dim, q_out), "attn_q_norm.weight": (hd,)})
        return s
    if i in getattr(args, "k_eq_v_layers", ()):
        s.update({"attn_q.weight": (q_out, dim), "attn_k.weight": (kv_out, dim)})
    elif a.attn_output_gate:
        s.update({"attn_q.weight": (2 * q_out, dim), "attn_k.weight": (kv_out, dim), "attn_v.weight": (kv_out, dim)})
    elif a.fused_qkv:
        s["attn_qkv.weight"] = (q_out + 2 * kv_out, dim)
    else:
        s.update({"attn_q.weight": (q_out, dim), "attn_k.weight": (kv_out, dim), "attn_v.weight": (kv_out, dim)})
    s["attn_output.weight"] = (dim, q_out)
    if a.qkv_bias:
        s.update({"attn_q.bias": (q_out,), "attn_k.bias": (kv_out,), "attn_v.bias": (kv_out,)})
    if a.out_bias:
        s["attn_output.bias"] = (dim,)
    if a.attn_sinks:
        s["attn_sinks.weight"] = (args.n_heads,)
    if a.qk_norm == "head":
        s.update({"attn_q_norm.weight": (hd,), "attn_k_norm.weight": (hd,)})
    elif a.qk_norm == "full":
        s.update({"attn_q_norm.weight": (q_out,), "attn_k_norm.weight": (kv_out,)})
    return s


def _deltanet_tensors(args) -> dict[str, tuple[int, ...]]:
    """One Gated DeltaNet layer's tensors: q, k (ssm_state x group_count each) and v (inner_size)
    projected together and convolved, the output gate z, beta and alpha per value head, and the
    decay's A (stored as -exp(A_log), under a name without '.weight') and dt bias."""
    key, value, vh = args.ssm_state * args.ssm_k_heads, args.ssm_inner, args.ssm_v_heads
    conv = 2 * key + value
    return {"attn_qkv.weight": (conv, args.dim), "attn_gate.weight": (value, args.dim),
            "ssm_conv1d.weight": (conv, args.ssm_conv_kernel), "ssm_dt.bias": (vh,), "ssm_a": (vh,),
            "ssm_beta.weight": (vh, args.dim), "ssm_alpha.weight": (vh, args.dim),
            "ssm_norm.weight": (value // vh,), "ssm_out.weight": (args.dim, value)}


def tensor_shapes(a: Arch, args) -> dict[str, tuple[int, ...]]:
    """Every tensor a file of architecture a with these ModelArgs holds (output.weight where the
    head is not tied), with its shape in torch order (rows, cols), in the order the test-model
    writer writes them."""
    dim, hidden = args.dim, args.hidden_dim
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (args.vocab_size, dim),
                                          a.output_norm_name + ".weight": (dim,)}
    if not args.tied_embeddings:
        shapes["output.weight"] = (args.vocab_size, dim)
    if a.rope_freqs:
        shapes["rope_freqs.weight"] = (args.rope_dim // 2,)
    if a.per_layer_embeddings and args.per_layer_dim:
        pl = args.per_layer_dim
        shapes.update({"per_layer_token_embd.weight": (args.vocab_size, pl * args.n_layers),
                       "per_layer_model_proj.weight": (pl * args.n_layers, dim), "per_layer_proj_norm.weight": (pl,)})
    if a.rope_factors:
        shapes.update({"rope_factors_long.weight": (args.rope_dim // 2,),
                       "rope_factors_short.weight": (args.rope_dim // 2,)})
    for i in range(args.n_layers):
        p = f"blk.{i}."
        s: dict[str, tuple[int, ...]] = {}
        if a.pre_norms:
            s["attn_norm.weight"] = (dim,)
        if i in args.deltanet_layers:
            s.update(_deltanet_tensors(args))
        elif i in args.shortconv_layers:
            s.update({"shortconv.conv.weight": (dim, args.shortconv_kernel),
                      "shortconv.in_proj.weight": (3 * dim, dim), "shortconv.out_proj.weight": (dim, dim)})
        else:
            s.update(_attention_tensors(a, args, i))
        if a.post_norms:
            s.update({"post_attention_norm.weight": (dim,), "post_ffw_norm.weight": (dim,)})
        if a.pre_norms:
            s[a.ffn_norm_name + ".weight"] = (dim,)
        if args.n_experts and a.dense_and_experts:
            e, h = args.n_experts, args.expert_hidden
            s.update({"ffn_gate_inp.weight": (e, dim), "ffn_gate_inp.scale": (dim,),
                      "ffn_gate_up_exps.weight": (e, 2 * h, dim), "ffn_down_exps.weight": (e, dim, h),
                      "ffn_down_exps.scale": (e,), "post_ffw_norm_1.weight": (dim,), "pre_ffw_norm_2.weight": (dim,),
                      "post_ffw_norm_2.weight": (dim,)})
        if args.n_experts and not a.dense_and_experts:
            e, h = args.n_experts, args.expert_hidden
            s.update({"ffn_gate_inp.weight": (e, dim), "ffn_gate_exps.weight": (e, h, dim),
                      "ffn_up_exps.weight": (e, h, dim), "ffn_down_exps.weight": (e, dim, h)})
            if a.shared_expert:
                sh = args.shared_expert_hidden
                s.update({"ffn_gate_inp_shexp.weight": (dim,), "ffn_gate_shexp.weight": (sh, dim),
                          "ffn_up_shexp.weight": (sh, dim), "ffn_down_shexp.weight": (dim, sh)})
            if a.expert_biases:
                s.update({"ffn_gate_inp.bias": (e,), "ffn_gate_exps.bias": (e, h), "ffn_up_exps.bias": (e, h),
                          "ffn_down_exps.bias": (e, dim)})
        elif a.fused_gate_up:
            s.update({"ffn_up.weight": (2 * hidden, dim), "ffn_down.weight": (dim, hidden)})
        else:
            h = args.hidden_per_layer[i] if args.hidden_per_layer else hidden     # (gemma4's double-wide layers)
            s.update({"ffn_gate.weight": (h, dim), "ffn_up.weight": (h, dim), "ffn_down.weight": (dim, h)})
        if a.per_layer_embeddings and args.per_layer_dim:
            s.update({"inp_gate.weight": (args.per_layer_dim, dim), "proj.weight": (dim, args.per_layer_dim),
                      "post_norm.weight": (dim,)})
        if a.layer_output_scale:
            s["layer_output_scale.weight"] = (1,)
        shapes.update({p + name: shape for name, shape in s.items()})
    return shapes
