"""The SentencePiece tokenizer (engine/spm.py) step by step, on small vocabularies. Its tokens
against llama.cpp's own: test_arch_parity.py (a tiny SPM file) and, on Gemma 3's 262k
vocabulary, test_big_models.py."""
from __future__ import annotations

import pytest

from chatgui.engine import ModelLoadError
from chatgui.engine.tokenizer import build_tokenizer

BYTES = [f"<0x{i:02X}>" for i in range(256)]


def spm(pieces: dict[str, float], whole: dict[str, int] | None = None, add_space_prefix: bool = False):
    """A tokenizer of <unk> <s> </s>, the 256 byte tokens, pieces (text: score), then whole
    tokens (text: type, 3 control, 4 user-defined); returns it and its id of each text."""
    whole = whole or {}
    tokens = ["<unk>", "<s>", "</s>"] + BYTES + list(pieces) + list(whole)
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * 256 + [1] * len(pieces) + list(whole.values()),
            "tokenizer.ggml.scores": [0.0] * 259 + list(pieces.values()) + [0.0] * len(whole),
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_space_prefix": add_space_prefix}
    return build_tokenizer(meta, "m.gguf").tokenizer, {t: i for i, t in enumerate(tokens)}


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def test_the_pair_whose_token_scores_highest_merges_first():
    pieces = {"a": -1.0, "b": -1.0, "c": -1.0, "ab": -5.0, "bc": -2.0}
    tok, ids = spm(pieces)
    assert encode(tok, "abc") == [ids["a"], ids["bc"]]       # "bc" outscores "ab"
    pieces["ab"] = -2.0                                       # a tie: the leftmost pair
    tok, ids = spm(pieces)
    assert encode(tok, "abc") == [ids["ab"], ids["c"]]
    pieces["abc"] = -9.0                                      # and a merged piece merges on
    tok, ids = spm(pieces)
    assert encode(tok, "abc") == [ids["abc"]]


def test_merges_go_on_from_merged_pieces_and_spaces_are_u2581():
    tok, ids = spm({"\u2581": -1, "h": -1, "e": -1, "l": -1, "o": -1, "ll": -2, "he": -3, "hell": -4,
                    "hello": -5, "\u2581hello": -6})
    assert encode(tok, "hello hello") == [ids["hello"], ids["\u2581hello"]]
    assert tok.decode(encode(tok, "hello hello")) == "hello hello"


def test_a_character_the_vocabulary_lacks_becomes_its_utf8_bytes():
    tok, ids = spm({"a": -1})
    assert encode(tok, "a\u00e9\U0001F642") == [ids["a"], ids["<0xC3>"], ids["<0xA9>"],
                                                ids["<0xF0>"], ids["<0x9F>"], ids["<0x99>"], ids["<0x82>"]]
    assert tok.decode(encode(tok, "a\u00e9\U0001F642")) == "a\u00e9\U0001F642"
    # bytes that are no UTF-8: one U+FFFD each, as `tokenizers`' byte fallback
    assert tok.decode([ids["a"], ids["<0xC3>"], ids["<0xFF>"], ids["a"]]) == "a\ufffd\ufffda"


def test_whole_tokens_are_cut_out_longest_first_and_decode_by_their_kind():
    tok, ids = spm({"x": -1, "y": -1, "\n": -1}, {"\n\n": 4, "\n\n\n": 4, "<ctl>": 3})
    assert encode(tok, "x\n\n\n\ny<ctl>\n\n") == [ids["x"], ids["\n\n\n"], ids["\n"], ids["y"], ids["<ctl>"],
                                                  ids["\n\n"]]
    ids_ = encode(tok, "x\n\n<ctl>y")
    assert tok.decode(ids_) == "x\n\n<ctl>y"
    assert tok.decode(ids_, skip_special_tokens=True) == "x\n\ny"     # user-defined: text; control: not


def test_the_space_prefix_goes_before_each_piece_of_text_and_comes_off_a_decoded_start():
    tok, ids = spm({"\u2581": -1, "a": -1, "\u2581a": -2}, {"<ctl>": 3}, add_space_prefix=True)
    assert encode(tok, "a<ctl>a") == [ids["\u2581a"], ids["<ctl>"], ids["\u2581a"]]
    assert tok.decode(encode(tok, "a a")) == "a a"
    assert encode(tok, "") == []


def test_token_lookups_and_sizes():
    tok, ids = spm({"a": -1})
    assert tok.get_vocab_size() == len(ids)
    assert tok.id_to_token(ids["a"]) == "a" and tok.id_to_token(len(ids)) is None
    assert [e.ids for e in tok.encode_batch(["a", "aa"])] == [[ids["a"]], [ids["a"], ids["a"]]]


@pytest.mark.parametrize("scores, why", [(None, "needs tokenizer.ggml.scores"), ([[1.0]] * 262, "other than numbers")])
def test_a_vocabulary_without_usable_scores_is_refused(scores, why):
    tokens = ["<unk>", "<s>", "</s>"] + BYTES + ["a", "b", "ab"]
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * 256 + [1] * 3}
    if scores is not None:
        meta["tokenizer.ggml.scores"] = scores
    with pytest.raises(ModelLoadError, match=why):
        build_tokenizer(meta, "m.gguf")


def test_a_reply_streamed_token_by_token_is_its_whole_text():
    from chatgui.engine.tokenizer import decode_stream

    tok, ids = spm({"\u2581": -1, "a": -1, "\u2581a": -2}, {"<ctl>": 3}, add_space_prefix=True)
    reply = encode(tok, "a \u00e9\U0001F642 a<ctl>a")
    stream = decode_stream(tok)
    pieces = [stream.step(tok, i) for i in reply]
    assert "".join(p or "" for p in pieces) == tok.decode(reply, skip_special_tokens=True) == "a \u00e9\U0001F642 a a"
    # nothing while a character's bytes are incomplete, then the character whole
    first_byte = reply.index(ids["<0xF0>"])
    assert pieces[first_byte:first_byte + 3] == [None] * 3 and pieces[first_byte + 3] == "\U0001F642"
    assert pieces[reply.index(ids["<ctl>"])] is None


def test_whole_tokens_sharing_their_start_are_each_found():
    """(Looked up by their first 2, then 8 characters: "<unused5>" and "<unused50>" share both.)"""
    tok, ids = spm({"a": -1, "b": -1, "<": -1, "u": -1, "l": -1, ">": -1},
                   {"<unused5>": 3, "<unused50>": 3, "<start>": 3})
    assert encode(tok, "a<unused50>b<unused5><ul><start>") == [ids["a"], ids["<unused50>"], ids["b"], ids["<unused5>"],
                                                            ids["<"], ids["u"], ids["l"], ids[">"], ids["<start>"]]


def test_a_stray_byte_in_a_reply_does_not_stop_its_stream():
    """A byte that is no UTF-8 after a whole character: U+FFFD for it, and the text streamed so
    far stays (it once turned the whole run into U+FFFD, and the stream said nothing more)."""
    from chatgui.engine.tokenizer import decode_stream

    tok, ids = spm({"x": -1, "y": -1})
    reply = [ids["<0xC3>"], ids["<0xA9>"], ids["<0xE2>"], ids["x"], ids["y"], ids["x"]]
    stream = decode_stream(tok)
    pieces = [stream.step(tok, i) for i in reply]
    assert "".join(p or "" for p in pieces) == tok.decode(reply) == "\u00e9\ufffdxyx"
    assert pieces[-1] == "x"


def test_whole_tokens_are_cut_out_longest_in_utf8_bytes_first():
    tok, ids = spm({c: -1.0 for c in "abcd\u00e9"}, {"\u00e9\u00e9\u00e9\u00e9": 4, "abcd\u00e9": 4})
    # "éééé" is 8 bytes, "abcdé" 6 (but 5 characters against 4): llama.cpp cuts "éééé" first
    assert encode(tok, "abcd\u00e9\u00e9\u00e9\u00e9") == [ids["a"], ids["b"], ids["c"], ids["d"],
                                                          ids["\u00e9\u00e9\u00e9\u00e9"]]


def test_an_unused_token_decodes_as_nothing_and_only_byte_tokens_as_bytes():
    tokens = ["<unk>", "<s>", "</s>"] + BYTES + ["a", "<unused0>", "<0x41>"]
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * 256 + [1, 5, 1],
            "tokenizer.ggml.scores": [0.0] * len(tokens), "tokenizer.ggml.add_space_prefix": False}
    tok = build_tokenizer(meta, "m.gguf").tokenizer
    a, unused, text_like_byte = len(tokens) - 3, len(tokens) - 2, len(tokens) - 1
    # (a normal token spelled like a byte token, listed after it, is text: as llama.cpp's token_to_piece)
    assert tok.decode([a, unused, a]) == "aa" and tok.decode([text_like_byte]) == "<0x41>"
    assert tok.decode([3 + 0x41]) == "A"
