"""The Transformer: KV-cache decoding equals a full forward pass; RoPE layouts."""
from __future__ import annotations

import pytest
import torch

from chatgui.engine import load_model
from chatgui.engine.rope import rope_row
from chatgui.engine.loader import neox_to_interleaved
from chatgui.engine.model import ModelArgs, apply_rope, rope_table
from chatgui.common.prompt import PromptMessage
from tiny_gguf import write_tiny_model


def clear_cache(m):
    """Forget every cached key and value, so a later step can only use what it wrote itself."""
    for layer in m.net.layers:
        layer.attn.cache.k.zero_()
        layer.attn.cache.v.zero_()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_kv_cache_decode_equals_full_forward(tmp_path, arch):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch=arch), device="cpu", precision="float32")
    ids = torch.randint(3, 250, (1, 40), generator=torch.Generator().manual_seed(0))
    full = m.net(ids, 0)[0]
    clear_cache(m)
    # Prefill 25 tokens, then decode the rest one by one through the cache.
    step = [m.net(ids[:, :25], 0)[0]]
    for t in range(25, 40):
        step.append(m.net(ids[:, t:t + 1], t)[0])
    torch.testing.assert_close(torch.cat(step), full, rtol=1e-4, atol=1e-4)


def decoded_like_forward(m, ids: torch.Tensor, prefill: int = 20) -> torch.Tensor:
    """Next-token probabilities [T, vocab] of ids: the first `prefill` positions from a batched
    forward, the rest one token at a time through the decode step; asserts that those agree
    with a batched forward over all of ids (the same tokens win wherever the batched forward's
    best two are more than 0.1 apart in log-probability: the two round differently, by up to
    ~0.09 on these tiny models, so a closer pair may go either way; probabilities within 0.05)."""
    full = torch.log_softmax(m.net(ids, 0)[0].float(), -1)
    clear_cache(m)
    m.net(ids[:, :prefill], 0)
    step = torch.log_softmax(torch.cat([m.net(ids[:, t:t + 1], t)[0] for t in range(prefill, ids.shape[1])]).float(), -1)
    top2 = full[prefill:].topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.1
    assert clear.float().mean() > 0.5                     # and not trivially: most positions count
    assert (step.argmax(-1) == full[prefill:].argmax(-1))[clear].all()
    assert float((step.exp() - full[prefill:].exp()).abs().sum(-1).max()) < 0.05
    return torch.cat([full[:prefill], step]).exp()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_fast_decode_step_tracks_the_batched_forward_with_compact_weights(tmp_path, arch):
    """The decode step (decode.py) and the batched forward share weights and cache but not code:
    with int4 weights and bfloat16 matmuls they must still agree token by token."""
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch=arch, qtype="Q4_1"), device="cpu")
    decoded_like_forward(m, torch.randint(3, 250, (1, 30), generator=torch.Generator().manual_seed(2)))


def test_gemma3_sliding_window_limits_attention(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch="gemma3", n_layers=2), device="cpu",
                   precision="float32")
    m.net.args.sliding_window = 4
    m.net.args.sliding_window_pattern = 2   # layer 0 slides, layer 1 is global
    for i, layer in enumerate(m.net.layers):
        layer.attn.sliding = m.net.args.is_sliding(i)
    m.net.setup_cache(m.net.max_seq)        # caches for the new windows
    assert [layer.attn.sliding for layer in m.net.layers] == [True, False]
    ids = torch.randint(3, 250, (1, 12), generator=torch.Generator().manual_seed(1))
    full = m.net(ids, 0)[0]
    clear_cache(m)
    step = [m.net(ids[:, :5], 0)[0]] + [m.net(ids[:, t:t + 1], t)[0] for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(step), full, rtol=1e-4, atol=1e-4)
    # Changing a token outside every window of the sliding layer still matters through the
    # global layer, so only check that the window path differs from full attention.
    m.net.args.sliding_window = 0
    for layer in m.net.layers:
        layer.attn.sliding = False
    m.net.setup_cache(m.net.max_seq)
    assert not torch.allclose(m.net(ids, 0)[0], full)


def sliding_tiny_model(path, monkeypatch=None, rollback=3, stride=5):
    """A 2-layer gemma3 model whose layer 0 has a window of 4 (layer 1 is global); with
    monkeypatch, its sliding cache holds 4 + rollback + stride positions instead of all."""
    from chatgui.engine import model as model_mod

    m = load_model(path, device="cpu", precision="float32")
    m.net.args.sliding_window, m.net.args.sliding_window_pattern = 4, 2
    for i, layer in enumerate(m.net.layers):
        layer.attn.sliding = m.net.args.is_sliding(i)
    if monkeypatch is not None:
        monkeypatch.setattr(model_mod, "SWA_ROLLBACK", rollback)
        monkeypatch.setattr(model_mod, "SWA_STRIDE", stride)
    m.net.setup_cache(m.net.max_seq)
    return m


def test_a_sliding_window_cache_slides_and_gives_what_a_full_cache_gives(tmp_path, monkeypatch):
    from chatgui.engine.loader import _kv_bytes

    path = write_tiny_model(tmp_path / "m.gguf", arch="gemma3", n_layers=2)
    full = sliding_tiny_model(path)
    assert full.net.layers[0].attn.cache.slots == full.net.max_seq        # (not patched: holds all)
    ids = torch.randint(3, 250, (1, 40), generator=torch.Generator().manual_seed(3))
    expected = full.net(ids, 0)[0]          # one pass over all 40, every key kept
    m = sliding_tiny_model(path, monkeypatch)
    cache = m.net.layers[0].attn.cache
    assert cache.slots == 12 and m.net.layers[1].attn.cache.slots == m.net.max_seq
    assert _kv_bytes(m.net.args, m.net.max_seq, 4) == sum(layer.attn.cache.kv.nbytes for layer in m.net.layers)
    # a batched pass (in chunks of at most SWA_STRIDE), and prefill + one token at a time (decode.py)
    torch.testing.assert_close(m.net(ids, 0)[0], expected, rtol=1e-4, atol=1e-4)
    assert cache.base > 0
    step = [m.net(ids[:, :7], 0)[0]] + [m.net(ids[:, t:t + 1], t)[0] for t in range(7, 40)]
    torch.testing.assert_close(torch.cat(step), expected, rtol=1e-4, atol=1e-4)
    # Stepping back: within SWA_ROLLBACK of the window it goes on from there; further, it cannot.
    assert m.net.resumable(40 - 1 - 3)      # at least SWA_ROLLBACK (3) before the last position
    earliest = cache.base + 4 - 1
    assert m.net.resumable(earliest) and not m.net.resumable(earliest - 1) and m.net.resumable(0)
    torch.testing.assert_close(m.net(ids[:, earliest:], earliest)[0], expected[earliest:], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="cannot be resumed"):
        m.net(ids[:, earliest - 1:], earliest - 1)


def test_candidates_decoded_together_on_a_slid_cache_equal_those_on_a_full_one(tmp_path, monkeypatch):
    from chatgui.common.types import SamplingSettings

    path = write_tiny_model(tmp_path / "m.gguf", arch="gemma3", n_layers=2)
    ids = torch.randint(3, 250, (40,), generator=torch.Generator().manual_seed(5)).tolist()
    settings = SamplingSettings(temperature=0.8, seed=11, max_new_tokens=12)
    replies = []
    for patch in (None, monkeypatch):       # a full cache, then one that slides
        m = sliding_tiny_model(path, patch)
        batch = m.generate_candidates([], settings, 3, prompt_ids=ids, ignore_eos=True)
        for _ in batch.events():
            pass
        replies.append([c.token_ids for c in batch.choices])
    assert m.net.layers[0].attn.cache.base > 0 and len(replies[1][0]) == 12
    assert replies[0] == replies[1]


def test_a_chat_that_steps_back_past_a_slid_cache_is_computed_again(tmp_path, monkeypatch):
    """The next prompt shares only an early prefix with the cache (an edit far up the chat): the
    cache cannot resume there, so the whole prompt is computed again, with the right result."""
    from chatgui.engine import chat_model

    monkeypatch.setattr(chat_model, "PREFILL_CHUNK", 8)     # chunk boundaries to resume at
    path = write_tiny_model(tmp_path / "m.gguf", arch="gemma3", n_layers=2)
    m = sliding_tiny_model(path, monkeypatch, rollback=8)     # (holds positions from 28 on, at 40)
    ids = torch.randint(3, 250, (40,), generator=torch.Generator().manual_seed(4)).tolist()
    m._prefill(ids)
    fed = []
    real_feed = m._feed
    monkeypatch.setattr(m, "_feed", lambda part, start, *a, **k: fed.append(start) or real_feed(part, start, *a, **k))
    edited = ids[:10] + [7] + ids[11:]
    logits = m._prefill(edited)
    assert fed == [0, 8, 16, 24, 32, 39]    # every chunk from 0, then the last token alone
    torch.testing.assert_close(logits, sliding_tiny_model(path).net(torch.tensor([edited]), 0)[0, -1],
                               rtol=1e-4, atol=1e-4)
    # What the cache still holds is reused from the last chunk boundary it can resume at: the
    # same logits as a fresh model's, to the last bit.
    for prompt in (edited + [5, 6], edited[:39]):
        fed.clear()
        got = m._prefill(prompt)
        assert fed[0] == 32
        assert torch.equal(got, sliding_tiny_model(path, monkeypatch, rollback=8)._prefill(prompt))


def neox_rope_reference(x, pos, base=10000.0):
    """Rotate-half RoPE written out plainly, as Hugging Face's Llama/Qwen code does it."""
    d = x.shape[-1]
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.outer(pos.double(), inv)
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1).float(), torch.cat([ang.sin(), ang.sin()], -1).float()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos[None, :, None, :] + torch.cat([-x2, x1], -1) * sin[None, :, None, :]


def test_interleaved_rope_on_permuted_rows_equals_neox_rope():
    """The loader permutes NeoX-layout Q/K rows so that one interleaved RoPE serves every
    architecture: rotating the permuted vector must give the permuted NeoX rotation."""
    torch.manual_seed(0)
    B, T, H, D = 1, 7, 3, 16
    x = torch.randn(B, T, H, D)
    args = ModelArgs(head_dim=D, rope_dim=D)
    rot = rope_table(args, 10000.0, T, "cpu")
    perm = neox_to_interleaved(1, D, D)
    ours = apply_rope(x[..., perm], rot, D)
    torch.testing.assert_close(ours, neox_rope_reference(x, torch.arange(T))[..., perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.norm(dim=-1), x.norm(dim=-1))


def test_partial_rotary_leaves_tail_untouched():
    x = torch.randn(1, 4, 2, 16)
    args = ModelArgs(head_dim=16, rope_dim=8)
    out = apply_rope(x, rope_table(args, 10000.0, 4, "cpu"), 8)
    torch.testing.assert_close(out[..., 8:], x[..., 8:])
    assert not torch.allclose(out[:, 1:, :, :8], x[:, 1:, :, :8])   # position 0 is not rotated


@pytest.mark.parametrize("rope_dim", [16, 8])
def test_rope_of_one_token_equals_batched_rope(rope_dim):
    x = torch.randn(1, 1, 5, 16)
    rot = rope_table(ModelArgs(head_dim=16, rope_dim=rope_dim), 10000.0, 9, "cpu")
    torch.testing.assert_close(rope_row(x[0, 0], rot[7], rope_dim), apply_rope(x, rot[7:8], rope_dim)[0, 0])


@pytest.mark.parametrize("qtype", ["F32", "Q4_1", "Q4_0"])
def test_compact_weights_track_the_float32_reference(tmp_path, qtype):
    """precision="auto" (int4 / bfloat16 weights, bfloat16 matmuls) stays close to float32."""
    p = write_tiny_model(tmp_path / "m.gguf", qtype=qtype)
    fast, exact = load_model(p, device="cpu"), load_model(p, device="cpu", precision="float32")
    ids = list(range(10, 60))
    a, b = fast.logprobs(ids), exact.logprobs(ids)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
    assert float((a.exp() - b.exp()).abs().sum(-1).max()) < 0.1     # total variation per position


@pytest.mark.parametrize("shape", [(1, 49152), (49152,), (3, 16384 + 64), (2, 640), (1, 100)])
def test_two_stage_top_indices_equal_topk(shape):
    """The two-stage search (the output head's candidates, top-k sampling) finds exactly topk's set."""
    from chatgui.engine.sampling import top_indices
    g = torch.Generator().manual_seed(sum(shape))
    for trial in range(20):
        x = torch.randn(shape, generator=g)
        if trial % 2:   # clustered maxima: many of the best values in a few groups
            x[..., :256] += 4.0
        for k in (64, 40, 5, 1):
            ours = top_indices(x, k).sort(-1).values
            assert torch.equal(ours, x.topk(min(k, shape[-1]), dim=-1).indices.sort(-1).values)


@pytest.mark.parametrize("ranker", ["fbgemm", "fbgemm-unfolded", "int8pack"])
@pytest.mark.parametrize("qtype", ["Q8_0", "Q5_0"])
def test_output_head_is_exact_on_its_best_candidates(tmp_path, monkeypatch, ranker, qtype):
    """QuantRows ranks the vocabulary with an int8 copy of the head, then recomputes the best
    REFINE logits exactly from the file's own blocks: those equal the exact product, and the
    rest stay close to it."""
    import gguf
    import numpy as np

    from chatgui.engine import rows as rows_mod
    from chatgui.engine.gguf_file import GGUFFile
    from chatgui.engine.quant import dequantize
    if ranker == "int8pack":
        monkeypatch.setattr(rows_mod, "fbgemm_ranker", lambda *args: None)
    elif "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch build has no FBGEMM int8 matmul")
    else:       # several chunks, the last one short; folded four rows to one unless told not to
        monkeypatch.setattr(rows_mod, "RANKER_CHUNK", 256 * 2 * 700)
        if ranker == "fbgemm-unfolded":
            monkeypatch.setattr(rows_mod, "FOLD_BELOW", 0)
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(4093, 256, generator=g) * torch.rand(4093, 1, generator=g)   # rows of unequal size
    qt = gguf.GGMLQuantizationType[qtype]
    w = gguf.GGUFWriter(str(tmp_path / "h.gguf"), "llama")
    w.add_tensor("head", gguf.quants.quantize(weight.numpy(), qt), raw_dtype=qt)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    t = GGUFFile(tmp_path / "h.gguf").tensor("head")
    head = rows_mod.QuantRows(tmp_path, t, rows_mod.ranker_parts(tmp_path, t, rows_per_chunk=1000))
    head.finish_loading()
    table = dequantize(tmp_path, t)
    assert (head.ranker is head._interim) == (ranker == "int8pack")
    ids = torch.tensor([[0, 4092], [17, 17]])
    assert torch.equal(head.rows(ids), table[ids])           # embedding rows: the file's values
    x = torch.randn(70, 256, generator=g)                    # more positions than refined at once
    exact = x @ table.T
    with torch.inference_mode():
        got = head(x)
    best = exact.topk(16, dim=-1).indices
    torch.testing.assert_close(got.gather(1, best), exact.gather(1, best), rtol=1e-5, atol=1e-4)
    assert torch.equal(got.argmax(-1), exact.argmax(-1))
    assert float((got - exact).abs().mean()) < 0.05 * float(exact.abs().mean())
    assert np.isfinite(got.numpy()).all()


def test_decode_step_stays_finite_with_float16_matmuls(tmp_path):
    """A GPU without bf16 runs dense float16 weights. The decode step folds 1/rms in after the
    matmul for bf16 and float32; in float16 the unnormalized x * w can overflow (65504) where
    the batched forward, which normalizes first, stays finite. Simulated on the CPU."""
    from chatgui.engine.qlinear import DenseLinear
    m = load_model(write_tiny_model(tmp_path / "m.gguf"), device="cpu", precision="float32")
    for layer in m.net.layers:
        for mod, name in ((layer.attn, "wqkv"), (layer.attn, "wo"), (layer.ffn, "w13"), (layer.ffn, "w2")):
            old = getattr(mod, name)
            setattr(mod, name, DenseLinear(old.weight.float(), old.bias, torch.float16))
    m.net.tok_embeddings.weight[:, 5] = 9000.0     # one "massive activation" channel
    ids = torch.randint(3, 250, (1, 12), generator=torch.Generator().manual_seed(0))
    full = m.net(ids, 0)[0]
    assert torch.isfinite(full).all()
    clear_cache(m)
    m.net(ids[:, :8], 0)
    step = torch.cat([m.net(ids[:, t:t + 1], t)[0] for t in range(8, 12)])
    assert torch.isfinite(step).all()
    torch.testing.assert_close(step, full[8:], rtol=1e-2, atol=1e-2)


def test_explain_next_token_is_the_sampling_distribution_and_reuses_the_positions_logits(tiny_model):
    """The sampling inspector's numbers come from the engine (engine/next_token.py): the rows'
    final probabilities are logits_to_probs of the position's logits; another setting reuses them."""
    from chatgui.common.types import SamplingSettings
    from chatgui.engine.sampling import logits_to_probs

    chat = [PromptMessage.user("What comes next?")]
    settings = SamplingSettings(temperature=1.0, top_k=40, top_p=0.9, min_p=0.05)
    first = tiny_model.explain_next_token(chat, (), settings.to_dict(), top_n=30)
    assert first["computed_logits"] and len(first["rows"]) == 30
    ids, _ = tiny_model.fit_prompt(chat, 1)
    probs = logits_to_probs(tiny_model.next_token_logits(chat), settings, ids[-settings.repeat_last_n:])
    assert first["survivors"] == int((probs > 0).sum())
    for row in first["rows"]:
        assert abs(row["final"] - float(probs[row["id"]])) < 1e-5
        assert row["text"] == tiny_model.token_text(row["id"])
    tighter = tiny_model.explain_next_token(chat, (), settings.with_(top_p=0.3).to_dict(), top_n=30)
    assert not tighter["computed_logits"] and tighter["survivors"] < first["survivors"]
    # A token further down than top_n is added when asked about.
    far = first["rows"][-1]["id"]
    chosen = tiny_model.explain_next_token(chat, (), settings.to_dict(), chosen_id=far, top_n=5)
    assert [r["id"] for r in chosen["rows"][:5]] == [r["id"] for r in first["rows"][:5]]
    assert len(chosen["rows"]) == 6 and chosen["rows"][-1]["id"] == far and chosen["rows"][-1]["rank"] > 5
    assert tiny_model.explain_next_token(chat, [far], settings.to_dict())["computed_logits"]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_kv_cache_is_bfloat16_only_where_it_would_weigh_more_than_the_model(tmp_path, arch):
    """loader.kv_cache_dtype: float32 keys and values unless, in float32, they would take more
    than KV_HALVED_ABOVE of the file's size (small models at long contexts); the float32
    reference always keeps float32. With a bfloat16 cache the decode step and the batched forward
    agree, and both stay close to the same model with a float32 cache."""
    from chatgui.engine.gguf_file import GGUFFile
    from chatgui.engine.loader import KV_HALVED_ABOVE, estimated_memory_bytes, kv_cache_dtype, read_model_args

    path = write_tiny_model(tmp_path / "m.gguf", arch=arch, qtype="Q4_1")
    gf = GGUFFile(path)
    args = read_model_args(gf)
    per_position = args.n_layers * 2 * args.n_kv_heads * args.head_dim * 4
    longest_float32 = int(KV_HALVED_ABOVE * gf.buf.nbytes) // per_position
    assert 30 < longest_float32 < args.train_context
    assert kv_cache_dtype(gf, args, longest_float32) == torch.float32
    assert kv_cache_dtype(gf, args, longest_float32 + 1) == torch.bfloat16
    assert kv_cache_dtype(gf, args, args.train_context, precision="float32") == torch.float32
    # the memory check counts what the cache will take
    grow = estimated_memory_bytes(gf, args, longest_float32 + 1) - estimated_memory_bytes(gf, args, longest_float32)
    assert grow < 0
    ids = torch.randint(3, 250, (1, 30), generator=torch.Generator().manual_seed(4))
    probs = {}
    for ctx, dtype in ((longest_float32, torch.float32), (args.train_context, torch.bfloat16)):
        m = load_model(path, device="cpu", context_length=ctx)
        assert {layer.attn.cache.kv.dtype for layer in m.net.layers} == {dtype}
        probs[dtype] = decoded_like_forward(m, ids)
    assert float((probs[torch.bfloat16] - probs[torch.float32]).abs().sum(-1).max()) < 0.05


def test_output_head_gives_back_the_file_pages_it_read_and_reads_them_again(tmp_path, monkeypatch):
    """QuantRows reads embedding rows and its exact refinement from the mapped file, and every
    RELEASE_EVERY_ROWS rows tells the OS those pages may go: rows read afterwards are the same."""
    from chatgui.engine import rows as rows_mod
    from chatgui.engine.gguf_file import GGUFFile
    from chatgui.engine.quant import dequantize

    released = []
    monkeypatch.setattr(rows_mod.QuantRows, "RELEASE_EVERY_ROWS", 5)
    real_release = rows_mod.release_pages
    monkeypatch.setattr(rows_mod, "release_pages", lambda t: (released.append(t.numel()), real_release(t)))
    path = write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0")
    t = GGUFFile(path).tensor("token_embd.weight")
    table = rows_mod.QuantRows(path, t)
    exact = dequantize(path, t)
    for start in range(0, 42, 3):                       # 14 reads of 3 rows: a release every second one
        ids = torch.arange(start, start + 3)
        assert torch.equal(table.rows(ids), exact[ids])
    assert len(released) == 7 and set(released) == {t.data.nbytes}
    assert table._file_pages.data_ptr() == t.data.ctypes.data      # the mapping itself, not a copy
