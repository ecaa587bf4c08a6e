"""Label-order invariance is a property of the models we train: a model trained with schema shuffling answers the
same under every permutation of its schema; the same model trained on one fixed label order binds labels to their
positions (the control: the test can fail).

A small real model (the packaged MiniLM cut to 2 layers) learns the synthetic person / organization / location task
of ``ldnet_tiny.make_records`` in 150 steps; both runs share seed, data, steps and learning rates.
"""

from __future__ import annotations

import itertools

import ldnet_tiny
import pytest
import torch

from modeling_ldnet import LDNetModel
from processing.paths import minilm_path
from trainers import LDNetTrainer, LDNetTrainingArguments
from trainers.augmented import AugmentedRecordDataset, EpochCallback
from trainers.schema_aug import SchemaAugConfig, SchemaAugmenter

ENT_ORDERS = list(itertools.permutations(["person", "organization", "location"]))
REL_ORDERS = [["work for", "live in"], ["live in", "work for"]]


def _key(ans: dict) -> tuple:
    ents = sorted((e["type"], tuple(e["span"])) for e in ans.get("ent", []))
    rels = sorted((r["relation"], tuple(r["head"]["span"]), tuple(r["tail"]["span"])) for r in ans.get("rel", []))
    return ents, rels


def _train(shuffle: bool, tmp_path) -> LDNetTrainer:
    torch.set_num_threads(1)
    proc = ldnet_tiny.processor(max_length=64)
    torch.manual_seed(0)
    model = LDNetModel.from_encoder(str(minilm_path()), tokenizer=proc.tokenizer, max_seq_length=64, window_stride=16)
    model.plm.encoder.layer = model.plm.encoder.layer[:2]  # 2 of 6 layers: a real encoder at test cost
    train = AugmentedRecordDataset(
        ldnet_tiny.make_records(64, seed=1), proc, None,
        SchemaAugmenter(SchemaAugConfig(shuffle=shuffle, shuffle_inner=True), seed=0), seed=0,
    )
    args = LDNetTrainingArguments(
        output_dir=str(tmp_path / ("shuffled" if shuffle else "fixed")), max_steps=150, per_device_train_batch_size=8,
        learning_rate=5e-4, head_learning_rate=5e-3, warmup_steps=0.05, save_strategy="no", report_to="none",
        disable_tqdm=True, use_cpu=True, seed=0, dataloader_pin_memory=False, logging_steps=1000,
    )
    trainer = LDNetTrainer(model=model, args=args, train_dataset=train, processing_class=proc,
                           callbacks=[EpochCallback(train)])
    trainer.train()
    return trainer


def _correct_per_order(trainer: LDNetTrainer) -> dict[tuple, int]:
    test = ldnet_tiny.make_records(16, seed=2, split="test")
    gold = [_key(r["ans"]) for r in test]
    out = {}
    for ents, rels in itertools.product(ENT_ORDERS, REL_ORDERS):
        recs = [dict(r, schema={"ent": list(ents), "rel": rels}, ans={}) for r in test]
        pred = [_key(a) for a in trainer.extract(recs)]
        out[(ents, tuple(rels))] = sum(p == g for p, g in zip(pred, gold))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_schema_shuffling_makes_answers_independent_of_label_order(tmp_path):
    shuffled = _correct_per_order(_train(True, tmp_path))
    assert set(shuffled.values()) == {16}, shuffled  # every sentence exactly right under all 12 orders

    fixed = _correct_per_order(_train(False, tmp_path))  # the control: one fixed order in training
    trained_order = (("person", "organization", "location"), ("work for", "live in"))
    assert fixed[trained_order] == 16
    assert max(v for k, v in fixed.items() if k != trained_order) <= 8, fixed  # labels bound to positions
