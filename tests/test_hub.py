"""Hub round trip: a saved folder laid out as the Hub serves it loads in a fresh process without this package
(AutoConfig / AutoModel / AutoProcessor with trust_remote_code, and the pipeline), also after push_to_hub to a
local stand-in of the Hub HTTP API; model card contents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from _hubstub import LocalHub
from ldnet_tiny import (
    assert_same_answers,
    isolated_python,
    tiny_processor,
    tiny_vision_kwargs,
)
from ldnet_tiny import (
    decoding_model as tiny_model,
)
from transformers import pipeline

from modeling_ldnet import render_model_card, write_model_card
from modeling_ldnet.modelcard_ldnet import CARD_MARKER

TEXTS = ["Jerry Smith lives in New York and works for Acme Corp .", "Tom visited Paris ."]
SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]}
INSTRUCTION = "Please identify the entities and their relations."
CARD = {
    "schema": {"conll04": {"ent": ["person", "location"], "rel": ["live in", "work for"]}},
    "training_data": [{"name": "conll04", "split": "train", "records": 922}, "ace05"],
    "metrics": {"conll04": {"ent_f1": 0.9012, "rel_f1": 0.75}},
    "repo_id": "tester/ldnet-tiny",
    "license": "apache-2.0",
}
CODE_FILES = {"configuration_ldnet.py", "modeling_ldnet.py", "processing_ldnet.py", "pipeline_ldnet.py",
              "vision_ldnet.py", "modelcard_ldnet.py", "schema.py", "span_graph.py"}

CHILD = """
import json, torch
from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline
TEXTS, SCHEMA, INSTRUCTION = json.loads({args!r})
saved, summary = {{}}, {{}}

def run(src, tag):
    cfg = AutoConfig.from_pretrained(src, trust_remote_code=True)
    model = AutoModel.from_pretrained(src, trust_remote_code=True).eval()
    proc = AutoProcessor.from_pretrained(src, trust_remote_code=True)
    enc = proc(text=TEXTS, schema=SCHEMA, instruction=INSTRUCTION, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    ie = pipeline("universal-ie", model=src, trust_remote_code=True, device="cpu")
    saved[tag] = {{"input_ids": enc["input_ids"], "logits": logits}}
    summary[tag] = {{
        "classes": [type(x).__module__ + "." + type(x).__name__ for x in (cfg, model, proc, ie)],
        "answers": proc.post_process_extraction(logits, enc, return_scores=True),
        "pipeline": ie(TEXTS, schema=SCHEMA, instruction=INSTRUCTION, batch_size=2),
    }}
    return ie

ie = run({folder!r}, "folder")

mm = AutoModel.from_pretrained({mm_folder!r}, trust_remote_code=True).eval()
mm_in = torch.load({mm_inputs!r})
with torch.no_grad():
    saved["mm"] = mm(**mm_in).logits
summary["mm_vit_frozen"] = not any(p.requires_grad for p in mm.vision.vit.parameters())

if {hub!r}:
    ie.push_to_hub("tester/ldnet-tiny")  # through the pipeline loaded from the folder (remote code)
    run("tester/ldnet-tiny", "hub")

torch.save(saved, "child.pt")
print(json.dumps(summary))
"""


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm)


@pytest.fixture(scope="module")
def model(proc):
    return tiny_model(len(proc.tokenizer))


def check_layout(files: set[str], config: dict, processor_config: dict, readme: str) -> None:
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "processor_config.json",
            "README.md"} <= files
    assert CODE_FILES <= files, CODE_FILES - files
    assert config["auto_map"] == {"AutoConfig": "configuration_ldnet.LDNetConfig", "AutoModel": "modeling_ldnet.LDNetModel"}
    assert config["custom_pipelines"]["universal-ie"]["impl"] == "pipeline_ldnet.UniversalIEPipeline"
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_ldnet.LDNetProcessor"}
    assert readme.startswith("---\n") and CARD_MARKER in readme


def test_round_trip_without_the_package_and_local_hub(model, proc, minilm, tmp_path):
    folder, mm_folder = tmp_path / "ldnet-tiny", tmp_path / "ldnet-tiny-mm"
    model.save_pretrained(folder, model_card=CARD)
    proc.save_pretrained(folder)
    files = {p.name for p in folder.iterdir()}
    check_layout(files, json.loads((folder / "config.json").read_text()),
                 json.loads((folder / "processor_config.json").read_text()), (folder / "README.md").read_text())

    mm_proc = tiny_processor(minilm, image=True)
    mm = tiny_model(len(mm_proc.tokenizer), **tiny_vision_kwargs())
    mm.save_pretrained(mm_folder)
    mm_proc.save_pretrained(mm_folder)
    rng = np.random.default_rng(0)
    img = (rng.random((40, 40, 3)) * 255).astype("uint8")
    mm_enc = mm_proc(text=TEXTS, schema=SCHEMA, images=[img, None], return_tensors="pt")
    mm_in = {k: mm_enc[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_mask")}
    torch.save(mm_in, tmp_path / "mm_inputs.pt")

    enc = proc(text=TEXTS, schema=SCHEMA, instruction=INSTRUCTION, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        mm_logits = mm(**mm_in).logits
    answers = proc.post_process_extraction(logits, enc, return_scores=True)
    assert answers[0], "the tiny model should predict something"
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    piped = ie(TEXTS, schema=SCHEMA, instruction=INSTRUCTION, batch_size=2)

    with LocalHub(lifetime=240) as hub:
        code = CHILD.format(args=json.dumps([TEXTS, SCHEMA, INSTRUCTION]), folder=str(folder),
                            mm_folder=str(mm_folder), mm_inputs=str(tmp_path / "mm_inputs.pt"), hub=True)
        summary = isolated_python(code, tmp_path, extra_env={
            "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_TOKEN": "hf_local_test",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1",
        })
        served = hub.files("tester/ldnet-tiny")
    check_layout(set(served), json.loads(served["config.json"]), json.loads(served["processor_config.json"]),
                 served["README.md"].decode())
    assert "conll04" in served["README.md"].decode()  # our card was pushed, not the stock template

    saved = torch.load(tmp_path / "child.pt")
    for tag in ("folder", "hub"):
        classes = summary[tag]["classes"]
        assert all(c.startswith("transformers_modules.") for c in classes), classes
        assert [c.rsplit(".", 1)[1] for c in classes] == ["LDNetConfig", "LDNetModel", "LDNetProcessor",
                                                          "UniversalIEPipeline"]
        assert torch.equal(saved[tag]["input_ids"], enc["input_ids"])
        torch.testing.assert_close(saved[tag]["logits"], logits, atol=1e-6, rtol=0)
        assert_same_answers(summary[tag]["answers"], answers)
        assert_same_answers(summary[tag]["pipeline"], piped)
    torch.testing.assert_close(saved["mm"], mm_logits, atol=1e-6, rtol=0)
    assert summary["mm_vit_frozen"]


def test_model_card(model, proc, tmp_path):
    text = render_model_card(model.config, proc, **CARD)
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "transformers" and front["license"] == "apache-2.0"
    assert {"ldnet", "information-extraction", "custom_code"} <= set(front["tags"])
    assert front["datasets"] == ["conll04", "ace05"]
    for needle in ("## Schema", "`live in`", "## Training data", "`conll04` (split: train, records: 922)",
                   "## Metrics", "| conll04 | 0.90 | 0.75 |", "## Usage",
                   'pipeline("universal-ie", model="tester/ldnet-tiny", trust_remote_code=True)', "## Configuration", "max sequence length",
                   "BertTokenizer", "arXiv:2502.12614"):
        assert needle in text, needle
    # defaults when nothing is recorded; multimodal usage shown for a multimodal config
    bare = render_model_card(tiny_model(len(proc.tokenizer), **tiny_vision_kwargs()).config)
    assert bare.count("Not recorded") == 3 and '"image": "photo.jpg"' in bare and "image fusion" in bare

    # a README written by a person is kept; ours is refreshed; model_card=False writes none
    (tmp_path / "README.md").write_text("# my own card\n")
    assert write_model_card(tmp_path, model=model) is None
    assert (tmp_path / "README.md").read_text() == "# my own card\n"
    model.save_pretrained(tmp_path / "a", model_card=False)
    assert not (tmp_path / "a" / "README.md").exists()
    model.save_pretrained(tmp_path / "b")
    model.save_pretrained(tmp_path / "b", model_card={"metrics": {"f1": 0.5}})
    assert "| - | 0.50 |" in (tmp_path / "b" / "README.md").read_text()
