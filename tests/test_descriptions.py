"""Label descriptions (``{"ent": {"disease": "a disorder ..."}}``) and the labels a model knows (``trained_labels``):
normalisation, exact encodings, decoding, label groups, the Arrow round trip, the pipeline's warning, the trainer."""

from __future__ import annotations

import logging

import ldnet_tiny as T
import pytest
import torch
from datasets import Dataset, Features, List, Value
from transformers import pipeline

from modeling_ldnet import LDNetConfig, RecordError
from modeling_ldnet.roundtrip import gold_logits
from modeling_ldnet.schema import normalize_record, normalize_schema, validate_record
from processing import UNIFIED_FEATURES, load_unified, to_arrow_record, to_spec_record, write_unified
from trainers import LDNetTrainer, LDNetTrainingArguments, tokenize_dataset
from trainers.trainer import merge_labels, training_labels

TEXT = "Tom has flu in Paris ."
DISEASE = "a disorder of the body or mind"
DESCRIBED = {"ent": {"disease": DISEASE, "person": None}, "rel": {"has": "someone suffers from something"}}


def described_record(**kw) -> dict:
    rec = {"id": "d1", "instruction": "", "schema": DESCRIBED, "text": TEXT, "bg": "",
           "ans": {"ent": [{"type": "disease", "text": "flu", "span": [8, 11]},
                           {"type": "person", "text": "Tom", "span": [0, 3]}],
                   "rel": [{"relation": "has", "head": {"text": "Tom", "span": [0, 3]},
                            "tail": {"text": "flu", "span": [8, 11]}}]}}
    rec.update(kw)
    return rec


@pytest.fixture(scope="module")
def proc():
    return T.processor(max_length=64)


# ------------------------------------------------------------------------------------------------ normalisation


def test_normalised_record_keeps_label_order_and_carries_descriptions():
    out = normalize_record(described_record())
    assert out["schema"] == {"ent": ["disease", "person"], "rel": ["has"]}
    assert out["descriptions"] == [
        {"task": "ent", "label": "disease", "description": DISEASE},
        {"task": "rel", "label": "has", "description": "someone suffers from something"},
    ]
    # the list forms (top level = SPEC form, schema.descriptions = Arrow form) read to the same record
    listed = described_record(schema={"ent": ["disease", "person"], "rel": ["has"]}, descriptions=out["descriptions"])
    assert normalize_record(listed) == out
    arrow = described_record(schema={"ent": ["disease", "person"], "rel": ["has"], "descriptions": out["descriptions"]})
    assert normalize_record(arrow) == out
    # bare labels only: no descriptions key at all (records without descriptions are unchanged)
    bare = normalize_record(described_record(schema={"ent": {"disease": None, "person": None}}, ans={}))
    assert bare == normalize_record(described_record(schema={"ent": ["disease", "person"]}, ans={}))
    assert "descriptions" not in bare


def test_description_of_a_label_not_in_the_schema_is_not_part_of_the_record():
    rec = described_record(schema={"ent": ["person"]}, ans={},
                           descriptions=[{"task": "ent", "label": "disease", "description": DISEASE}])
    assert "descriptions" not in normalize_record(rec)


@pytest.mark.parametrize(
    "schema, extra, field, fragment",
    [
        ({"ent": {"disease": ""}}, None, "schema.ent['disease']", "empty description of label 'disease'"),
        ({"ent": {"disease": "  "}}, None, "schema.ent['disease']", "empty description"),
        ({"ent": {"disease": 5}}, None, "schema.ent['disease']", "must be a string (or None"),
        ({"ent": {"disease": ["x"]}}, None, "schema.ent['disease']", "got list"),
        ({"ent": {"d": "a\x00b"}}, None, "schema.ent['d']", "NUL"),
        ({"ent": "disease"}, None, "schema.ent", "or a {label: description} dict"),
        ({"ent": {"disease": "x"}}, [{"task": "ent", "label": "disease", "description": "y"}], "descriptions",
         "two different descriptions"),
        ({"event": {"e": []}}, [{"task": "event", "label": "e", "description": "y"}], "descriptions[0].task",
         "may carry descriptions"),
        ({"ent": ["d"]}, [{"label": "d"}], "descriptions[0]", "expected {'task', 'label', 'description'}"),
        ({"ent": ["d"]}, "d: x", "descriptions", "expected a list"),
    ],
)
def test_bad_descriptions_name_record_and_field(schema, extra, field, fragment):
    rec = {"id": "b7", "text": "x", "schema": schema}
    if extra is not None:
        rec["descriptions"] = extra
    with pytest.raises(RecordError) as err:
        validate_record(rec)
    assert (err.value.record_id, err.value.field) == ("b7", field)
    assert fragment in str(err.value)


def test_normalize_schema_is_the_shared_entry_point():
    schema, desc = normalize_schema({"ent": {"person": "a human being", "city": None}})
    assert schema == {"ent": ["person", "city"]}
    assert desc == [{"task": "ent", "label": "person", "description": "a human being"}]


# ------------------------------------------------------------------------------------------------ encoding


def test_described_schema_token_ids_exactly(proc):
    tok = proc.tokenizer
    enc = proc(described_record(), return_tensors="pt")

    def ids(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    lm, lr, tl = (tok.convert_tokens_to_ids(t) for t in ("[LM]", "[LR]", "[TL]"))
    colon = ids(":")
    expected = ([tok.cls_token_id, lm] + ids("disease") + colon + ids(DISEASE) + [lm] + ids("person")
                + [lr] + ids("has") + colon + ids("someone suffers from something") + [tl] + ids(TEXT)
                + [tok.sep_token_id])
    assert enc["input_ids"][0].tolist() == expected
    assert tok.convert_ids_to_tokens(expected)[:12] == [
        "[CLS]", "[LM]", "disease", ":", "a", "disorder", "of", "the", "body", "or", "mind", "[LM]"]
    meta = enc["meta"][0]
    # the label nodes stay the tags; description tokens are neither nodes nor label-drop targets
    assert meta.label_positions == {"ent": {"disease": 1, "person": 11}, "rel": {"has": 13}}
    assert sorted(meta.tags) == [1, 11, 13] and meta.text_offset == 21  # tom=21, flu=23
    # SPEC §3 chains: disease -> flu, person -> Tom, has -> Tom -> flu (NNW, NSW), closed by THW to the tag
    assert enc["span_graph_links"].tolist() == [
        [0, 0, 1, 23], [0, 0, 11, 21], [0, 0, 13, 21], [0, 0, 21, 23], [0, 1, 1, 23], [0, 1, 11, 21],
        [0, 1, 13, 21], [0, 1, 21, 23], [0, 2, 21, 11], [0, 2, 23, 1], [0, 2, 23, 13]]
    assert torch.nonzero(enc["label_drop_targets"][0]).flatten().tolist() == [1, 11, 13, 21, 23]
    rep = enc["encoding_report"]
    assert (rep.described_labels, rep.descriptions_cut, rep.encoded) == (2, 0, 3)


def test_long_description_is_cut_and_counted(minilm):
    proc = T.processor(max_length=64, max_description_tokens=3)
    tok = proc.tokenizer
    enc = proc(described_record(), return_tensors="pt")
    toks = tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert toks[:9] == ["[CLS]", "[LM]", "disease", ":", "a", "disorder", "of", "[LM]", "person"]
    assert toks[9:14] == ["[LR]", "has", ":", "someone", "suffers"]
    rep = enc["encoding_report"]
    assert (rep.described_labels, rep.descriptions_cut) == (2, 2)
    assert "label descriptions cut to max_description_tokens: 2 of 2" in str(rep)
    with pytest.raises(ValueError, match="max_description_tokens must be >= 1"):
        T.processor(max_description_tokens=0)


def test_description_tokens_never_become_answer_endpoints(proc):
    rec = described_record()
    enc = proc(rec, return_tensors="pt")
    gold = proc.post_process_extraction(gold_logits(enc), enc)
    logits = gold_logits(enc)
    desc = list(range(3, 11)) + list(range(15, 20))  # ": a disorder ..." and ": someone suffers from something"
    assert enc["input_ids"][0, 3] == enc["input_ids"][0, 15] == proc.tokenizer.convert_tokens_to_ids(":")
    for c in range(3):  # every channel, both directions, between description tokens, tags and text tokens
        for d in desc:
            logits[0, c, d, :] = 10.0
            logits[0, c, :, d] = 10.0
    assert proc.post_process_extraction(logits, enc) == gold
    assert {(e["type"], e["text"]) for e in gold[0]["ent"]} == {("disease", "flu"), ("person", "Tom")}


def test_label_groups_keep_each_label_with_its_description(minilm):
    proc = T.processor(max_length=64, window_stride=8)
    labels = {f"kind {i}": (f"the sort of thing number {i}" if i % 2 else None) for i in range(12)}
    text = " ".join(f"word{i} kind" for i in range(40))
    enc = proc({"id": "big", "text": text, "schema": {"ent": labels}, "instruction": ""}, return_tensors="pt")
    rep = enc["encoding_report"]
    assert rep.split_records == 1 and rep.schema_passes > 1
    assert rep.described_labels == 6  # each described label is encoded once: in its own group
    tok = proc.tokenizer
    seen = set()
    for b, meta in enumerate(enc["meta"]):
        ids = enc["input_ids"][b].tolist()
        assert meta.length <= 64
        for pos, info in meta.tags.items():
            label_ids = tok(info.string, add_special_tokens=False)["input_ids"]
            after = ids[pos + 1 + len(label_ids):]
            want = labels[info.string]
            if want is not None:
                tail = tok(":", add_special_tokens=False)["input_ids"] + tok(want, add_special_tokens=False)["input_ids"]
                assert after[: len(tail)] == tail, info.string
            seen.add(info.string)
    assert seen == set(labels)


# ------------------------------------------------------------------------------------------------ Arrow round trip


def test_descriptions_round_trip_through_the_arrow_features(tmp_path):
    canon = normalize_record(described_record())
    row = to_arrow_record(described_record())  # the dict form is read too: nothing dropped
    assert row["schema"]["descriptions"] == canon["descriptions"]
    ds = Dataset.from_list([row, to_arrow_record(described_record(id="d2", schema={"ent": ["person"]}, ans={}))],
                           features=UNIFIED_FEATURES)
    back = [to_spec_record(r) for r in ds]
    assert normalize_record(back[0]) == canon and back[0]["descriptions"] == canon["descriptions"]
    assert "descriptions" not in back[1]
    from datasets import DatasetDict

    for fmt in ("jsonl", "parquet"):
        write_unified(DatasetDict({"train": ds}), tmp_path / fmt, fmt=fmt)
        loaded = load_unified(tmp_path / fmt)["train"]
        assert [normalize_record(to_spec_record(r)) for r in loaded] == [normalize_record(r) for r in back]


def test_rows_written_before_descriptions_existed_still_cast():
    old_schema = {k: v for k, v in UNIFIED_FEATURES["schema"].items() if k != "descriptions"}
    old = Features({**UNIFIED_FEATURES, "schema": old_schema})
    row = to_arrow_record(described_record(schema={"ent": ["person"]}, ans={}))
    del row["schema"]["descriptions"]
    ds = Dataset.from_list([row], features=old).cast(UNIFIED_FEATURES)
    assert ds[0]["schema"]["descriptions"] is None
    assert "descriptions" not in normalize_record(ds[0]) and "descriptions" not in to_spec_record(ds[0])
    assert normalize_record(to_spec_record(ds[0]))["schema"] == {"ent": ["person"]}
    assert isinstance(UNIFIED_FEATURES["schema"]["descriptions"], List)
    assert UNIFIED_FEATURES["schema"]["descriptions"].feature["description"] == Value("string")


# ------------------------------------------------------------------------------------------------ pipeline


@pytest.fixture(scope="module")
def ie(proc):
    model = T.decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    return pipeline("universal-ie", model=model, processor=proc, device="cpu")


def test_pipeline_bare_dict_schema_equals_list_schema_and_described_schema_works(ie):
    text = "Jerry Smith lives in New York ."
    as_list = ie(text, schema={"ent": ["person", "location"]}, instruction="", threshold=0.02)
    as_dict = ie(text, schema={"ent": {"person": None, "location": None}}, instruction="", threshold=0.02)
    assert as_dict == as_list and as_list["ent"]  # the random tiny model answers something at this threshold
    assert ie.last_report.described_labels == 0
    described = ie(text, schema={"ent": {"person": "a human being", "location": None}}, instruction="")
    assert ie.last_report.described_labels == 1 and described["ent"]
    for e in described["ent"]:
        assert e["type"] in ("person", "location") and text[e["span"][0]:e["span"][1]] == e["text"]


def test_pipeline_warns_once_per_call_about_labels_the_model_never_saw(ie, caplog):
    cfg = ie.model.config
    try:
        cfg.trained_labels = {"ent": ["person"]}
        with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):
            ie(["Tom .", "Ann ."], schema={"ent": ["person", "city", "virus"], "rel": ["r"]}, instruction="")
        warned = [r for r in caplog.records if "never saw in training" in r.getMessage()]
        assert len(warned) == 1
        assert "ent: 'city', 'virus'; rel: 'r'" in warned[0].getMessage()
        assert ie.last_report.unseen_labels == {"ent": ["city", "virus"], "rel": ["r"]}
        assert "labels the model never saw in training: ent: ['city', 'virus'], rel: ['r']" in str(ie.last_report)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):
            ie("Tom .", schema={"ent": ["person"]}, instruction="")
            cfg.generalist = True
            ie("Tom .", schema={"ent": ["city"]}, instruction="")
            cfg.generalist, cfg.trained_labels = False, None
            ie("Tom .", schema={"ent": ["city"]}, instruction="")
        assert not [r for r in caplog.records if "never saw" in r.getMessage()]
        assert ie.last_report.unseen_labels == {}
    finally:
        cfg.trained_labels, cfg.generalist = None, False


# ------------------------------------------------------------------------------------------------ config / trainer


def test_config_fields_round_trip_and_are_validated(tmp_path):
    cfg = LDNetConfig(trained_labels={"ent": ["person"]}, generalist=True, max_description_tokens=8)
    cfg.save_pretrained(tmp_path)
    back = LDNetConfig.from_pretrained(tmp_path)
    assert (back.trained_labels, back.generalist, back.max_description_tokens) == ({"ent": ["person"]}, True, 8)
    assert LDNetConfig().trained_labels is None and LDNetConfig().generalist is False
    for kw, field in (({"trained_labels": ["person"]}, "trained_labels"), ({"trained_labels": {"ent": "person"}},
                      "trained_labels"), ({"generalist": "yes"}, "generalist"), ({"max_description_tokens": 0},
                      "max_description_tokens")):
        with pytest.raises(ValueError, match=f"LDNetConfig.{field}"):
            LDNetConfig(**kw)


def test_training_labels_union_of_schemas():
    records = [described_record(), {"id": 2, "text": "a", "schema": {"ent": ["city", "person"],
                                                                       "event": {"attack": ["place"]}}}]
    want = {"ent": ["disease", "person", "city"], "rel": ["has"], "event": ["attack", "place"]}
    assert training_labels(records) == want
    assert training_labels(Dataset.from_list([to_arrow_record(r) for r in records], features=UNIFIED_FEATURES)) == want
    assert training_labels(Dataset.from_dict({"input_ids": [[1]]})) is None
    assert merge_labels({"ent": ["x"]}, {"ent": ["person", "x"], "rel": ["r"]}) == {"ent": ["x", "person"], "rel": ["r"]}
    assert merge_labels(None, {"ent": ["a"]}) == {"ent": ["a"]}


def test_trainer_records_the_labels_it_trained_on(tmp_path, proc):
    records = T.make_records(4, seed=5)
    model = T.tiny_model(proc)
    model.config.trained_labels = {"ent": ["earlier"]}
    args = LDNetTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=1,
                                  report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True,
                                  dataloader_pin_memory=False)
    trainer = LDNetTrainer(model=model, args=args, train_dataset=records, processing_class=proc)
    assert trainer.trained_labels == training_labels(records)
    assert model.config.trained_labels == {"ent": ["earlier"]}  # recorded when training starts
    trainer.train()
    trainer.save_model()
    want = merge_labels({"ent": ["earlier"]}, training_labels(records))
    assert LDNetConfig.from_pretrained(tmp_path / "out").trained_labels == want
    assert set(want["ent"]) >= set(T.SCHEMA["ent"]) and want["rel"] == T.SCHEMA["rel"]
    # features tokenized by the caller hold no schemas: nothing is recorded unless the caller says what they were
    feats = tokenize_dataset(proc, records)
    assert LDNetTrainer(model=T.tiny_model(proc), args=args, train_dataset=feats, processing_class=proc).trained_labels is None
    given = LDNetTrainer(model=T.tiny_model(proc), args=args, train_dataset=feats, processing_class=proc,
                         trained_labels=training_labels(records))
    assert given.trained_labels == training_labels(records)
