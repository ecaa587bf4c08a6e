"""examples/convert_original_checkpoint.py on a synthetic checkpoint of the authors' model.

The reference model below re-implements ``Lu-Yang666/LDNet`` @ 58796566 ``src/model.py ::
SchemaGuidedInstructBertModel`` (with its ``PointerMatrix`` -> ``GlobalPointer``) step by step, in torch, with the
same module tree (hence the same state-dict names and shapes), on a tiny BERT; its inputs follow ``src/transform.py ::
CachedLabelPointerTransform.transform`` and the collate's right padding. The converted ``LDNetModel`` must give the
same span-graph logits on every real cell.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
from pathlib import Path

import ldnet_tiny as T
import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, DebertaV2Config

from modeling_ldnet import LDNetModel, LDNetProcessor
from modeling_ldnet.modeling_ldnet import MASK_VALUE

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("convert_original_checkpoint", REPO / "examples" / "convert_original_checkpoint.py")
conv = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = conv
_spec.loader.exec_module(conv)

TAGS = ["[LC]", "[LM]", "[LR]", "[I]", "[TL]", "[TP]", "[B]"]  # src/transform.py add_tokens order
HIDDEN = 32
INNER_DIM = 64  # GlobalPointer's default inner_dim (the reference never changes it)


# ---------------------------------------------------------------------------------------------------------------
# the reference model, re-implemented (src/model.py)
# ---------------------------------------------------------------------------------------------------------------


class RefGlobalPointer(nn.Module):
    """``GlobalPointer(ent_type_size, hidden_size, inner_dim=64, RoPE=True)``."""

    def __init__(self, ent_type_size: int, hidden_size: int, inner_dim: int = INNER_DIM):
        super().__init__()
        self.ent_type_size, self.inner_dim = ent_type_size, inner_dim
        self.dense = nn.Linear(hidden_size, ent_type_size * inner_dim * 2)

    def sinusoidal_position_embedding(self, batch_size: int, seq_len: int, output_dim: int) -> torch.Tensor:
        pos = torch.arange(0, seq_len, dtype=torch.float).unsqueeze(-1)
        freq = torch.pow(10000, -2 * torch.arange(0, output_dim // 2, dtype=torch.float) / output_dim)
        angles = pos * freq
        emb = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # sin/cos interleaved
        emb = emb.repeat((batch_size, *([1] * len(emb.shape))))
        return torch.reshape(emb, (batch_size, seq_len, output_dim))

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch_size, seq_len = x.shape[0], x.shape[1]
        out = self.dense(x)
        out = torch.stack(torch.split(out, self.inner_dim * 2, dim=-1), dim=-2)  # [B, L, C, 2d]
        qw, kw = out[..., : self.inner_dim], out[..., self.inner_dim :]
        pos_emb = self.sinusoidal_position_embedding(batch_size, seq_len, self.inner_dim)
        cos_pos = pos_emb[..., None, 1::2].repeat_interleave(2, dim=-1)
        sin_pos = pos_emb[..., None, ::2].repeat_interleave(2, dim=-1)
        qw2 = torch.stack([-qw[..., 1::2], qw[..., ::2]], -1).reshape(qw.shape)
        qw = qw * cos_pos + qw2 * sin_pos
        kw2 = torch.stack([-kw[..., 1::2], kw[..., ::2]], -1).reshape(kw.shape)
        kw = kw * cos_pos + kw2 * sin_pos
        logits = torch.einsum("bmhd,bnhd->bhmn", qw, kw)
        # key columns only are masked, with -1e12, before the 1/sqrt(d) scaling
        pad_mask = attention_mask.unsqueeze(1).unsqueeze(1).expand(batch_size, self.ent_type_size, seq_len, seq_len)
        logits = logits * pad_mask - (1 - pad_mask) * 1e12
        return logits / self.inner_dim**0.5


class RefPointerMatrix(nn.Module):
    """``PointerMatrix`` of src/model.py: its Linear/Biaffine layers are commented out there, only ``gp`` is left."""

    def __init__(self, hidden_size: int, cls_num: int):
        super().__init__()
        self.gp = RefGlobalPointer(cls_num, hidden_size)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.gp(x, attention_mask)


class RefSchemaGuidedInstructBertModel(nn.Module):
    """``SchemaGuidedInstructBertModel`` (lora=False): plm, pointer (cls_num=3), bce_linear, parameter-free losses."""

    def __init__(self, encoder_dir: Path, vocab_size: int):
        super().__init__()
        self.plm = AutoModel.from_config(AutoConfig.from_pretrained(encoder_dir))  # reference: from_pretrained
        self.plm.resize_token_embeddings(vocab_size)
        hidden = self.plm.config.hidden_size
        self.pointer = RefPointerMatrix(hidden, cls_num=3)
        self.bce = nn.BCEWithLogitsLoss(reduction="sum")
        self.bce_mean = nn.BCEWithLogitsLoss(reduction="mean")
        self.criterion = nn.BCEWithLogitsLoss(reduction="none")
        self.sigmoid = nn.Sigmoid()
        self.mse = nn.MSELoss()
        self.bce_linear = nn.Linear(hidden, 1)
        self.cross_entropy = nn.CrossEntropyLoss()

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attention_mask = mask.gt(0).float()
        hidden = self.plm(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        bce_logits = self.bce_linear(hidden).squeeze(dim=2)
        sigmoid_bce_logits = self.sigmoid(bce_logits)
        logits = self.pointer(hidden, attention_mask)
        bs, cls_num, seq_len, _ = logits.shape
        label_drop = sigmoid_bce_logits.clone().reshape(bs, 1, 1, seq_len).repeat(1, cls_num, seq_len, 1)
        return logits * label_drop


# ---------------------------------------------------------------------------------------------------------------
# the reference inputs (src/transform.py), for records without truncation
# ---------------------------------------------------------------------------------------------------------------


def reference_tokens(record: dict, tok) -> list[str]:
    tokens = [tok.cls_token]
    seen: dict[str, set] = {"lc": set(), "lm": set(), "lr": set()}
    tag_of = {"lc": "[LC]", "lm": "[LM]", "lr": "[LR]"}

    def label(string: str, ns: str) -> None:
        if string not in seen[ns]:  # one tag per label string and namespace
            seen[ns].add(string)
            tokens.append(tag_of[ns])
            tokens.extend(tok(string, add_special_tokens=False).tokens())

    if record.get("instruction"):
        tokens.append("[I]")
        tokens.extend(tok(record["instruction"], add_special_tokens=False).tokens())
    schema = record["schema"]
    for t in schema.get("cls", []):
        label(t, "lc")
    for t in schema.get("ent", []):
        label(t, "lm")
    for t in schema.get("discontinuous_ent", []):
        label(t, "lm")
    for t in schema.get("rel", []):
        label(t, "lr")
    for rel, quals in schema.get("hyper_rel", {}).items():
        label(rel, "lr")
        for q in quals:
            label(q, "lr")
    for etype, roles in schema.get("event", {}).items():
        label(etype, "lm")
        for r in roles:
            label(r, "lr")
    if record.get("text"):
        tokens.append("[TL]" if any(seen.values()) else "[TP]")
        tokens.extend(tok(record["text"], add_special_tokens=False).tokens())
    if record.get("bg"):
        tokens.append("[B]")
        tokens.extend(tok(record["bg"], add_special_tokens=False).tokens())
    tokens.append(tok.sep_token)
    return tokens


def reference_batch(records: list[dict], tok) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and the segment ``mask`` (only ``> 0`` matters), right-padded with the pad id / 0."""
    ids = [tok.convert_tokens_to_ids(reference_tokens(r, tok)) for r in records]
    length = max(len(x) for x in ids)
    input_ids = torch.tensor([x + [tok.pad_token_id] * (length - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (length - len(x)) for x in ids])
    return input_ids, mask


def records() -> list[dict]:
    out = T.make_records(2, seed=3)
    out.append({"id": "c1", "instruction": "Classify the text.", "schema": {"cls": ["positive", "negative"]},
                "text": "Great food .", "bg": "A review of Acme .", "ans": {}})
    out.append({"id": "e1", "instruction": "Find events.",
                "schema": {"ent": ["person", "attack"], "event": {"attack": ["attacker", "target"],
                                                                  "meet": ["entity", "target"]}},
                "text": "Troops attacked the city .", "bg": "", "ans": {}})
    out.append({"id": "m1", "instruction": "Who attacked ?", "schema": {}, "text": "Troops attacked the city .",
                "bg": "", "ans": {}})
    return out


# ---------------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------------


def encoder_config(kind: str, vocab_size: int):
    common = {"vocab_size": vocab_size, "hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 128, "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0}
    if kind == "bert":
        return BertConfig(**common)
    # the shape of deberta-v3 (the authors' encoder): relative attention, no absolute positions, no token types
    return DebertaV2Config(**common, relative_attention=True, position_buckets=16, max_relative_positions=-1,
                           pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm",
                           share_att_key=True, type_vocab_size=0)


@pytest.fixture(scope="module", params=["bert", "deberta-v2"])
def setup(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(f"convert_original_{kind}")
    encoder = root / "encoder"  # what --encoder points at: config + tokenizer, no weights
    base_tok = copy.deepcopy(T.tokenizer())
    encoder_config(kind, len(base_tok)).save_pretrained(encoder)
    base_tok.save_pretrained(encoder)
    ref_tok = copy.deepcopy(base_tok)
    assert ref_tok.add_tokens(TAGS) == 7  # the reference's assert
    torch.manual_seed(0)
    ref = RefSchemaGuidedInstructBertModel(encoder, len(ref_tok)).eval()
    with torch.no_grad():  # wider heads than BERT's init so the logits are spread, not all ~0
        for p in (*ref.pointer.parameters(), *ref.bce_linear.parameters()):
            p.normal_(0.0, 0.5)
    state = ref.state_dict()
    rex = root / "SchemaGuidedInstructBertModel.best.pth"  # tasks/base_task.py TaskBase.save layout
    torch.save({"model_state": state, "optimizer_state": {"state": {}, "param_groups": [{"lr": 2e-5, "params": [0]}]},
                "history": {"best_loss": float("inf"), "curr_epoch": 3}}, rex)
    bare = root / "bare.pth"
    torch.save(state, bare)
    return {"kind": kind, "root": root, "encoder": encoder, "ref": ref, "ref_tok": ref_tok, "state": state, "rex": rex, "bare": bare}


@pytest.fixture(scope="module")
def converted(setup):
    out = setup["root"] / "converted"
    rc = conv.main(["--checkpoint", str(setup["rex"]), "--encoder", str(setup["encoder"]), "--out", str(out)])
    assert rc == 0
    return out


# ---------------------------------------------------------------------------------------------------------------
# (a) every key mapped
# ---------------------------------------------------------------------------------------------------------------


def test_every_reference_key_is_mapped_or_reported(setup, converted):
    state = setup["state"]
    report = json.loads((converted / "conversion_report.json").read_text())
    pooler = sorted(k for k in state if k.startswith("plm.pooler."))
    # BertModel has a pooler (unused by the reference forward); DebertaV2Model has none
    assert pooler == {"bert": ["plm.pooler.dense.bias", "plm.pooler.dense.weight"], "deberta-v2": []}[setup["kind"]]
    assert report["mapped"] == {k: k for k in state if k not in pooler}
    assert sorted(report["dropped"]) == pooler
    assert report["unmapped"] == [] and report["missing"] == []
    assert report["wrapper_entries_ignored"] == ["history", "optimizer_state"]
    assert {"pointer.gp.dense.weight", "pointer.gp.dense.bias", "bce_linear.weight", "bce_linear.bias"} <= set(
        report["mapped"])
    # the tag ids: the reference tokenizer's (7 ordinary tokens appended) == the processor's
    base = len(T.tokenizer())
    assert report["tag_token_ids"] == {t: base + i for i, t in enumerate(TAGS)}
    proc = LDNetProcessor.from_pretrained(converted)
    assert [proc.tokenizer.convert_tokens_to_ids(t) for t in TAGS] == setup["ref_tok"].convert_tokens_to_ids(TAGS)
    # the saved folder holds exactly the reference weights, in the reference forms
    model = LDNetModel.from_pretrained(converted)
    ours = model.state_dict()
    for key in report["mapped"]:
        assert torch.equal(ours[key], state[key]), key
    cfg = model.config
    assert (cfg.head_dim, cfg.label_drop_mode, cfg.label_drop_axis, cfg.label_drop_per_channel, cfg.score_bias_init,
            cfg.use_rope, cfg.rope_theta, cfg.label_drop_loss_reduction, cfg.span_graph_loss_reduction) == (
        64, "logit", "column", False, None, True, 10000.0, "padded_mean", "mean")
    assert report["config"]["head_dim"] == 64 and report["config"]["label_drop_mode"] == "logit"


def test_bare_state_dict_converts_like_the_rex_file(setup):
    _, _, report = conv.convert(setup["bare"], str(setup["encoder"]))
    assert report.wrapper_entries_ignored == []
    assert report.mapped == {k: k for k in setup["state"] if not k.startswith("plm.pooler.")}


# ---------------------------------------------------------------------------------------------------------------
# (b) numbers: converted model == reference forward
# ---------------------------------------------------------------------------------------------------------------


def test_inputs_match_the_reference_construction(setup, converted):
    proc = LDNetProcessor.from_pretrained(converted)
    recs = records()
    enc = proc(recs, return_tensors="pt")
    ref_ids, ref_mask = reference_batch(recs, setup["ref_tok"])
    assert enc["input_ids"].tolist() == ref_ids.tolist()
    assert enc["attention_mask"].tolist() == ref_mask.gt(0).long().tolist()


def test_span_graph_logits_equal_the_reference_forward(setup, converted):
    recs = records()
    ref_ids, ref_mask = reference_batch(recs, setup["ref_tok"])
    lengths = ref_mask.sum(1).tolist()
    assert len(set(lengths)) > 1  # padding is exercised
    model = LDNetModel.from_pretrained(converted).eval()
    with torch.no_grad():
        ref_logits = setup["ref"](ref_ids, ref_mask)
        ours = model(input_ids=ref_ids, attention_mask=ref_mask.gt(0).long()).logits
    assert ours.shape == ref_logits.shape == (len(recs), 3, max(lengths), max(lengths))
    for b, n in enumerate(lengths):
        torch.testing.assert_close(ours[b, :, :n, :n], ref_logits[b, :, :n, :n])
        # pads: we mask rows and columns; the reference masks key columns only (-1e12 / 8, times the gate), so
        # both say "no link" there (its unmasked pad rows are never read: SPEC §4.5)
        assert (ours[b, :, n:, :] == MASK_VALUE).all() and (ours[b, :, :, n:] == MASK_VALUE).all()
        assert (torch.sigmoid(ref_logits[b, :, :, n:]) == 0).all()
    real = torch.cat([ref_logits[b, :, :n, :n].flatten() for b, n in enumerate(lengths)])
    assert real.std() > 0.5  # spread scores: the comparison is not between near-zero grids
    # the comparison can fail: the same reference with queries and keys swapped differs
    swapped = torch.cat([ref_logits[b, :, :n, :n].transpose(-1, -2).flatten() for b, n in enumerate(lengths)])
    mine = torch.cat([ours[b, :, :n, :n].flatten() for b, n in enumerate(lengths)])
    assert not torch.allclose(mine, swapped, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# (c) bad input
# ---------------------------------------------------------------------------------------------------------------


def _save(setup, name: str, state: dict) -> Path:
    path = setup["root"] / name
    torch.save(state, path)
    return path


def test_wrong_shape_names_the_key_and_both_shapes(setup):
    state = dict(setup["state"])
    state["bce_linear.weight"] = torch.zeros(3, HIDDEN)  # a per-channel gate: not the reference's
    path = _save(setup, "wrong_shape.pth", state)
    with pytest.raises(conv.ConversionError, match=r"'bce_linear\.weight': reference \(3, 32\), ours \(1, 32\)"):
        conv.convert(path, str(setup["encoder"]))


def test_embedding_rows_of_another_tokenizer_are_refused(setup):
    state = dict(setup["state"])
    emb = state["plm.embeddings.word_embeddings.weight"]
    state["plm.embeddings.word_embeddings.weight"] = emb[:-1]
    path = _save(setup, "rows.pth", state)
    with pytest.raises(conv.ConversionError, match=rf"word_embeddings\.weight: {emb.shape[0] - 1} rows.*{emb.shape[0]}"):
        conv.convert(path, str(setup["encoder"]))


def test_unknown_keys_are_listed_and_refused_unless_allowed(setup):
    state = dict(setup["state"])
    state["pointer.biaffine.weight"] = torch.zeros(3, 513, 513)  # multimodal models/model.py PointerMatrix
    state["pic_mlp.0.weight"] = torch.zeros(2048, 1024)
    state["foo.bar"] = torch.zeros(2)
    path = _save(setup, "unknown.pth", state)
    with pytest.raises(conv.ConversionError, match=r"3 reference keys have no counterpart \(2 of them belong to the "
                                                   r"multimodal reference models/model\.py, which is not converted\): \['pointer\.biaffine\.weight', "
                                                   r"'pic_mlp\.0\.weight', 'foo\.bar'\]; pass --allow_unmapped"):
        conv.convert(path, str(setup["encoder"]))
    _, _, report = conv.convert(path, str(setup["encoder"]), allow_unmapped=True)
    assert report.unmapped == ["pointer.biaffine.weight", "pic_mlp.0.weight", "foo.bar"]
    assert conv.main(["--checkpoint", str(path), "--encoder", str(setup["encoder"]),
                      "--out", str(setup["root"] / "unknown_out")]) == 1
    assert not (setup["root"] / "unknown_out").exists()


def test_our_parameters_without_a_reference_weight_are_listed(setup):
    state = {k: v for k, v in setup["state"].items() if k != "bce_linear.bias"}
    path = _save(setup, "missing.pth", state)
    with pytest.raises(conv.ConversionError, match=r"1 of our parameters get no reference weight.*'bce_linear\.bias'"):
        conv.convert(path, str(setup["encoder"]))
    _, _, report = conv.convert(path, str(setup["encoder"]), allow_missing=True)
    assert report.missing == ["bce_linear.bias"]


def test_pickle_only_file_is_refused_by_weights_only(setup):
    path = setup["root"] / "pickled.pth"
    torch.save({"model_state": setup["state"], "args": argparse.Namespace(lr=2e-5)}, path)
    with pytest.raises(conv.ConversionError, match=rf"--checkpoint {path}: torch\.load\(weights_only=True\) refused"):
        conv.convert(path, str(setup["encoder"]))


def test_not_a_state_dict(setup):
    path = _save(setup, "not_tensors.pth", {"plm.x": 3})
    with pytest.raises(conv.ConversionError, match=r"entry 'plm\.x' is a int, not a tensor"):
        conv.convert(path, str(setup["encoder"]))
    with pytest.raises(conv.ConversionError, match=r"--checkpoint .*nowhere\.pth: no such file"):
        conv.convert(setup["root"] / "nowhere.pth", str(setup["encoder"]))
