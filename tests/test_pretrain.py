"""Pre-training stage: instruction pools + seeded sampling, "w/o Inst.", schema shuffling / negatives, the recipe
mix, the per-epoch augmented dataset, and a tiny pre-train -> fine-tune run that reloads with from_pretrained."""

from __future__ import annotations

import json
import logging
from collections import Counter
from types import SimpleNamespace

import ldnet_tiny
import pytest

from modeling_ldnet import LDNetModel, LDNetProcessor
from trainers.instructions import (
    EXTRA_POOLS,
    INSTRUCTION_POOLS,
    InstructionSampler,
    derive_seed,
    infer_task,
    record_task,
)
from trainers.pretrain import (
    AugmentedRecordDataset,
    EpochCallback,
    build_pretrain_mix,
    load_recipe,
    pretrain_main,
    temperature_counts,
)
from trainers.schema_aug import LabelPool, SchemaAugConfig, SchemaAugmenter, gold_labels

# ---------------------------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------------------------

NER = {
    "id": "ner.0",
    "instruction": "Find entities.",
    "schema": {"ent": ["person", "location", "organization", "miscellaneous"]},
    "text": "Jerry Smith is a friend of Tom",
    "bg": "",
    "ans": {"ent": [{"type": "person", "text": "Jerry Smith", "span": [0, 11]}, {"type": "person", "text": "Tom", "span": [27, 30]}]},
}
EE = {
    "id": "ee.0",
    "instruction": "Find events.",
    "schema": {"event": {"attack": ["attacker", "target"], "meet": ["entity", "place"], "die": ["victim", "place"]}},
    "text": "Troops attacked the city .",
    "bg": "",
    "ans": {"event": [{"event_type": "attack", "trigger": {"text": "attacked", "span": [7, 15]},
                       "args": [{"role": "attacker", "text": "Troops", "span": [0, 6]}]}]},
}
MRC = {"id": "mrc.0", "instruction": "Who is a friend of Tom?", "schema": {}, "text": "Jerry Smith is a friend of Tom",
       "bg": "", "ans": {"span": [{"text": "Jerry Smith", "span": [0, 11]}]}}


def ner_record(i: int) -> dict:
    r = json.loads(json.dumps(NER))
    r["id"] = f"ner.{i}"
    return r


# ---------------------------------------------------------------------------------------------------------------
# instruction pools and sampling
# ---------------------------------------------------------------------------------------------------------------


def test_pools_are_large_varied_and_start_with_the_converter_defaults():
    from processing import aste, cadec, casie, conll03, conll04, hyperred

    for task in ("ner", "re", "ee", "cls"):
        pool = INSTRUCTION_POOLS[task]
        assert len(set(pool)) >= 20, task
    for task, pool in {**INSTRUCTION_POOLS, **EXTRA_POOLS}.items():
        assert len(set(pool)) == len(pool) >= 10, task
        assert all(s.strip() == s and s for s in pool), task
    assert all("{question}" in s for s in INSTRUCTION_POOLS["mrc"])
    assert INSTRUCTION_POOLS["ner"][0] == conll03.NER_INSTRUCTION
    assert INSTRUCTION_POOLS["re"][0] == conll04.RE_INSTRUCTION
    assert INSTRUCTION_POOLS["ner_re"][0] == conll04.JOINT_INSTRUCTION
    assert INSTRUCTION_POOLS["ee"][0] == casie.EE_INSTRUCTION
    assert INSTRUCTION_POOLS["absa"][0] == aste.ABSA_INSTRUCTION
    assert INSTRUCTION_POOLS["discontinuous_ner"][0] == cadec.DNER_INSTRUCTION
    assert INSTRUCTION_POOLS["hyper_re"][0] == hyperred.INSTRUCTION


def test_task_inference():
    assert infer_task(NER) == "ner"
    assert infer_task(EE) == "ee"
    assert infer_task(MRC) == "mrc"
    assert infer_task({"schema": {"rel": ["positive", "negative"]}}) == "absa"
    assert infer_task({"schema": {"rel": ["work for"]}}) == "re"
    assert infer_task({"schema": {"rel": ["work for"], "ent": ["person"]}}) == "ner_re"
    assert infer_task({"schema": {"cls": ["a", "b"]}}) == "cls"
    assert infer_task({"schema": {"discontinuous_ent": ["ADR"]}}) == "discontinuous_ner"
    assert infer_task({"schema": {"hyper_rel": [{"name": "r", "labels": ["q"]}]}}) == "hyper_re"  # Arrow form
    # corpus task wins; "mner"/"mre" map onto ner/re; an re corpus with entity schemas is joint
    assert record_task(NER, "mner") == "ner"
    assert record_task({"schema": {"rel": ["x"], "ent": ["y"]}}, "re") == "ner_re"
    with pytest.raises(KeyError):
        record_task(NER, "translation")


def test_instruction_sampling_is_seeded_reproducible_and_varies():
    records = [ner_record(i) for i in range(300)]
    a, b = InstructionSampler("sample", seed=7), InstructionSampler("sample", seed=7)
    for epoch in (0, 1, 2):
        assert [a.instruction_for(r, epoch) for r in records] == [b.instruction_for(r, epoch) for r in records]
    e0 = [a.instruction_for(r, 0) for r in records]
    e1 = [a.instruction_for(r, 1) for r in records]
    other_seed = [InstructionSampler("sample", seed=8).instruction_for(r, 0) for r in records]
    assert e0 != e1 and e0 != other_seed  # fresh per epoch and per seed
    assert set(e0) <= set(INSTRUCTION_POOLS["ner"])
    assert len(set(e0)) >= 20  # the pool is actually used
    # pure function of (seed, epoch, id): independent of the record's other fields and of call order
    r = dict(records[5], text="something else entirely")
    assert a.instruction_for(r, 1) == e1[5]
    # stable across processes / PYTHONHASHSEED (a hash, not Python's hash())
    assert derive_seed("instruction", 7, 0, "ner.5") == derive_seed("instruction", 7, 0, "ner.5")
    assert derive_seed("a", 1) == int.from_bytes(
        __import__("hashlib").blake2b(b"'a'\x1f1", digest_size=8).digest(), "big"
    )
    # the sampler returns a copy and leaves the input alone
    out = a(records[0], epoch=0)
    assert out["instruction"] == e0[0] and records[0]["instruction"] == "Find entities."


def test_instruction_modes_default_keep_none_and_named_pools():
    assert InstructionSampler("default").instruction_for(NER) == INSTRUCTION_POOLS["ner"][0]
    assert InstructionSampler("keep").instruction_for(NER) == "Find entities."
    assert InstructionSampler("none").instruction_for(NER) == ""
    # MRC: the instruction is the question; templates wrap it, "none" keeps the bare question
    assert InstructionSampler("none").instruction_for(MRC) == MRC["instruction"]
    got = {InstructionSampler("sample", seed=s).instruction_for(MRC) for s in range(40)}
    assert all(MRC["instruction"] in g for g in got) and len(got) > 3
    # a named pool (recipe "pool": "cls_sentiment") is used for its records
    cls = {"id": "c", "schema": {"cls": ["negative", "positive"]}, "text": "great", "pool": "cls_sentiment"}
    assert InstructionSampler("sample", seed=1).instruction_for(cls) in EXTRA_POOLS["cls_sentiment"]
    with pytest.raises(ValueError):
        InstructionSampler("random")
    with pytest.raises(ValueError):
        InstructionSampler(pools={"mrc": ["no slot"]})


def test_without_instruction_removes_exactly_the_I_segment():
    proc = ldnet_tiny.processor(max_length=128)
    rec = dict(NER, instruction=INSTRUCTION_POOLS["ner"][3])
    with_i = proc(rec)
    without = proc(InstructionSampler("none")(rec))
    ids_w, ids_wo = list(with_i["input_ids"][0]), list(without["input_ids"][0])
    tok = proc.tokenizer
    i_id = tok.convert_tokens_to_ids(proc.special_tokens["instruction"])
    instr = tok(rec["instruction"], add_special_tokens=False)["input_ids"]
    n = 1 + len(instr)
    assert ids_w[:2] == [tok.cls_token_id, i_id]
    assert ids_w == [tok.cls_token_id, i_id, *instr, *ids_wo[1:]]
    assert i_id not in ids_wo and len(ids_w) == len(ids_wo) + n
    # the gold graph and label-drop targets are the same, shifted by the removed segment
    links_w = sorted(tuple(x) for x in with_i["span_graph_links"][0])
    links_wo = sorted(tuple(x) for x in without["span_graph_links"][0])
    assert links_w and links_w == sorted((c, i + n, j + n) for c, i, j in links_wo)
    t_w, t_wo = list(with_i["label_drop_targets"][0]), list(without["label_drop_targets"][0])
    assert t_w[:1 + n] == [0.0] * (1 + n) and t_w[1 + n:] == t_wo[1:]


# ---------------------------------------------------------------------------------------------------------------
# schema augmentation
# ---------------------------------------------------------------------------------------------------------------


def _pool() -> LabelPool:
    return LabelPool.from_schemas(
        [
            ("ner", {"ent": ["person", "location", "organization", "miscellaneous"]}),
            ("ner", {"ent": ["gene", "disease", "chemical"]}),
            ("re", {"rel": ["work for", "live in", "kill"]}),
            ("absa", {"rel": ["positive", "negative", "neutral"]}),
            ("ee", {"event": {"attack": ["attacker", "target"], "marry": ["person", "place"], "elect": ["winner"]}}),
        ]
    )


def test_schema_shuffle_is_deterministic_per_seed_and_keeps_the_labels():
    aug = SchemaAugmenter(SchemaAugConfig(shuffle=True), seed=3)
    records = [ner_record(i) for i in range(40)]
    out0 = [aug(r, epoch=0)["schema"]["ent"] for r in records]
    assert out0 == [SchemaAugmenter(SchemaAugConfig(shuffle=True), seed=3)(r, epoch=0)["schema"]["ent"] for r in records]
    assert out0 != [aug(r, epoch=1)["schema"]["ent"] for r in records]
    assert out0 != [SchemaAugmenter(SchemaAugConfig(shuffle=True), seed=4)(r, epoch=0)["schema"]["ent"] for r in records]
    assert all(sorted(s) == sorted(NER["schema"]["ent"]) for s in out0)
    assert len({tuple(s) for s in out0}) > 5  # label position really varies
    assert all(aug(r)["ans"] == r["ans"] for r in records)  # answers untouched
    # identity config = plain normalisation
    assert SchemaAugmenter(SchemaAugConfig(shuffle=False))(NER)["schema"] == NER["schema"]


def test_drop_field_shows_joint_records_as_relation_only_or_entity_only():
    joint = ldnet_tiny.make_records(60, seed=3)  # schema {"ent": [3 labels], "rel": [2 labels]}, answers in both
    aug = SchemaAugmenter(SchemaAugConfig(shuffle=False, drop_field_rate=0.5), seed=1)
    seen = Counter()
    for r in joint:
        out = aug(r, epoch=0)
        fields = tuple(sorted(out["schema"]))
        seen[fields] += 1
        assert tuple(sorted(out["ans"])) == fields  # the dropped field's answers go with it, the others stay exact
        for f in fields:
            assert out["schema"][f] == r["schema"][f] and out["ans"][f] == r["ans"][f]
    assert seen[("ent", "rel")] + seen[("rel",)] + seen[("ent",)] == 60
    assert seen[("rel",)] >= 8 and seen[("ent",)] >= 8 and seen[("ent", "rel")] >= 20, seen
    # a one-field record keeps its field; rate 0 changes nothing; the rate is validated
    assert SchemaAugmenter(SchemaAugConfig(drop_field_rate=1.0), seed=1)(NER)["schema"]["ent"]
    assert SchemaAugmenter(SchemaAugConfig(shuffle=False, drop_field_rate=0.0))(joint[0])["schema"] == joint[0]["schema"]
    with pytest.raises(ValueError, match="drop_field_rate"):
        SchemaAugConfig(drop_field_rate=1.5)


def test_negatives_come_from_the_same_task_and_gold_is_never_dropped():
    pool = _pool()
    cfg = SchemaAugConfig(shuffle=True, negative_rate=1.0, max_negatives=3, drop_nongold_rate=1.0)
    aug = SchemaAugmenter(cfg, pool=pool, seed=0)
    ner_inventory = set(pool.candidates("ner", "ent"))
    seen_neg = set()
    for i in range(30):
        r = ner_record(i)
        out = aug(r, epoch=i % 3)
        ents = out["schema"]["ent"]
        assert "person" in ents  # the gold label survives drop rate 1.0
        assert len(ents) == len(set(ents))
        negatives = set(ents) - {"person"}
        # every non-gold original label was dropped (rate 1.0); the rest are 1..3 negatives of the NER inventory
        assert negatives <= ner_inventory - set(NER["schema"]["ent"]) and 1 <= len(negatives) <= 3
        seen_neg |= negatives
        assert out == aug(r, epoch=i % 3)
    assert seen_neg and seen_neg <= {"gene", "disease", "chemical"}
    # an RE record never gets ABSA polarities (or NER types) as negatives
    re_rec = {"id": "re.1", "schema": {"rel": ["work for", "live in"]}, "text": "Ann works for Acme", "ans": {}}
    for e in range(10):
        rel = aug(re_rec, epoch=e, task="re")["schema"]["rel"]
        assert set(rel) <= {"work for", "live in", "kill"}
        assert rel  # a field is never emptied, even without gold and at drop rate 1.0


def test_event_negatives_bring_their_roles_and_gold_roles_survive():
    aug = SchemaAugmenter(SchemaAugConfig(negative_rate=1.0, max_negatives=2, drop_nongold_rate=1.0), pool=_pool(), seed=1)
    for e in range(8):
        out = aug(EE, epoch=e)
        ev = out["schema"]["event"]
        assert "attacker" in ev["attack"]  # gold role of the gold event type
        assert set(ev) - {"attack"} <= {"marry", "elect"}
        for et in set(ev) & {"marry", "elect"}:
            assert set(ev[et]) == set(_pool().inner("ee", "event", et))
        g = gold_labels(out)
        assert g["event"] == {"attack": {"attacker"}}


def test_augmented_records_encode_every_gold_item():
    proc = ldnet_tiny.processor(max_length=128)
    aug = SchemaAugmenter(SchemaAugConfig(negative_rate=1.0, max_negatives=4, drop_nongold_rate=0.5), pool=_pool(), seed=2)
    records = [aug(ner_record(i), epoch=i) for i in range(10)] + [aug(EE, epoch=e) for e in range(5)]
    enc = proc(records)
    rep = enc["encoding_report"]
    assert rep.items == rep.encoded and not rep.unencodable


def test_config_validation():
    with pytest.raises(ValueError):
        SchemaAugConfig(negative_rate=1.5)
    with pytest.raises(ValueError):
        SchemaAugConfig(negative_fields=("span",))


# ---------------------------------------------------------------------------------------------------------------
# the recipe mix
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def corpora(tmp_path):
    ldnet_tiny.write_jsonl(tmp_path / "c1" / "train.jsonl", ldnet_tiny.make_records(20, seed=1))
    ldnet_tiny.write_jsonl(tmp_path / "c2" / "train.jsonl", ldnet_tiny.make_records(20, seed=2))  # same ids as c1
    ldnet_tiny.write_jsonl(tmp_path / "ext" / "ner" / "wnut" / "train.jsonl", [ner_record(i) for i in range(7)])
    return tmp_path


def _recipe(root, **kw):
    return {
        "seed": 5,
        "max_records_per_corpus": 8,
        "corpora": [
            {"name": "c1", "path": str(root / "c1"), "task": "re"},
            {"name": "c2", "path": str(root / "c2")},
            {"glob": "{pretrain_data}/ner/*/train.jsonl", "task": "ner"},
            {"name": "gone", "path": str(root / "missing")},
        ],
        **kw,
    }


def test_mix_is_capped_shuffled_deterministic_with_unique_ids(corpora):
    recipe = load_recipe(_recipe(corpora), pretrain_data=str(corpora / "ext"))
    mix = build_pretrain_mix(recipe)
    ds = mix.dataset
    assert {c.name: (c.available, c.used) for c in mix.corpora} == {"c1": (20, 8), "c2": (20, 8), "wnut": (7, 7)}
    assert [m["name"] for m in mix.missing] == ["gone"]
    assert len(ds) == 23 and len(set(ds["id"])) == 23
    assert {"corpus", "task", "pool"} <= set(ds.column_names)
    assert dict(zip(ds["corpus"], ds["task"]))["wnut"] == "ner" and dict(zip(ds["corpus"], ds["task"]))["c2"] == ""
    ids = list(ds["id"])
    assert ids == list(build_pretrain_mix(recipe).dataset["id"])
    assert ids != list(build_pretrain_mix(recipe, seed=6).dataset["id"])
    assert list(ds["corpus"]) != sorted(ds["corpus"])  # interleaved, not concatenated
    assert all(i.startswith("c2/") for i, c in zip(ds["id"], ds["corpus"]) if c == "c2")  # clash -> prefixed
    # caps, exclusion and strictness
    assert len(build_pretrain_mix(recipe, max_records_per_corpus=2, exclude=["c1"]).dataset) == 4
    assert len(build_pretrain_mix(recipe, max_records=5).dataset) == 5
    with pytest.raises(FileNotFoundError):
        build_pretrain_mix(recipe, strict=True)
    # the label pool groups joint records with plain NER / RE
    assert set(mix.label_pool.candidates("ner", "ent")) == {"person", "organization", "location", "miscellaneous"}
    assert set(mix.label_pool.candidates("re", "rel")) == {"work for", "live in"}


def test_temperature_counts_are_exact():
    # T = 1 keeps the sizes, T = 0 gives equal shares, T = 0.5 the square-root shares; the total never changes
    assert temperature_counts([900, 100], [1, 1], 1.0) == [900, 100]
    assert temperature_counts([900, 100], [1, 1], 0.0) == [500, 500]
    assert temperature_counts([900, 100], [1, 1], 0.5) == [750, 250]  # 30 : 10
    assert temperature_counts([900, 100], [1, 3], 0.5) == [500, 500]  # weight 3 on the small set
    assert temperature_counts([1000, 1, 1], [1, 1, 1], 1.0) == [1000, 1, 1]
    assert sum(temperature_counts([7, 3, 11], [1, 2, 1], 0.3)) == 21


def test_temperature_sampling_upsamples_small_corpora_with_fresh_ids(corpora):
    recipe = _recipe(corpora, max_records_per_corpus=20, sampling={"temperature": 0.0})
    recipe["corpora"][1]["weight"] = 1.0
    mix = build_pretrain_mix(load_recipe(recipe, pretrain_data=str(corpora / "ext")))
    by = {c.name: (c.used, c.sampled) for c in mix.corpora}
    assert by == {"c1": (20, 16), "c2": (20, 16), "wnut": (7, 15)}  # 47 rows in equal shares (largest remainder)
    ds = mix.dataset
    assert len(ds) == 47 and len(set(ds["id"])) == 47  # copies get '#k' ids: their own augmentation draws
    wnut_ids = [i for i, c in zip(ds["id"], ds["corpus"]) if c == "wnut"]
    assert sorted(i for i in wnut_ids if "#" not in i) == [f"ner.{k}" for k in range(7)]
    assert sum("#2" in i for i in wnut_ids) == 1 and sum("#1" in i for i in wnut_ids) == 7
    assert "in mix" in mix.summary() and "| wnut | ner | train | 7 | 7 | 15 | 31.9 % |" in mix.summary()
    for bad, msg in (({"temperature": 2}, "temperature"), ({"temp": 0.5}, "sampling"), (0.5, "sampling")):
        with pytest.raises(ValueError, match=msg):
            load_recipe(_recipe(corpora, sampling=bad), pretrain_data=str(corpora / "ext"))
    bad_weight = _recipe(corpora)
    bad_weight["corpora"][0]["weight"] = 0
    with pytest.raises(ValueError, match=r"corpus #0 \(c1\): 'weight' must be a number > 0"):
        load_recipe(bad_weight, pretrain_data=str(corpora / "ext"))


def test_recipe_validation_and_shipped_recipes(corpora):
    with pytest.raises(ValueError):
        load_recipe({"corpora": []})
    with pytest.raises(ValueError):
        load_recipe({"corpora": [{"benchmark": "conll03", "path": "x"}]})
    with pytest.raises(ValueError):
        load_recipe({"corpora": [{"benchmark": "conll03"}], "instruction_mode": "loud"})
    from pathlib import Path

    from processing import BENCHMARKS

    recipes = sorted((Path(__file__).resolve().parents[1] / "examples" / "recipes").glob("*.json"))
    assert {p.stem for p in recipes} >= {"pretrain_all", "pretrain_excluded", "pretrain_smoke", "pretrain_paper"}
    for p in recipes:
        r = load_recipe(p)
        for c in r["corpora"]:
            if c.get("benchmark"):
                assert c["benchmark"] in BENCHMARKS, (p.name, c)
                assert c["benchmark"] != "twitter2017"  # the zero-shot target stays out of every mix
    excluded = load_recipe(recipes[[p.stem for p in recipes].index("pretrain_excluded")])
    assert "conll04" not in {c.get("benchmark") for c in excluded["corpora"]}
    # the generalist recipes keep every held-out target out (INDEX.md), and bc5cdr only in its own variant
    held_out = {"wnut17", "ncbi_disease", "twitter2017", "conll04", "conll2002-es", "conll2002-nl"}
    for stem in ("generalist", "generalist_bc5cdr"):
        used = {c.get("benchmark") for c in load_recipe(recipes[[p.stem for p in recipes].index(stem)])["corpora"]}
        assert not used & held_out, (stem, used & held_out)
        assert ("bc5cdr" in used) == (stem == "generalist_bc5cdr")
    # typos are errors that name the entry and list what exists
    with pytest.raises(ValueError, match=r"corpus #0: unknown benchmark 'conll3'; did you mean \['conll03'"):
        load_recipe({"corpora": [{"benchmark": "conll3"}]})
    with pytest.raises(ValueError, match=r"registered: .*bionlp13cg.*python -m processing list"):
        load_recipe({"corpora": [{"benchmark": "no-such-set"}]})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sampling_temperature'\]; a recipe takes"):
        load_recipe({"corpora": [{"benchmark": "conll03"}], "sampling_temperature": 0.5})
    with pytest.raises(ValueError, match=r"corpus #0: unknown key\(s\) \['wieght'\]"):
        load_recipe({"corpora": [{"benchmark": "conll03", "wieght": 2}]})


def test_mix_from_a_staged_benchmark(shared_data, tmp_path):
    recipe = {"seed": 1, "max_records_per_corpus": 30,
              "corpora": [{"benchmark": "conll04", "options": {"with_entities": True}}]}
    mix = build_pretrain_mix(recipe, shared_data=str(shared_data), cache_dir=str(tmp_path / "cache"))
    assert len(mix.dataset) == 30 and set(mix.dataset["task"]) == {"re"}
    assert mix.corpora[0].available == 922
    again = build_pretrain_mix(recipe, shared_data=str(shared_data), cache_dir=str(tmp_path / "cache"))  # from cache
    assert list(again.dataset["id"]) == list(mix.dataset["id"])


# ---------------------------------------------------------------------------------------------------------------
# per-epoch dataset and the end-to-end run
# ---------------------------------------------------------------------------------------------------------------


def test_augmented_dataset_redraws_per_epoch_and_is_reproducible(corpora):
    mix = build_pretrain_mix(_recipe(corpora), pretrain_data=str(corpora / "ext"))
    proc = ldnet_tiny.processor(max_length=96)
    mk = lambda: AugmentedRecordDataset(
        mix.dataset, proc, InstructionSampler("sample", seed=1),
        SchemaAugmenter(SchemaAugConfig(negative_rate=0.5), pool=mix.label_pool, seed=1), seed=1)
    ds = mk()
    assert ds.column_names == list(__import__("trainers.data", fromlist=["x"]).FEATURE_COLUMNS)
    e0 = [ds.record(i) for i in range(len(ds))]
    f0 = [ds[i]["input_ids"] for i in range(len(ds))]
    cb = EpochCallback(ds)
    cb.on_epoch_begin(None, SimpleNamespace(epoch=1.0), None)
    assert ds.epoch == 1
    e1 = [ds.record(i) for i in range(len(ds))]
    assert [r["instruction"] for r in e0] != [r["instruction"] for r in e1]
    assert [r["ans"] for r in e0] == [r["ans"] for r in e1]
    ds2 = mk()
    assert [ds2[i]["input_ids"] for i in range(len(ds2))] == f0  # same seed, same epoch -> same features
    w = AugmentedRecordDataset(mix.dataset, proc, InstructionSampler("none"), None)
    assert all(w.record(i)["instruction"] == "" for i in range(len(w)))


def test_tiny_pretrain_then_finetune_reloads(corpora, tmp_path, caplog):
    from trainers.cli import train_main

    base = ldnet_tiny.save_tiny_checkpoint(tmp_path / "base")
    recipe_path = tmp_path / "recipe.json"
    recipe_path.write_text(json.dumps(_recipe(corpora, schema_augmentation={"negative_rate": 0.5, "max_negatives": 2})))
    out = tmp_path / "pt"
    common = ["--model_name_or_path", str(base), "--recipe", str(recipe_path), "--pretrain_data", str(corpora / "ext"),
              "--per_device_train_batch_size", "4", "--max_length", "64", "--report_to", "none",
              "--save_strategy", "no", "--disable_tqdm", "true", "--logging_steps", "1"]
    metrics = pretrain_main([*common, "--output_dir", str(out), "--max_steps", "3", "--write_mix", str(tmp_path / "mix.jsonl")])
    assert metrics["train_records"] == 23 and metrics["epoch"] > 0
    # the loss of every corpus on its probe records, logged at the end (and every --corpus_loss_steps)
    assert sorted(k for k in metrics if k.startswith("loss/")) == ["loss/c1", "loss/c2", "loss/wnut"]
    assert all(0 < metrics[k] < 100 for k in ("loss/c1", "loss/c2", "loss/wnut"))
    model = LDNetModel.from_pretrained(out)
    proc = LDNetProcessor.from_pretrained(out)
    assert model.get_input_embeddings().num_embeddings >= len(proc.tokenizer)
    info = json.loads((out / "pretrain_info.json").read_text())
    assert [c["name"] for c in info["corpora"]] == ["c1", "c2", "wnut"] and info["instruction_mode"] == "sample"
    assert len((tmp_path / "mix.jsonl").read_text().splitlines()) == 23

    # bench/pretrain_protocol.py reads the folder back: the saved model's loss per corpus, as trained and canonical
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import pretrain_protocol

    losses = pretrain_protocol.per_corpus_loss(out, 3)
    assert set(losses) == {"c1", "c2", "wnut"}
    assert all(r["records"] == 3 and 0 < r["augmented"] < 100 and 0 < r["canonical"] < 100 for r in losses.values())

    # --max_minutes stops (and saves) after the first step
    m2 = pretrain_main([*common, "--output_dir", str(tmp_path / "pt2"), "--num_train_epochs", "5", "--max_minutes", "0"])
    assert m2["stopped_by_time_limit_at_step"] == 1
    assert (tmp_path / "pt2" / "model.safetensors").is_file()

    # fine-tune from the pre-trained folder with ldnet-train
    data = tmp_path / "ft"
    ldnet_tiny.write_jsonl(data / "train.jsonl", ldnet_tiny.make_records(8, seed=9))
    ldnet_tiny.write_jsonl(data / "dev.jsonl", ldnet_tiny.make_records(4, seed=10, split="dev"))
    res = train_main(["--model_name_or_path", str(out), "--data_dir", str(data), "--output_dir", str(tmp_path / "ft-out"),
                      "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_length", "64",
                      "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"])
    assert "eval_rel_strict_f1" in res
    LDNetModel.from_pretrained(tmp_path / "ft-out")
    LDNetProcessor.from_pretrained(tmp_path / "ft-out")
    logging.getLogger("modeling_ldnet.processing_ldnet").setLevel(logging.NOTSET)
