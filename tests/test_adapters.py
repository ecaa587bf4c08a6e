"""LoRA adapters (peft), encoder freezing, adapter folders, merging, several adapters on one base (issue 28)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import ldnet_tiny as T
import pytest
import torch
from peft import PeftModel
from transformers import AutoModel, BertConfig, DebertaV2Config, XLMRobertaConfig, pipeline

from modeling_ldnet import LDNetConfig, LDNetModel
from serving.adapters import AdapterRegistry, UnknownAdapterError, parse_adapter_flags
from trainers.adapters import (
    ADAPTER_INFO_FILE,
    AdapterArguments,
    AdapterError,
    add_lora,
    apply_adapter_arguments,
    load_adapter_model,
    lora_config,
    merge_adapter,
    merge_main,
    save_adapter_folder,
)
from trainers.cli import train_main
from trainers.trainer import LDNetTrainer, LDNetTrainingArguments

COMMON = ["--use_cpu", "--per_device_train_batch_size", "4", "--report_to", "none", "--disable_tqdm", "true",
          "--save_strategy", "no", "--dataloader_pin_memory", "false", "--learning_rate", "1e-2",
          "--head_learning_rate", "1e-2"]


def two_layer_model(proc, seed: int = 0, hidden: int = 32, extra_vocab: int = 0) -> LDNetModel:
    """A tiny 2-layer BERT LDNet with the new-model settings (score prior, log-odds gate), for the freeze tests."""
    torch.manual_seed(seed)
    enc = BertConfig(vocab_size=len(proc.tokenizer) + extra_vocab, hidden_size=hidden, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg = LDNetConfig(encoder_config=enc.to_dict(), head_dim=8, score_bias_init=-5.0, label_drop_mode="log_odds",
                      label_drop_detach=True)
    return LDNetModel(cfg)


def save_base(path: Path, proc, **kw) -> Path:
    two_layer_model(proc, **kw).save_pretrained(path)
    proc.save_pretrained(path)
    return path


def random_adapter(base: Path, out: Path, seed: int, labels: list[str]) -> Path:
    """An adapter folder with non-zero LoRA B and perturbed heads (no training needed for loading tests)."""
    model, proc = load_adapter_base(base)
    peft_model = add_lora(model, AdapterArguments(lora=True, lora_r=4), base)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    peft_model.get_base_model().config.trained_labels = {"ent": labels}
    return save_adapter_folder(peft_model, out, proc)


def load_adapter_base(base: Path):
    from trainers.loading import load_model_and_processor

    return load_model_and_processor(base, require_ldnet=True)


def logits(model, enc) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    proc = T.processor()
    base = save_base(root / "base", proc)
    data = root / "data"
    T.write_jsonl(data / "train.jsonl", T.equal_length_records(proc, 8, seed=31))
    T.write_jsonl(data / "dev.jsonl", T.make_records(4, seed=32, split="dev"))
    a = random_adapter(base, root / "ad_a", seed=1, labels=["person"])
    b = random_adapter(base, root / "ad_b", seed=2, labels=["location"])
    enc = proc(T.make_records(3, seed=5), return_tensors="pt")
    return {"root": root, "proc": proc, "base": base, "data": data, "a": a, "b": b, "enc": enc}


# ---------------------------------------------------------------------------------------------------------------
# freezing and LoRA training: frozen tensors bit-identical, trained ones changed
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["lora", "freeze_encoder", "freeze_layers"])
def test_training_keeps_frozen_tensors_bit_identical(work, mode, tmp_path):
    model, proc = load_adapter_base(work["base"])
    args = {"lora": AdapterArguments(lora=True, lora_r=4), "freeze_encoder": AdapterArguments(freeze_encoder=True),
            "freeze_layers": AdapterArguments(freeze_layers=1)}[mode]
    targs = LDNetTrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4,
                                   learning_rate=1e-2, head_learning_rate=1e-2, report_to="none", use_cpu=True,
                                   save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False)
    model = apply_adapter_arguments(model, args, work["base"], targs)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    trained = set(before) - frozen
    LDNetTrainer(model=model, args=targs, train_dataset=T.equal_length_records(proc, 8, seed=31),
                 processing_class=proc).train()
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in frozen), [n for n in frozen if not torch.equal(before[n], after[n])]
    assert [n for n in trained if torch.equal(before[n], after[n])] == []
    plain = {n.removeprefix("base_model.model.") for n in frozen}
    if mode == "lora":
        assert all(n.startswith("base_model.model.") for n in before)
        assert {"plm.embeddings.word_embeddings.weight", "score_bias", "pointer.original_module.gp.dense.weight"} <= plain
        assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trained if ".lora_" in n} == {
            "query", "key", "value", "dense"}
        assert "base_model.model.pointer.modules_to_save.default.gp.dense.weight" in trained
        assert not any("pointer" in n and "lora_" in n for n in trained)  # the head is trained in full, not adapted
    elif mode == "freeze_encoder":
        assert frozen == {n for n in before if n.startswith("plm.")}
        assert trained == {"score_bias", "pointer.gp.dense.weight", "pointer.gp.dense.bias", "bce_linear.weight",
                           "bce_linear.bias"}
    else:
        assert frozen == {n for n in before if n.startswith(("plm.embeddings.", "plm.encoder.layer.0."))}
        assert {n for n in trained if n.startswith("plm.")} == {n for n in before if n.startswith("plm.encoder.layer.1.")}


def test_ldnet_train_lora_saves_an_adapter_folder_on_a_frozen_base(work):
    out = work["root"] / "cli_lora"
    res = train_main(["--model_name_or_path", str(work["base"]), "--data_dir", str(work["data"]), "--output_dir",
                      str(out), "--max_steps", "3", "--lora", "--lora_r", "4", "--lora_target_modules",
                      "query,value", *COMMON])
    assert "eval_ent_f1" in res
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", ADAPTER_INFO_FILE, "README.md",
            "processor_config.json"} <= names
    assert "config.json" not in names and "model.safetensors" not in names  # no full copy
    info = json.loads((out / ADAPTER_INFO_FILE).read_text())
    assert info["base_model_name_or_path"] == str(work["base"].resolve())
    assert info["base"] == {"hidden_size": 32, "vocab_size": len(work["proc"].tokenizer), "encoder_model_type": "bert",
                            "num_hidden_layers": 2}
    assert info["config"]["trained_labels"] == {"ent": ["person", "organization", "location"],
                                                "rel": ["work for", "live in"]}
    card = (out / "README.md").read_text()
    assert f"`{work['base'].resolve()}`" in card and "| rank | 4 |" in card and "| dev | ent_f1 |" in card
    model, _ = load_adapter_model(out)
    base, _ = load_adapter_base(work["base"])
    base_state = base.state_dict()
    adapted = model.get_base_model()
    for name, tensor in adapted.state_dict().items():
        if "lora_" in name or "modules_to_save" in name:
            continue
        assert torch.equal(tensor, base_state[name.replace(".base_layer", "").replace(".original_module", "")]), name
    lora = {n: p for n, p in adapted.named_parameters() if "lora_" in n}
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora} == {"query", "value"}
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)  # zero at init: trained
    head = adapted.pointer.modules_to_save["default"].gp.dense.weight
    assert not torch.equal(head, base.pointer.gp.dense.weight)


def test_lora_bad_arguments(work, tmp_path):
    base = ["--model_name_or_path", str(work["base"]), "--data_dir", str(work["data"]), "--output_dir",
            str(tmp_path), "--max_steps", "1", *COMMON]
    with pytest.raises(ValueError, match=r"'qkv' not found .* its module names: dense, key, query, value"):
        train_main([*base, "--lora", "--lora_target_modules", "query,qkv"])
    with pytest.raises(ValueError, match="--lora already freezes"):
        train_main([*base, "--lora", "--freeze_encoder"])
    with pytest.raises(ValueError, match=r"--freeze_layers must be in 0\.\.2 .* got 3"):
        train_main([*base, "--freeze_layers", "3"])
    with pytest.raises(ValueError, match="--lora adapts a trained LDNet"):
        train_main([*base[:1], str(T.minilm_path()), *base[2:], "--lora"])


def test_ldnet_train_freeze_layers_saves_a_full_model_with_the_frozen_part_unchanged(work):
    out = work["root"] / "cli_freeze"
    train_main(["--model_name_or_path", str(work["base"]), "--data_dir", str(work["data"]), "--output_dir", str(out),
                "--max_steps", "2", "--freeze_layers", "1", *COMMON])
    before, after = load_adapter_base(work["base"])[0].state_dict(), LDNetModel.from_pretrained(out).state_dict()
    assert before.keys() == after.keys()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert not any(n.startswith(("plm.embeddings.", "plm.encoder.layer.0.")) for n in changed)
    assert {"pointer.gp.dense.weight", "plm.encoder.layer.1.attention.self.query.weight"} <= changed


# ---------------------------------------------------------------------------------------------------------------
# target-module defaults per encoder family
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["bert", "xlm-roberta", "deberta-v2"])
def test_target_module_defaults_per_encoder_family(family):
    common = {"vocab_size": 120, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 128}
    enc = {"bert": BertConfig(**common), "xlm-roberta": XLMRobertaConfig(**common),
           "deberta-v2": DebertaV2Config(**common, relative_attention=True, position_buckets=16,
                                         pos_att_type=["p2c", "c2p"], share_att_key=True)}[family]
    model = LDNetModel(LDNetConfig(encoder_config=enc.to_dict(), head_dim=8))
    assert lora_config(model, AdapterArguments(lora=True)).modules_to_save == ["pointer", "bce_linear"]
    peft_model = add_lora(model, AdapterArguments(lora=True, lora_r=2), "some/base")
    adapted = sorted({n.split(".lora_A")[0] for n, _ in peft_model.named_parameters() if ".lora_A." in n})
    prefix = "base_model.model.plm.encoder.layer.0."
    expected = {
        "bert": ["attention.output.dense", "attention.self.key", "attention.self.query", "attention.self.value",
                 "intermediate.dense", "output.dense"],
        "deberta-v2": ["attention.output.dense", "attention.self.key_proj", "attention.self.query_proj",
                       "attention.self.value_proj", "intermediate.dense", "output.dense"],
    }
    assert adapted == [prefix + n for n in expected["deberta-v2" if family == "deberta-v2" else "bert"]]
    assert peft_model.peft_config["default"].base_model_name_or_path == "some/base"


# ---------------------------------------------------------------------------------------------------------------
# adapter folders: loading, bad input, merge, transformers' own loaders
# ---------------------------------------------------------------------------------------------------------------


def test_adapter_on_a_mismatched_base_names_both(work, tmp_path):
    proc = work["proc"]
    wide = save_base(tmp_path / "wide", proc, hidden=48)
    with pytest.raises(AdapterError) as err:
        load_adapter_model(work["a"], wide)
    msg = str(err.value)
    assert str(work["a"]) in msg and str(work["base"].resolve()) in msg and str(wide) in msg
    assert "(hidden 32, vocab 30529)" in msg and "has hidden 48, vocab 30529" in msg
    bigger = save_base(tmp_path / "bigger", proc, extra_vocab=5)
    with pytest.raises(AdapterError, match=r"has hidden 32, vocab 30534"):
        load_adapter_model(work["a"], bigger)


def test_corrupt_adapter_files_are_named(work, tmp_path):
    import shutil

    bad = Path(shutil.copytree(work["a"], tmp_path / "bad"))
    weights = bad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdapterError, match=f"{weights}: corrupt adapter weights"):
        load_adapter_model(bad)
    shutil.copy(work["a"] / "adapter_model.safetensors", weights)
    (bad / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match=f"{bad / 'adapter_config.json'}: unreadable adapter config"):
        load_adapter_model(bad)


def test_merge_gives_a_plain_folder_with_the_same_outputs(work, tmp_path):
    peft_model, _ = load_adapter_model(work["a"])
    ref = logits(peft_model, work["enc"])
    out = merge_main(["--adapter", str(work["a"]), "--out", str(tmp_path / "merged")])
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json"} <= names and "adapter_config.json" not in names
    merged = LDNetModel.from_pretrained(out)
    assert not any("lora" in n or "modules_to_save" in n for n in merged.state_dict())
    assert torch.allclose(logits(merged, work["enc"]), ref, rtol=1e-4, atol=5e-3)
    assert merged.config.trained_labels == {"ent": ["person"]}  # the adapter's, not the base's
    assert merge_adapter(work["b"], tmp_path / "merged_b") == tmp_path / "merged_b"


def test_automodel_and_pipeline_load_an_adapter_folder(work):
    peft_model, _ = load_adapter_model(work["a"])
    ref = logits(peft_model, work["enc"])
    auto = AutoModel.from_pretrained(str(work["a"]), trust_remote_code=True)
    assert isinstance(auto, LDNetModel)  # the base's class, LoRA layers and heads injected by transformers
    assert torch.equal(logits(auto, work["enc"]), ref)
    ie = pipeline("universal-ie", model=str(work["a"]), trust_remote_code=True, device="cpu")
    assert torch.equal(logits(ie.model, work["enc"]), ref)
    text, schema = "Alice Smith works for Acme Corp .", {"ent": ["person", "organization"]}
    out = ie(text, schema=schema, threshold=1e-3)  # a random adapter: a low threshold gives some entities
    expected = pipeline("universal-ie", model=peft_model, processor=work["proc"], device="cpu")(
        text, schema=schema, threshold=1e-3)
    assert out["ent"] and out == expected


def test_adapter_folder_loads_without_the_package(work, tmp_path):
    """A fresh interpreter without this repository: the base folder's remote code + peft load the adapter."""
    peft_model, _ = load_adapter_model(work["a"])
    text, schema = "Alice Smith works for Acme Corp .", {"ent": ["person", "organization"]}
    expected = pipeline("universal-ie", model=peft_model, processor=work["proc"], device="cpu")(
        text, schema=schema, threshold=1e-3)
    child = T.isolated_python(
        f"""
        import json
        from transformers import AutoModel, pipeline
        model = AutoModel.from_pretrained({str(work["a"])!r}, trust_remote_code=True)
        ie = pipeline("universal-ie", model={str(work["a"])!r}, trust_remote_code=True, device="cpu")
        out = ie({text!r}, schema=json.loads({json.dumps(schema)!r}), threshold=1e-3)
        print(json.dumps({{"module": type(model).__module__, "lora": sum("lora_" in n for n, _ in
                          model.named_parameters()), "out": out}}))
        """,
        tmp_path,
    )
    assert child["module"].startswith("transformers_modules.")
    assert child["lora"] == sum("lora_" in n for n, _ in peft_model.named_parameters()) > 0
    T.assert_same_answers(child["out"], expected)


# ---------------------------------------------------------------------------------------------------------------
# serving: several adapters on one base
# ---------------------------------------------------------------------------------------------------------------


def test_registry_switches_adapters_on_one_base(work, tmp_path):
    import shutil

    broken = Path(shutil.copytree(work["b"], tmp_path / "broken"))
    (broken / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    reg = AdapterRegistry(work["base"], {"a": work["a"], "b": work["b"], "broken": broken})
    assert reg.names == ["a", "b"]
    assert list(reg.failed) == ["broken"] and "adapter_model.safetensors" in reg.failed["broken"]
    refs = {k: logits(load_adapter_model(work[k])[0], work["enc"]) for k in ("a", "b")}
    assert not torch.equal(refs["a"], refs["b"])
    for name in ("a", "b", "a"):  # switching back and forth on the one base
        with reg.use(name) as (model, proc):
            assert torch.equal(logits(model, work["enc"]), refs[name])
            assert model.config.trained_labels == {"ent": ["person"] if name == "a" else ["location"]}
            assert proc is not None
    with pytest.raises(UnknownAdapterError, match=r"unknown adapter 'c' \(loaded: a, b\)"):
        reg.use("c").__enter__()
    with pytest.raises(UnknownAdapterError, match=r"adapter 'broken' failed to load: .*adapter_model\.safetensors"):
        reg.use("broken").__enter__()
    info = reg.info()
    assert info["adapters"]["a"]["path"] == str(work["a"]) and info["adapters"]["a"]["rank"] == 4
    assert set(info["failed"]) == {"broken"}
    merged = AdapterRegistry(work["base"], {"a": work["a"], "b": work["b"]}, mode="merged")
    for name in ("b", "a"):
        with merged.use(name) as (model, _):
            assert not isinstance(model, PeftModel)
            assert torch.allclose(logits(model, work["enc"]), refs[name], rtol=1e-4, atol=5e-3)


# ---------------------------------------------------------------------------------------------------------------
# bench/adapters.py forgetting: the command runs end to end (tiny base, one step per mode)
# ---------------------------------------------------------------------------------------------------------------


def test_bench_forgetting_command_writes_lora_json(work, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(T.REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_adapters", T.REPO / "bench" / "adapters.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = tmp_path / "task"  # the tiny task stands in for both CoNLL04 and the base's other task
    T.write_jsonl(data / "train.jsonl", T.equal_length_records(work["proc"], 4, seed=41))
    T.write_jsonl(data / "test.jsonl", T.make_records(3, seed=42, split="test"))
    out = tmp_path / "out"
    bench.main(["forgetting", "--base", str(work["base"]), "--task", str(data), "--other", str(data), "--modes",
                "full", "lora", "--seeds", "1", "--max_steps", "1", "--batch_size", "4", "--out", str(out)])
    goals = json.loads((out / "lora.json").read_text())
    assert set(goals) == {"lora_rel_f1", "full_rel_f1", "adapter_bytes", "model_bytes", "retention_lora",
                          "retention_full"}
    result = json.loads((out / "adapters_forgetting.json").read_text())
    assert goals == result["goals"] and [(r["mode"], r["seed"]) for r in result["runs"]] == [("full", 1), ("lora", 1)]
    assert 0 < goals["adapter_bytes"] < goals["model_bytes"]
    assert (out / "runs" / "lora-s1" / "adapter_config.json").is_file()
    assert (out / "runs" / "full-s1" / "model.safetensors").is_file()


def test_registry_pipelines_run_their_own_adapter_or_the_base(work):
    reg = AdapterRegistry(work["base"], {"a": work["a"], "b": work["b"]})
    text, schema = "Alice Smith lives in Paris .", {"ent": ["person", "location"]}
    expected = {}
    for name, folder in (("a", work["a"]), ("b", work["b"]), (None, None)):
        model = load_adapter_model(folder)[0] if folder else load_adapter_base(work["base"])[0]
        expected[name] = pipeline("universal-ie", model=model, processor=work["proc"], device="cpu")(
            text, schema=schema, threshold=1e-3)
    pipes = {name: reg.pipeline(name) for name in ("a", None, "b")}
    for name in ("b", None, "a", None):  # interleaved: each call activates its own adapter (or none)
        assert pipes[name](text, schema=schema, threshold=1e-3) == expected[name], name
    assert expected["a"] != expected["b"] != expected[None]
    with pytest.raises(UnknownAdapterError, match="unknown adapter 'zz'"):
        reg.pipeline("zz")


def test_server_serves_adapters_by_request_field(work, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from serving.server import ServerSettings, build_parser, create_app

    broken = Path(shutil.copytree(work["b"], tmp_path / "broken"))
    (broken / "adapter_config.json").write_text("{")
    reg = AdapterRegistry(work["base"], {"a": work["a"], "b": work["b"], "broken": broken})
    text, schema = "Alice Smith lives in Paris .", {"ent": ["person", "location"]}
    expected = {name: reg.pipeline(name)(text, schema=schema, threshold=1e-3) for name in ("a", "b", None)}
    with TestClient(create_app(reg.pipeline(None), ServerSettings(max_wait_ms=1), adapters=reg)) as client:
        for name in ("a", None, "b"):
            body = {"text": text, "schema": schema, "threshold": 1e-3, **({"adapter": name} if name else {})}
            res = client.post("/extract", json=body)
            assert res.status_code == 200, res.text
            assert res.json()["results"] == [expected[name]], name
        res = client.post("/extract", json={"text": text, "schema": schema, "adapter": "zz"})
        assert res.status_code == 422 and "unknown adapter 'zz' (loaded: a, b)" in res.text
        res = client.post("/extract", json={"text": text, "schema": schema, "adapter": "broken"})
        assert res.status_code == 422 and "adapter 'broken' failed to load" in res.text
        info = client.get("/info").json()["adapters"]
        assert sorted(info["adapters"]) == ["a", "b"] and list(info["failed"]) == ["broken"]
    args = build_parser().parse_args([str(work["base"]), "--adapter", f"a={work['a']}", "--adapter", "b=x"])
    assert args.adapter == [f"a={work['a']}", "b=x"]


def test_parse_adapter_flags():
    assert parse_adapter_flags(["news=runs/a", " bio = runs/b "]) == {"news": "runs/a", "bio": "runs/b"}
    with pytest.raises(ValueError, match="expected name=path, got 'runs/a'"):
        parse_adapter_flags(["runs/a"])
    with pytest.raises(ValueError, match="name 'news' given twice"):
        parse_adapter_flags(["news=a", "news=b"])
