"""pipeline("universal-ie"): inputs, outputs, batching, windows, threshold, default instructions, remote-code folder."""

from __future__ import annotations

import json

import pytest
import torch
from ldnet_tiny import (
    assert_same_answers,
    isolated_python,
    scores,
    tiny_processor,
)
from ldnet_tiny import (
    decoding_model as tiny_model,
)
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from modeling_ldnet import UniversalIEPipeline, default_instruction
from modeling_ldnet.modelcard_ldnet import update_model_card
from modeling_ldnet.pipeline_ldnet import DEFAULT_INSTRUCTIONS
from modeling_ldnet.roundtrip import ans_keys, gold_logits

TEXT = "Jerry Smith lives in New York and works for Acme Corp ."
SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]}


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm, max_length=64, window_stride=8)


@pytest.fixture(scope="module")
def model(proc):
    return tiny_model(len(proc.tokenizer), max_length=64, window_stride=8)


@pytest.fixture(scope="module")
def ie(model, proc):
    return pipeline("universal-ie", model=model, processor=proc, device="cpu")


def long_record() -> dict:
    """~170 text tokens with entities spread over every window (and in the window overlaps)."""
    words, ents = [], []
    for i in range(60):
        if i % 7 == 3:
            start = len(" ".join(words)) + (1 if words else 0)
            words += ["Alice", "Brown"]
            ents.append({"type": "person", "text": "Alice Brown", "span": [start, start + 11]})
        else:
            words.append(f"word{i}")
    text = " ".join(words)
    for e in ents:
        assert text[e["span"][0] : e["span"][1]] == e["text"]
    return {"id": "long", "text": text, "schema": {"ent": ["person"]}, "ans": {"ent": ents}}


def test_registered_and_built(ie):
    assert "universal-ie" in PIPELINE_REGISTRY.get_supported_tasks()
    assert PIPELINE_REGISTRY.supported_tasks["universal-ie"]["impl"] is UniversalIEPipeline
    assert isinstance(ie, UniversalIEPipeline)
    assert ie.device.type == "cpu"
    assert ie.tokenizer is ie.processor.tokenizer


def test_single_text_unified_answers(ie):
    out = ie(TEXT, schema=SCHEMA)
    assert isinstance(out, dict) and set(out) <= {"ent", "rel"}
    assert out.get("ent") and out.get("rel"), "the scaled random model should predict something"
    for e in out["ent"]:
        assert e["type"] in SCHEMA["ent"]
        s, t = e["span"]
        assert TEXT[s:t] == e["text"] and 0.5 < e["score"] <= 1.0
    for r in out["rel"]:
        assert r["relation"] in SCHEMA["rel"]
        for side in ("head", "tail"):
            s, t = r[side]["span"]
            assert TEXT[s:t] == r[side]["text"]
        assert 0.5 < r["score"] <= 1.0
    assert "score" not in json.dumps(ie(TEXT, schema=SCHEMA, return_scores=False))


def test_matches_processor_and_model(ie, model, proc):
    enc = proc(text=[TEXT], schema=SCHEMA, instruction=default_instruction(SCHEMA), return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    expected = proc.post_process_extraction(logits, enc, return_scores=True)[0]
    assert_same_answers(ie(TEXT, schema=SCHEMA), expected)


def test_threshold_override(ie):
    n = {th: len(ans_keys(ie(TEXT, schema=SCHEMA, threshold=th))) for th in (0.05, 0.5, 0.95)}
    assert n[0.05] > n[0.5] > n[0.95]
    assert all(s > 0.95 for s in scores(ie(TEXT, schema=SCHEMA, threshold=0.95)))
    with pytest.raises(ValueError, match="threshold"):
        ie(TEXT, schema=SCHEMA, threshold=1.5)


def test_list_records_and_batch_size(ie):
    texts = [TEXT, "Tom visited Paris .", "Acme Corp hired Jerry Smith in Berlin last year ."]
    one_by_one = [ie(t, schema=SCHEMA) for t in texts]
    assert_same_answers(ie(texts, schema=SCHEMA, batch_size=1), one_by_one)
    assert_same_answers(ie(texts, schema=SCHEMA, batch_size=2), one_by_one)
    assert_same_answers(ie(texts, schema=SCHEMA, batch_size=8), one_by_one)
    # unified records carry their own schema / instruction; the call's are the defaults
    records = [{"id": f"r{i}", "text": t, "schema": SCHEMA} for i, t in enumerate(texts)]
    assert_same_answers(ie(records, batch_size=2), one_by_one)
    mixed = [texts[0], {"text": texts[1], "schema": {"ent": ["person"]}, "instruction": ""}]
    out = ie(mixed, schema=SCHEMA)
    assert_same_answers(out[0], one_by_one[0])
    assert_same_answers(out[1], ie(texts[1], schema={"ent": ["person"]}, instruction=""))
    # a generator is consumed lazily
    gen = ie((t for t in texts), schema=SCHEMA, batch_size=2)
    assert not isinstance(gen, list)
    assert_same_answers(list(gen), one_by_one)
    assert ie([], schema=SCHEMA) == []


def test_default_instructions(ie, proc):
    assert default_instruction({"ent": ["x"]}) == DEFAULT_INSTRUCTIONS["ent"]
    assert default_instruction({"rel": ["x"]}) == DEFAULT_INSTRUCTIONS["rel"]
    assert default_instruction({"ent": ["x"], "rel": ["y"]}) == DEFAULT_INSTRUCTIONS["ent+rel"]
    assert default_instruction({"event": {"attack": ["target"]}}) == DEFAULT_INSTRUCTIONS["event"]
    assert default_instruction({"cls": ["a", "b"]}) == DEFAULT_INSTRUCTIONS["cls"]
    with pytest.raises(ValueError, match="question"):
        default_instruction({})
    i_tok = proc.tokenizer.convert_tokens_to_ids(proc.special_tokens["instruction"])
    ids = ie.preprocess(TEXT, schema={"ent": ["person"]})["model_inputs"]["input_ids"][0].tolist()
    expected = proc(text=TEXT, schema={"ent": ["person"]}, instruction=DEFAULT_INSTRUCTIONS["ent"])["input_ids"][0]
    assert ids == expected and i_tok in ids
    no_inst = ie.preprocess(TEXT, schema={"ent": ["person"]}, instruction="")["model_inputs"]["input_ids"][0]
    assert i_tok not in no_inst.tolist()
    # extractive QA: empty schema, the question is the instruction
    qa = ie("Paris is the capital of France .", schema={}, instruction="What is the capital of France?")
    assert set(qa) <= {"span"}
    with pytest.raises(ValueError, match="schema"):
        ie(TEXT)


def test_long_text_windows_merged_without_duplicates(ie, proc, monkeypatch):
    rec = long_record()
    n_windows = len(ie.preprocess({k: rec[k] for k in ("id", "text", "schema")})["meta"])
    assert n_windows >= 4
    assert len(ie.preprocess(rec["text"], schema=rec["schema"], window_stride=0)["meta"]) < n_windows
    assert proc.window_stride == 8  # the call's override is undone

    # score the windows with the gold links: the pipeline must give back exactly the gold entities, once each
    def gold_forward(model_inputs, **_):
        enc = proc([{**rec, "instruction": default_instruction(rec["schema"])}], return_tensors="pt")
        assert torch.equal(enc["input_ids"], model_inputs["model_inputs"]["input_ids"])
        return {"logits": gold_logits(enc), "meta": model_inputs["meta"], "single": model_inputs["single"]}

    monkeypatch.setattr(ie, "_forward", gold_forward)
    out = ie({k: rec[k] for k in ("id", "text", "schema")})
    keys = [("ent", e["type"], tuple(e["span"])) for e in out["ent"]]
    assert len(keys) == len(set(keys))
    assert ans_keys(out) == ans_keys(rec["ans"])
    overlap_items = 0
    enc = proc([{**rec, "instruction": default_instruction(rec["schema"])}], return_tensors="pt")
    for e in rec["ans"]["ent"]:
        inside = [m for m in enc["meta"] if m.token_offsets[m.window[0]][0] <= e["span"][0]
                  and e["span"][1] <= m.token_offsets[m.window[1] - 1][1]]
        overlap_items += len(inside) > 1
    assert overlap_items >= 1, "the test text should put an entity in a window overlap"


def test_tokenizer_only_builds_processor(model, proc):
    ie2 = pipeline("universal-ie", model=model, tokenizer=proc.tokenizer, device="cpu")
    assert ie2.processor.max_length == model.config.max_seq_length
    assert ie2.processor.window_stride == model.config.window_stride
    ie1 = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    assert_same_answers(ie2(TEXT, schema=SCHEMA), ie1(TEXT, schema=SCHEMA))


def test_bad_arguments(ie):
    with pytest.raises(TypeError, match="unexpected"):
        ie(TEXT, schema=SCHEMA, treshold=0.3)
    with pytest.raises(TypeError):
        ie(42, schema=SCHEMA)


def test_saved_folder_runs_without_the_package(ie, tmp_path):
    folder = tmp_path / "ldnet-ie"
    ie.save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["custom_pipelines"]["universal-ie"]["impl"] == "pipeline_ldnet.UniversalIEPipeline"
    assert (folder / "pipeline_ldnet.py").is_file() and (folder / "processor_config.json").is_file()
    rec = long_record()
    inputs = {
        "single": TEXT,
        "list": [TEXT, "Tom visited Paris ."],
        "records": [{"id": "a", "text": rec["text"], "schema": rec["schema"]}],
    }
    expected = {
        "single": ie(TEXT, schema=SCHEMA),
        "list": ie(inputs["list"], schema=SCHEMA, batch_size=2),
        "records": ie(inputs["records"]),
        "thr": ie(TEXT, schema=SCHEMA, threshold=0.9),
    }
    child = isolated_python(
        f"""
        import json
        from transformers import pipeline
        ie = pipeline("universal-ie", model={str(folder)!r}, trust_remote_code=True, device="cpu")
        inputs = json.loads({json.dumps(inputs)!r})
        schema = json.loads({json.dumps(SCHEMA)!r})
        out = {{
            "module": type(ie).__module__,
            "single": ie(inputs["single"], schema=schema),
            "list": ie(inputs["list"], schema=schema, batch_size=2),
            "records": ie(inputs["records"]),
            "thr": ie(inputs["single"], schema=schema, threshold=0.9),
        }}
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert child["module"].startswith("transformers_modules.")
    for key, value in expected.items():
        assert_same_answers(child[key], value)


def test_card_update_keeps_the_pipeline(ie, tmp_path):
    """ldnet-train / ldnet-pretrain save, then rewrite config.json with the final metrics (update_model_card):
    the folder must still declare ``universal-ie`` and run in a process without the package."""
    folder = tmp_path / "ldnet-ie"
    ie.model.save_pretrained(folder)  # the trainer's save: model + processor, not the pipeline's save
    ie.processor.save_pretrained(folder)
    # a trainer's config object never held custom_pipelines (only the saved file does)
    config = type(ie.model.config).from_dict({k: v for k, v in ie.model.config.to_dict().items()
                                              if k != "custom_pipelines"})
    update_model_card(folder, config, ie.processor, metrics={"train_loss": 1.25})
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["custom_pipelines"]["universal-ie"]["impl"] == "pipeline_ldnet.UniversalIEPipeline"
    assert cfg["model_card_info"]["metrics"] == {"train_loss": 1.25}
    child = isolated_python(
        f"""
        import json
        from transformers import pipeline
        ie = pipeline("universal-ie", model={str(folder)!r}, trust_remote_code=True, device="cpu")
        print(json.dumps({{"module": type(ie).__module__,
                          "out": ie({TEXT!r}, schema=json.loads({json.dumps(SCHEMA)!r}))}}))
        """,
        tmp_path,
    )
    assert child["module"].startswith("transformers_modules.")
    assert_same_answers(child["out"], ie(TEXT, schema=SCHEMA))
