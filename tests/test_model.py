"""LDNetConfig / LDNetModel: shapes, equations, losses, masks, dtypes, save/load, remote code."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertConfig

from modeling_ldnet import LDNetConfig, LDNetModel, LDNetOutput
from modeling_ldnet.modeling_ldnet import MASK_VALUE, links_to_dense, multilabel_categorical_crossentropy, rope
from modeling_ldnet.span_graph import threshold_logits


def tiny_encoder(vocab: int = 120) -> BertConfig:
    return BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def tiny_model(seed: int = 0, **kw) -> LDNetModel:
    torch.manual_seed(seed)
    return LDNetModel(LDNetConfig(encoder_config=tiny_encoder(), head_dim=8, **kw)).eval()


def batch(seed: int = 0, b: int = 3, length: int = 9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (b, length), generator=g)
    mask = torch.ones(b, length, dtype=torch.long)
    for i in range(1, b):
        mask[i, length - 2 * i :] = 0
    ids = ids * mask
    return ids, mask


# ---------------------------------------------------------------------------------------------- config


def test_config_defaults_and_roundtrip(tmp_path):
    cfg = LDNetConfig(encoder_config=tiny_encoder(), head_dim=8)
    assert cfg.model_type == "ldnet" and cfg.channel_names == ["as", "a2a", "ta"]
    assert cfg.label_drop_mode == "logit" and cfg.label_drop_axis == "column" and cfg.decode_threshold == 0.5
    cfg.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["encoder_config"]["model_type"] == "bert" and saved["encoder_config"]["hidden_size"] == 32
    again = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(again, LDNetConfig) and again.encoder_config.hidden_size == 32 and again.head_dim == 8


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"label_drop_mode": "probs"}, "label_drop_mode"),
        ({"label_drop_axis": "diag"}, "label_drop_axis"),
        ({"head_dim": 7}, "head_dim"),
        ({"num_channels": 2}, "num_channels"),
        ({"label_drop_rate": 0.0}, "label_drop_rate"),
        ({"decode_threshold": 1.0}, "decode_threshold"),
        ({"distill_weight": -1.0}, "distill_weight"),
        ({"special_tokens": {"text": "[LM]"}}, "special_tokens"),
        ({"fusion_alpha": 2.0}, "fusion_alpha"),
        ({"overflow": "drop"}, "overflow"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"LDNetConfig\.{field}"):
        LDNetConfig(encoder_config=tiny_encoder(), **{"head_dim": 8, **kwargs})


def test_config_encoder_dict_needs_model_type():
    with pytest.raises(ValueError, match="model_type"):
        LDNetConfig(encoder_config={"hidden_size": 32})


# ---------------------------------------------------------------------------------------------- equations


def test_rope_matches_hand_computation_eq10():
    """3 tokens, d=4: rotate by hand with theta_m = 10000^(-2m/d) and compare the scores of eq 10."""
    torch.manual_seed(1)
    q, k = torch.randn(3, 4), torch.randn(3, 4)

    def rot(x, pos):
        out = x.clone()
        for m in range(2):
            a = pos * 10000 ** (-2 * m / 4)
            c, s = math.cos(a), math.sin(a)
            out[2 * m] = x[2 * m] * c - x[2 * m + 1] * s
            out[2 * m + 1] = x[2 * m + 1] * c + x[2 * m] * s
        return out

    hand = torch.tensor([[float(rot(q[i], i) @ rot(k[j], j)) / 2.0 for j in range(3)] for i in range(3)])
    got = (rope(q) @ rope(k).T) / math.sqrt(4)
    assert torch.allclose(got, hand, atol=1e-6)
    # relative position property: <R_i q, R_j k> == <q, R_{j-i} k>
    for i in range(3):
        for j in range(3):
            assert abs(float(rot(q[i], i) @ rot(k[j], j)) - float(q[i] @ rot(k[j], j - i))) < 1e-5


def test_pointer_equals_manual_eq9_to_11():
    m = tiny_model(use_label_drop=False)
    h = torch.randn(1, 3, 32)
    dense = m.pointer.gp.dense
    z = dense(h).view(1, 3, 3, 2, 8)
    for c in range(3):
        q, k = rope(z[0, :, c, 0]), rope(z[0, :, c, 1])
        expect = q @ k.T / math.sqrt(8)
        assert torch.allclose(m.pointer(h)[0, c], expect, atol=1e-5)


def test_mcce_equals_eq12_14_by_hand():
    s = torch.tensor([[1.5, -0.5], [0.25, -2.0]])
    g = torch.tensor([[1, 0], [0, 1]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    neg = math.log(1 + math.exp(-0.5) + math.exp(0.25))  # eq 12 over G=0 cells
    pos = math.log(1 + math.exp(-1.5) + math.exp(2.0))  # eq 13 over G=1 cells
    got = multilabel_categorical_crossentropy(s.flatten()[None], g.flatten()[None], valid.flatten()[None])
    assert got.item() == pytest.approx(neg + pos, abs=1e-6)
    # a masked cell contributes nothing
    valid[0, 1] = False
    got = multilabel_categorical_crossentropy(s.flatten()[None], g.flatten()[None], valid.flatten()[None])
    assert got.item() == pytest.approx(math.log(1 + math.exp(0.25)) + pos, abs=1e-6)


def test_full_loss_equals_hand_composition():
    m = tiny_model()
    ids, mask = batch()
    links = torch.tensor([[0, 0, 1, 2], [0, 2, 2, 1], [1, 1, 0, 3], [2, 0, 4, 4]])
    ld = torch.zeros(3, 9)
    ld[0, 1:3] = 1
    out = m(ids, mask, span_graph_links=links, label_drop_targets=ld)
    with torch.no_grad():
        h = m.plm(input_ids=ids, attention_mask=mask).last_hidden_state
        s = m.pointer(h)
        u = m.bce_linear(h).squeeze(-1)
        p = s * torch.sigmoid(u)[:, None, None, :]  # eq 16, column gating
        valid = (mask[:, :, None] * mask[:, None, :]).bool()
        g = links_to_dense(links, 3, 3, 9)
        mr = []
        for b in range(3):
            for c in range(3):
                v = valid[b]
                pv, gv = p[b, c][v], g[b, c][v].bool()
                mr.append(torch.log1p(pv[~gv].exp().sum()) + torch.log1p((-pv[gv]).exp().sum()))
        l_mr = torch.stack(mr).mean()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(u, ld, reduction="none")
        l_ld = (bce * mask).sum() / mask.sum()
    assert out.span_graph_loss.item() == pytest.approx(l_mr.item(), rel=1e-5)
    assert out.label_drop_loss.item() == pytest.approx(l_ld.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx((l_mr + l_ld).item(), rel=1e-5)


def test_dense_and_sparse_labels_give_same_loss():
    m = tiny_model()
    ids, mask = batch()
    links = torch.tensor([[0, 0, 1, 2], [1, 2, 2, 1]])
    a = m(ids, mask, span_graph_links=links).loss
    b = m(ids, mask, span_graph_labels=links_to_dense(links, 3, 3, 9)).loss
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------- forward


def test_forward_shapes_and_output_type():
    m = tiny_model()
    ids, mask = batch()
    out = m(ids, mask)
    assert isinstance(out, LDNetOutput) and out.loss is None
    assert out.logits.shape == (3, 3, 9, 9) and out.label_drop_probs.shape == (3, 9)
    assert out.last_hidden_state.shape == (3, 9, 32)
    # pad rows and columns are masked with the finite mask value
    assert torch.all(out.logits[1, :, 7:, :] == MASK_VALUE) and torch.all(out.logits[1, :, :, 7:] == MASK_VALUE)
    assert torch.all(out.logits[0] > MASK_VALUE)


def test_per_channel_label_drop_shapes():
    m = tiny_model(label_drop_per_channel=True)
    ids, mask = batch()
    out = m(ids, mask, span_graph_links=torch.tensor([[0, 0, 1, 2]]), label_drop_targets=torch.zeros(3, 9))
    assert out.label_drop_probs.shape == (3, 3, 9) and torch.isfinite(out.loss)


def test_label_drop_axis_column_vs_row():
    col, row, off = tiny_model(), tiny_model(label_drop_axis="row"), tiny_model(use_label_drop=False)
    row.load_state_dict(col.state_dict())
    off.load_state_dict({k: v for k, v in col.state_dict().items() if not k.startswith("bce_linear")})
    ids, mask = batch(b=1)
    s = off(ids, mask).logits[0]
    oc, orow = col(ids, mask), row(ids, mask)
    lhat = oc.label_drop_probs[0]
    assert torch.allclose(oc.logits[0], s * lhat[None, None, :], atol=1e-6)  # column j scaled by lhat_j
    assert torch.allclose(orow.logits[0], s * lhat[None, :, None], atol=1e-6)  # row i scaled by lhat_i


def test_gate_modes_logit_is_decision_neutral_prob_prunes():
    logit_m = tiny_model()
    prob_m = tiny_model(label_drop_mode="prob")
    prob_m.load_state_dict(logit_m.state_dict())
    off = tiny_model(use_label_drop=False)
    off.load_state_dict({k: v for k, v in logit_m.state_dict().items() if not k.startswith("bce_linear")})
    with torch.no_grad():
        logit_m.bce_linear.bias.fill_(-1.0)  # lhat < 0.5 everywhere -> prob mode can never link
        prob_m.bce_linear.bias.fill_(-1.0)
        logit_m.bce_linear.weight.zero_()
        prob_m.bce_linear.weight.zero_()
    ids, mask = batch(b=1)
    s = off(ids, mask).logits
    gl, gp = logit_m(ids, mask).logits, prob_m(ids, mask).logits
    assert torch.equal(gl > 0, s > 0)  # SPEC §4.4: sign(S * lhat) == sign(S)
    lhat = torch.sigmoid(torch.tensor(-1.0))
    expect = torch.sigmoid(s) * lhat
    assert torch.allclose(torch.sigmoid(gp), expect.clamp(1e-7, 1 - 1e-7), atol=1e-5)
    assert not torch.any(torch.sigmoid(gp) > 0.5)
    # loss in prob mode is computed on the gated logits S * lhat (same as logit mode)
    links = torch.tensor([[0, 0, 1, 2]])
    assert logit_m(ids, mask, span_graph_links=links).loss.item() == pytest.approx(
        prob_m(ids, mask, span_graph_links=links).loss.item(), rel=1e-6
    )


@pytest.mark.parametrize("kw", [{}, {"label_drop_mode": "prob"}, {"use_label_drop": False},
                                {"label_drop_per_channel": True}, {"label_drop_axis": "row"},
                                {"label_drop_mode": "log_odds", "label_drop_detach": True, "score_bias_init": -5.0},
                                {"label_drop_mode": "log_odds", "label_drop_axis": "both"}])
def test_in_place_inference_equals_autograd_forward(kw):
    """Without targets and autograd the gate and mask run in place: the logits must be bit-identical."""
    m = tiny_model(**kw)
    ids, mask = batch()
    ref = m(ids, mask).logits  # grad enabled -> out-of-place path
    assert ref.requires_grad
    with torch.no_grad():
        ng = m(ids, mask).logits
    with torch.inference_mode():
        im = m(ids, mask).logits
    assert torch.equal(ng, ref.detach()) and torch.equal(im, ref.detach())
    # with targets under no_grad (Trainer's evaluation) the loss still sees the un-masked gated grid
    links = torch.tensor([[0, 0, 1, 2], [1, 1, 2, 3]])
    with torch.no_grad():
        out = m(ids, mask, span_graph_links=links)
    assert torch.equal(out.logits, ref.detach())
    assert out.loss.item() == pytest.approx(m(ids, mask, span_graph_links=links).loss.item(), rel=1e-6)


def test_label_drop_rate_gates_only_sampled_rows_in_training():
    m = tiny_model(label_drop_rate=0.5)
    off = tiny_model(use_label_drop=False)
    off.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("bce_linear")})
    ids, mask = torch.randint(5, 120, (1, 10)), torch.ones(1, 10, dtype=torch.long)
    s = off(ids, mask).logits[0]
    m.train()
    torch.manual_seed(3)
    out = m(ids, mask)
    lhat = out.label_drop_probs[0]
    gated_rows = [i for i in range(10) if torch.allclose(out.logits[0][:, i], s[:, i] * lhat[None, :], atol=1e-6)]
    ungated_rows = [i for i in range(10) if torch.allclose(out.logits[0][:, i], s[:, i], atol=1e-6)]
    assert len(gated_rows) == 5 and len(ungated_rows) == 5
    m.eval()  # at inference every row is gated
    assert torch.allclose(m(ids, mask).logits[0], s * lhat[None, None, :], atol=1e-6)


def test_only_mr_ablation_has_no_gate_and_no_bce():
    m = tiny_model(use_label_drop=False)
    ids, mask = batch()
    out = m(ids, mask, span_graph_links=torch.tensor([[0, 0, 1, 2]]), label_drop_targets=torch.ones(3, 9))
    assert m.bce_linear is None and out.label_drop_probs is None and out.label_drop_loss is None
    assert out.loss.item() == pytest.approx(out.span_graph_loss.item())


def test_padded_batch_equals_each_example_alone():
    m = tiny_model()
    ids, mask = batch()
    full = m(ids, mask)
    for b in range(3):
        n = int(mask[b].sum())
        alone = m(ids[b : b + 1, :n], mask[b : b + 1, :n])
        assert torch.allclose(full.logits[b, :, :n, :n], alone.logits[0], atol=1e-5)
        assert torch.allclose(full.label_drop_probs[b, :n], alone.label_drop_probs[0], atol=1e-5)


def test_every_parameter_receives_a_gradient():
    m = tiny_model().train()
    ids, mask = batch()
    out = m(ids, mask, span_graph_links=torch.tensor([[0, 0, 1, 2], [1, 1, 3, 2]]), label_drop_targets=torch.ones(3, 9))
    out.loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_toy_batch_is_memorised_and_decodes_to_gold():
    torch.manual_seed(0)
    m = tiny_model().train()
    ids, mask = batch(b=2, length=8)
    links = torch.tensor(
        [[0, 0, 1, 3], [0, 0, 3, 4], [0, 1, 1, 3], [0, 2, 4, 1], [1, 0, 2, 2], [1, 1, 2, 2], [1, 2, 2, 2], [1, 0, 0, 5]]
    )
    ld = torch.zeros(2, 8)
    ld[0, [1, 3, 4]] = 1
    ld[1, [0, 2, 5]] = 1
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for step in range(200):
        loss = m(ids, mask, span_graph_links=links, label_drop_targets=ld).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    out = m(ids, mask, span_graph_links=links, label_drop_targets=ld)
    assert out.loss.item() < 0.1 * first
    y = threshold_logits(out.logits, mask.sum(-1).tolist(), 0.5, max_links_per_row=None)
    gold = links_to_dense(links, 2, 3, 8).numpy().astype(bool)
    gold &= (mask[:, None, :, None] * mask[:, None, None, :]).bool().numpy()
    assert np.array_equal(y, gold)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_has_no_nan_and_keeps_masks(dtype):
    m = tiny_model().to(dtype)
    ids, mask = batch()
    out = m(ids, mask, span_graph_links=torch.tensor([[0, 0, 1, 2]]), label_drop_targets=torch.ones(3, 9))
    assert out.logits.dtype == dtype
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    assert torch.all(out.logits[2, :, 5:, :] == MASK_VALUE) and torch.all(out.logits[2, :, :, 5:] == MASK_VALUE)
    assert torch.sigmoid(out.logits.float())[2, :, 5:, :].max() == 0
    prob = tiny_model(label_drop_mode="prob").to(dtype)(ids, mask).logits
    assert torch.isfinite(prob).all()


# ---------------------------------------------------------------------------------------------- save / load


def test_save_load_identical_and_safetensors_only(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert {"configuration_ldnet.py", "modeling_ldnet.py"} <= set(files)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["auto_map"]["AutoModel"].endswith("modeling_ldnet.LDNetModel")
    assert cfg["auto_map"]["AutoConfig"].endswith("configuration_ldnet.LDNetConfig")
    ids, mask = batch()
    again = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(again, LDNetModel)
    assert torch.equal(m(ids, mask).logits, again(ids, mask).logits)


def isolated_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter that cannot import the repo's packages (not on sys.path, editable finder
    removed), so only the files in a saved folder can provide LDNet (trust_remote_code)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prelude = textwrap.dedent(
        f"""
        import sys
        import os
        sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != {repo!r}]
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in (str(getattr(f, "__module__", "")) + type(f).__module__).lower()]
        for name in list(sys.modules):
            if name.startswith(("modeling_ldnet", "processing", "trainers")):
                del sys.modules[name]
        try:
            import modeling_ldnet
            raise SystemExit("modeling_ldnet must not be importable here")
        except ImportError:
            pass
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "hf_modules"))
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_fresh_process_loads_with_trust_remote_code(tmp_path):
    m = tiny_model()
    folder = tmp_path / "model"
    m.save_pretrained(folder)
    ids, mask = batch()
    torch.save({"ids": ids, "mask": mask}, tmp_path / "inputs.pt")
    expected = m(ids, mask).logits
    code = f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__name__ == "LDNetModel", type(model)
        assert "transformers_modules" in type(model).__module__, type(model).__module__
        x = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.no_grad():
            torch.save(model(x["ids"], x["mask"]).logits, {str(tmp_path / "out.pt")!r})
    """
    proc = isolated_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)


def test_real_minilm_wraps_offline(minilm):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    m = LDNetModel.from_encoder(str(minilm)).eval()
    ref = AutoModel.from_pretrained(minilm).eval()
    assert m.config.encoder_config.hidden_size == 384 and m.config.encoder_name_or_path == str(minilm)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.allclose(m(ids, mask).last_hidden_state, ref(ids, attention_mask=mask).last_hidden_state)
        out = m(ids, mask)
    assert out.logits.shape == (1, 3, 4, 4) and torch.isfinite(out.logits).all()


# ---------------------------------------------------------------------------------------------- issue #14 forms


def test_log_odds_gate_adds_log_lhat_and_prunes_dropped_tokens():
    lo = tiny_model(label_drop_mode="log_odds")
    both = tiny_model(label_drop_mode="log_odds", label_drop_axis="both")
    both.load_state_dict(lo.state_dict())
    off = tiny_model(use_label_drop=False)
    off.load_state_dict({k: v for k, v in lo.state_dict().items() if not k.startswith("bce_linear")})
    ids, mask = batch(b=1)
    s = off(ids, mask).logits[0]
    out = lo(ids, mask)
    u = torch.logit(out.label_drop_probs[0].double()).float()
    log_l = torch.nn.functional.logsigmoid(u)
    assert torch.allclose(out.logits[0], s + log_l[None, None, :], atol=1e-5)  # P = S + log lhat_j
    assert torch.allclose(both(ids, mask).logits[0], s + log_l[None, None, :] + log_l[None, :, None], atol=1e-5)
    # a confidently dropped column loses every link, whatever its score (unlike the logit gate)
    with torch.no_grad():
        lo.bce_linear.weight.zero_()
        lo.bce_linear.bias.fill_(-50.0)
    assert not torch.any(lo(ids, mask).logits > 0)


def test_label_drop_detach_stops_span_graph_gradient_at_the_gate():
    ids, mask = batch(b=2)
    links = torch.tensor([[0, 0, 1, 2], [1, 2, 2, 1]])
    for mode in ("logit", "log_odds"):
        m = tiny_model(label_drop_mode=mode, label_drop_detach=True).train()
        m(ids, mask, span_graph_links=links).loss.backward()  # L_MR only: no label-drop targets
        assert m.bce_linear.weight.grad is None or torch.all(m.bce_linear.weight.grad == 0)
        m.zero_grad()
        m(ids, mask, span_graph_links=links, label_drop_targets=torch.ones(2, 9)).loss.backward()
        assert torch.any(m.bce_linear.weight.grad != 0)  # L_LD still trains the gate
        free = tiny_model(label_drop_mode=mode).train()
        free(ids, mask, span_graph_links=links).loss.backward()
        assert torch.any(free.bce_linear.weight.grad != 0)


def test_score_bias_is_a_learnable_per_channel_prior():
    m = tiny_model(score_bias_init=-3.0, use_label_drop=False)
    ref = tiny_model(use_label_drop=False)
    ref.load_state_dict({k: v for k, v in m.state_dict().items() if k != "score_bias"})
    assert torch.equal(m.score_bias.data, torch.full((3,), -3.0))
    ids, mask = batch(b=1)
    assert torch.allclose(m(ids, mask).logits, ref(ids, mask).logits - 3.0, atol=1e-6)
    m.train()
    m(ids, mask, span_graph_links=torch.tensor([[0, 0, 1, 2]])).loss.backward()
    assert m.score_bias.grad is not None and m.score_bias.grad.shape == (3,)
    # a folder saved before the bias existed (config without it) loads without one
    assert LDNetConfig(encoder_config=tiny_encoder()).score_bias_init is None and ref.score_bias is None


def test_new_model_defaults_apply_to_from_encoder_only(minilm):
    from modeling_ldnet.configuration_ldnet import NEW_MODEL_DEFAULTS

    assert NEW_MODEL_DEFAULTS == {"score_bias_init": -5.0, "label_drop_mode": "log_odds", "label_drop_detach": True}
    m = LDNetModel.from_encoder(str(minilm))
    for k, v in NEW_MODEL_DEFAULTS.items():
        assert getattr(m.config, k) == v
    assert torch.equal(m.score_bias.data, torch.full((3,), -5.0))
    m2 = LDNetModel.from_encoder(str(minilm), label_drop_mode="prob", score_bias_init=None)
    assert m2.config.label_drop_mode == "prob" and m2.score_bias is None
    plain = LDNetConfig(encoder_config=tiny_encoder())  # the paper / reference-code forms stay the class defaults
    assert (plain.label_drop_mode, plain.label_drop_detach, plain.score_bias_init) == ("logit", False, None)


def test_named_losses_match_the_model():
    from modeling_ldnet.loss_ldnet import label_drop_loss, span_graph_loss

    m = tiny_model()
    ids, mask = batch()
    links = torch.tensor([[0, 0, 1, 2], [1, 1, 0, 3]])
    ld = torch.zeros(3, 9)
    ld[0, 2] = 1
    out = m(ids, mask, span_graph_links=links, label_drop_targets=ld)
    with torch.no_grad():
        h = m.plm(input_ids=ids, attention_mask=mask).last_hidden_state
        u = m.bce_linear(h).squeeze(-1)
        gated = m.pointer(h) * torch.sigmoid(u)[:, None, None, :]
        valid = (mask[:, None, :, None] * mask[:, None, None, :]).bool()
        g = links_to_dense(links, 3, 3, 9)
    assert torch.allclose(out.span_graph_loss, span_graph_loss(gated, g, valid), atol=1e-6)
    assert torch.allclose(out.label_drop_loss, label_drop_loss(u, ld, mask.bool()), atol=1e-6)
    assert torch.allclose(span_graph_loss(gated, g, valid, "sum"), span_graph_loss(gated, g, valid) * 3, atol=1e-5)


def test_per_channel_thresholds():
    x = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    t = [0.4, 0.8, 0.8]  # logits: -0.405, 1.386, 1.386
    y = threshold_logits(x, [2], t)
    assert y[0, 0].all() and not y[0, 1].any() and y[0, 2].all()
    assert threshold_logits(x, [2], 0.5)[0, 1].all()
    with pytest.raises(ValueError, match="per-channel"):
        threshold_logits(x, [2], [0.5, 0.5])
    with pytest.raises(ValueError, match="decode_channel_thresholds"):
        LDNetConfig(encoder_config=tiny_encoder(), decode_channel_thresholds=[0.5, 1.0, 0.5])
