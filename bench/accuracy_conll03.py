#!/usr/bin/env python
"""CoNLL03 NER: LDNet vs ``AutoModelForTokenClassification`` (BIO) on the same encoder, budget, seed and test subset.

* Data: ``processing.convert_benchmark("conll03", shared/data/conll03)`` records. The baseline's word-level tokens
  are the record text split on single spaces (the converter joins the CoNLL tokens with one space, so the char
  offsets of ``ans.ent`` map exactly onto words); BIO tags from the entity spans; labels on the first sub-token.
* Both models start from the packaged all-MiniLM-L6-v2 and train with the same ``LDNetTrainingArguments``:
  batch size, seed, encoder lr / head lr (``trainers.ldnet_parameter_groups``, SPEC §7.1 AdamW settings), constant
  LR after ``--warmup_steps`` (a wall-time budget has no known step total for a cosine schedule), for
  ``--max_minutes`` of training wall time each (``trainers.TimeLimitCallback``; data encoding excluded), one after
  the other in the same process and thread count. No dev-set model selection (the final weights are evaluated).
* Metrics on the same test subset: LDNet -> entity strict F1 (``trainers.metrics.compute_uie_metrics``: exact
  (type, char span)); baseline -> seqeval entity F1 (default conlleval-style chunking, and ``mode="strict"``
  IOB2), which counts the same unit; the baseline's BIO output is also converted to spans and scored with
  ``compute_uie_metrics`` as a cross-check.

    python bench/accuracy_conll03.py --max_minutes 60 --test_limit 0        # the full run (lead)
    python bench/accuracy_conll03.py --max_minutes 2 --train_limit 2000 --test_limit 300   # quick check
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np
import torch

ENT_TYPES = ["person", "location", "organization", "miscellaneous"]


# ---------------------------------------------------------------------------------------------------------------
# records -> BIO
# ---------------------------------------------------------------------------------------------------------------


def record_to_bio(rec: dict, types: list[str]) -> tuple[list[str], list[str]]:
    """Words (text split on single spaces) and their BIO tags from ``ans.ent`` char spans."""
    words = rec["text"].split(" ")
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    tags = ["O"] * len(words)
    for e in (rec.get("ans") or {}).get("ent") or []:
        s, t = e["span"]
        idx = [k for k, (a, w) in enumerate(zip(starts, words)) if a >= s and a + len(w) <= t and w]
        if not idx or e["type"] not in types:
            continue
        tags[idx[0]] = f"B-{e['type']}"
        for k in idx[1:]:
            tags[k] = f"I-{e['type']}"
    return words, tags


def bio_to_ans(words: list[str], tags: list[str]) -> dict:
    """BIO tags -> unified ``ans`` (char spans over the space-joined words), seqeval's chunking rules."""
    from seqeval.metrics.sequence_labeling import get_entities

    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    text = " ".join(words)
    ents = []
    for typ, a, b in get_entities(list(tags)):
        s, t = starts[a], starts[b] + len(words[b])
        ents.append({"type": typ, "text": text[s:t], "span": [s, t]})
    return {"ent": ents}


def bio_label_list(types: list[str]) -> list[str]:
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


class BIODataset(torch.utils.data.Dataset):
    def __init__(self, tokenizer, records: list[dict], labels: list[str], max_length: int = 512):
        self.items = []
        lid = {lab: i for i, lab in enumerate(labels)}
        types = sorted({lab[2:] for lab in labels if lab != "O"})
        for rec in records:
            words, tags = record_to_bio(rec, types)
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
            wid = enc.word_ids()
            lab, prev = [], None
            for w in wid:
                lab.append(-100 if w is None or w == prev else lid[tags[w]])
                prev = w
            self.items.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": lab,
                               "_word_ids": wid, "_words": words, "_tags": tags})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        return {k: it[k] for k in ("input_ids", "attention_mask", "labels")}


# ---------------------------------------------------------------------------------------------------------------
# baseline
# ---------------------------------------------------------------------------------------------------------------


def train_eval_token_cls(train_records: list[dict], test_records: list[dict], *, max_seconds: float | None,
                         max_steps: int | None = None, seed: int = 1227, batch_size: int = 16, lr: float = 5e-5,
                         head_lr: float = 5e-4, warmup_steps: int = 20, threads: int = 1,
                         types: list[str] = ENT_TYPES, scheduler: str = "constant_with_warmup",
                         group_by_length: bool = False) -> dict:
    """Same budget/optimiser recipe as :func:`_common.train_eval_ldnet`, for a BIO token classifier."""
    import tempfile

    from seqeval.metrics import (
        classification_report,
        f1_score,
        precision_score,
        recall_score,
    )
    from seqeval.scheme import IOB2
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        set_seed,
    )

    from trainers import TimeLimitCallback, ldnet_parameter_groups
    from trainers.metrics import compute_uie_metrics, flatten
    from trainers.trainer import DEFAULT_NO_DECAY_PATTERN, budget_scheduler_for

    C.quiet_transformers()
    torch.set_num_threads(threads)
    set_seed(seed)
    labels = bio_label_list(types)
    tok = AutoTokenizer.from_pretrained(str(C.minilm_path()))
    model = AutoModelForTokenClassification.from_pretrained(
        str(C.minilm_path()), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={v: k for k, v in enumerate(labels)})
    prefix = model.base_model_prefix + "."

    class BaselineTrainer(Trainer):
        def create_optimizer(self, model=None):  # the same parameter groups / AdamW settings as LDNetTrainer
            if self.optimizer is None:
                a = self.args
                groups = ldnet_parameter_groups(self.model if model is None else model, a.learning_rate,
                                                a.head_learning_rate, a.weight_decay, DEFAULT_NO_DECAY_PATTERN,
                                                encoder_prefix=prefix)
                cls, kw = self.get_optimizer_cls_and_kwargs(a, self.model)
                kw = {k: v for k, v in kw.items() if k not in ("params", "model")}
                self.optimizer = cls(groups, **kw)
            return self.optimizer

        def _get_eval_sampler(self, eval_dataset):
            # transformers 5 applies train_sampling_strategy="group_by_length" to evaluation too, which reorders
            # predict()'s rows against test_ds.items; score them in order
            return torch.utils.data.SequentialSampler(eval_dataset)

        def create_scheduler(self, num_training_steps, optimizer=None):  # the same time-based decay as LDNetTrainer
            if self.lr_scheduler is None:
                self.lr_scheduler = budget_scheduler_for(self.args, self.optimizer if optimizer is None else optimizer,
                                                         num_training_steps)
            return super().create_scheduler(num_training_steps, optimizer)

    train_ds = BIODataset(tok, train_records, labels)
    test_ds = BIODataset(tok, test_records, labels)
    with tempfile.TemporaryDirectory() as tmp:
        args = C.training_args(tmp, batch_size=batch_size, lr=lr, head_lr=head_lr, seed=seed, max_steps=max_steps,
                               warmup_steps=warmup_steps, scheduler=scheduler, max_seconds=max_seconds,
                               **({"train_sampling_strategy": "group_by_length"} if group_by_length else {}))
        clock = C.step_clock()
        callbacks = ([TimeLimitCallback(max_seconds)] if max_seconds else []) + [clock]
        trainer = BaselineTrainer(model=model, args=args, train_dataset=train_ds,
                                  data_collator=DataCollatorForTokenClassification(tok), callbacks=callbacks)
        trainer.train()
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        out = trainer.predict(test_ds)
        eval_s = time.perf_counter() - t0
    check_aligned(out.label_ids, test_ds.items)
    pred_ids = np.argmax(out.predictions, axis=-1)
    y_true, y_pred, pred_ans = [], [], []
    for it, row in zip(test_ds.items, pred_ids):
        tags = ["O"] * len(it["_words"])
        prev = None
        for k, w in enumerate(it["_word_ids"]):
            if w is not None and w != prev and k < len(row):
                tags[w] = labels[int(row[k])]
            prev = w
        y_true.append(it["_tags"])
        y_pred.append(tags)
        pred_ans.append(bio_to_ans(it["_words"], tags))
    uie = flatten(compute_uie_metrics(pred_ans, [r.get("ans") or {} for r in test_records], tasks=["ent"]))
    metrics = {
        "seqeval_f1": f1_score(y_true, y_pred),
        "seqeval_precision": precision_score(y_true, y_pred),
        "seqeval_recall": recall_score(y_true, y_pred),
        "seqeval_strict_iob2_f1": f1_score(y_true, y_pred, mode="strict", scheme=IOB2),
        "uie_ent_f1_crosscheck": float(uie.get("ent_f1", float("nan"))),
    }
    return {"metrics": metrics, "steps": clock.steps, "train_seconds": clock.seconds,
            "records_seen": clock.steps * batch_size, "eval_seconds": eval_s,
            "report": classification_report(y_true, y_pred, output_dict=False, zero_division=0),
            "predictions": pred_ans}


def check_aligned(label_ids, items: list[dict]) -> None:
    """``predict()`` returns rows in the test set's order: its gold labels must equal each item's (a reordering
    sampler would silently score every sentence against another one's predictions)."""
    for k, it in enumerate(items):
        row = np.asarray(label_ids[k])
        n = len(it["labels"])
        if row[:n].tolist() != it["labels"] or (row[n:] != -100).any():
            raise RuntimeError(f"token-classification predictions are out of order at test row {k}")


# ---------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------


def select(records: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A deterministic random subset (``limit`` <= 0 or None: all), in the original order."""
    if not limit or limit <= 0 or limit >= len(records):
        return list(records)
    idx = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in idx]


def run(train_records: list[dict], test_records: list[dict], *, max_minutes: float | None = 2.0,
        max_steps: int | None = None, seed: int = 1227, batch_size: int = 16, lr: float = 5e-5,
        head_lr: float = 5e-4, warmup_steps: int = 20, threads: int = 1, order: str = "ldnet_first",
        scheduler: str = "constant_with_warmup", group_by_length: bool = False, only: str | None = None) -> dict:
    """Train and evaluate both models (or ``only`` one of them: run the other in a second process beside it);
    returns ``{"ldnet": ..., "token_cls": ..., "summary": ...}``."""
    budget = max_minutes * 60 if max_minutes else None
    kw = {"max_seconds": budget, "max_steps": max_steps, "seed": seed, "batch_size": batch_size, "lr": lr,
          "head_lr": head_lr, "warmup_steps": warmup_steps, "threads": threads, "scheduler": scheduler,
          "group_by_length": group_by_length}
    res: dict[str, Any] = {}
    runs = [("ldnet", lambda: C.train_eval_ldnet(train_records, test_records, **kw)),
            ("token_cls", lambda: train_eval_token_cls(train_records, test_records, **kw))]
    if order != "ldnet_first":
        runs.reverse()
    if only:
        runs = [r for r in runs if r[0] == only]
    for name, fn in runs:
        t0 = time.perf_counter()
        res[name] = fn()
        print(f"[accuracy_conll03] {name}: {res[name]['steps']} steps in {res[name]['train_seconds']:.0f}s, "
              f"metrics {_short(res[name]['metrics'])} ({time.perf_counter() - t0:.0f}s in all)", flush=True)
    res["summary"] = summarise(res)
    res["summary"].update({
        "train_records": len(train_records),
        "test_records": len(test_records),
        "budget_minutes_each": max_minutes,
        "max_steps": max_steps,
        "seed": seed,
        "batch_size": batch_size,
        "encoder_lr": lr,
        "head_lr": head_lr,
        "warmup_steps": warmup_steps,
        "threads": threads,
        "scheduler": scheduler,
        "group_by_length": group_by_length,
        "instruction": (train_records[0].get("instruction") if train_records else None),
    })
    return res


def summarise(res: dict) -> dict:
    """The headline numbers of one run (either model may be missing when a process ran ``only`` one)."""
    ld = (res.get("ldnet") or {}).get("metrics") or {}
    tc = (res.get("token_cls") or {}).get("metrics") or {}
    out = {
        "ldnet_entity_strict_f1": ld.get("test_ent_f1"),
        "token_cls_seqeval_f1": tc.get("seqeval_f1"),
        "token_cls_seqeval_strict_f1": tc.get("seqeval_strict_iob2_f1"),
        "token_cls_uie_ent_f1": tc.get("uie_ent_f1_crosscheck"),
        "ldnet_steps": (res.get("ldnet") or {}).get("steps"),
        "token_cls_steps": (res.get("token_cls") or {}).get("steps"),
    }
    if ld and tc:
        out["delta_f1_ldnet_minus_token_cls"] = (ld.get("test_ent_f1") or 0.0) - tc["seqeval_f1"]
    return out


def merge_seeds(paths: list[str]) -> dict:
    """Runs of one budget made in separate processes (``--only`` x seeds) -> mean +- std (population) per model."""
    import json
    import statistics

    rows: dict[str, dict[int, float]] = {"ldnet": {}, "token_cls": {}}
    steps: dict[str, dict[int, int]] = {"ldnet": {}, "token_cls": {}}
    budget = set()
    for p in paths:
        r = json.loads(open(p).read())
        s = r["summary"]
        budget.add(s.get("budget_minutes_each"))
        if s.get("ldnet_entity_strict_f1") is not None:
            rows["ldnet"][s["seed"]] = s["ldnet_entity_strict_f1"]
            steps["ldnet"][s["seed"]] = s["ldnet_steps"]
        if s.get("token_cls_seqeval_f1") is not None:
            rows["token_cls"][s["seed"]] = s["token_cls_seqeval_f1"]
            steps["token_cls"][s["seed"]] = s["token_cls_steps"]
    out: dict[str, Any] = {"budget_minutes_each": sorted(b for b in budget if b is not None), "files": paths}
    for name, vals in rows.items():
        v = [100 * x for x in vals.values()]
        out[name] = {"seeds": sorted(vals), "f1": v, "steps": [steps[name][k] for k in sorted(vals)],
                     "mean": statistics.mean(v) if v else None, "std": statistics.pstdev(v) if v else None}
    if out["ldnet"]["mean"] is not None and out["token_cls"]["mean"] is not None:
        out["delta_mean"] = out["ldnet"]["mean"] - out["token_cls"]["mean"]
    return out


def _short(m: dict) -> str:
    keys = ("test_ent_f1", "test_ent_precision", "test_ent_recall", "seqeval_f1", "seqeval_strict_iob2_f1",
            "uie_ent_f1_crosscheck")
    return ", ".join(f"{k}={m[k]:.4f}" for k in keys if k in m)


def plot(res: dict, name: str = "accuracy_conll03"):
    plt = C.pyplot()
    s = res["summary"]
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = ["LDNet\n(entity strict F1)", "TokenCls BIO\n(seqeval F1)", "TokenCls BIO\n(seqeval strict)"]
    vals = [100 * (s["ldnet_entity_strict_f1"] or 0), 100 * s["token_cls_seqeval_f1"],
            100 * s["token_cls_seqeval_strict_f1"]]
    bars = ax.bar(labels, vals, color=["C1", "C0", "C0"])
    C.label_bars(ax, bars, vals, "{:.2f}")
    ax.set_ylabel("F1 (%)")
    ax.set_title(f"CoNLL03 test ({s['test_records']} sent.), MiniLM-L6, {s['budget_minutes_each']} min each "
                 f"(steps {s['ldnet_steps']} / {s['token_cls_steps']})", fontsize=8)
    return C.save_plot(fig, name)


def plot_seeds(merged: dict, name: str):
    """Bars: mean +- std over seeds of LDNet's entity strict F1 and the tagger's seqeval F1 (:func:`merge_seeds`)."""
    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    names = [n for n in ("ldnet", "token_cls") if merged[n]["mean"] is not None]
    vals = [merged[n]["mean"] for n in names]
    bars = ax.bar(["LDNet\n(entity strict F1)" if n == "ldnet" else "TokenCls BIO\n(seqeval F1)" for n in names],
                  vals, yerr=[merged[n]["std"] for n in names], capsize=6, color=["C1", "C0"][: len(names)])
    C.label_bars(ax, bars, vals, "{:.2f}")
    ax.set_ylabel("F1 (%), mean ± std over seeds")
    ax.set_ylim(max(0.0, min(vals) - 10), min(100.0, max(vals) + 5))
    minutes = "/".join(f"{b:g}" for b in merged["budget_minutes_each"])
    seeds = ", ".join(f"{len(merged[n]['seeds'])}" for n in names)
    ax.set_title(f"CoNLL03 full test, MiniLM-L6, {minutes} min of one core each\nseeds: {seeds}", fontsize=9)
    return C.save_plot(fig, name)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_budget_args(ap)
    ap.add_argument("--train_limit", type=int, default=0, help="random training subset (0: all 14041)")
    ap.add_argument("--test_limit", type=int, default=1000, help="random test subset (0: all 3453)")
    ap.add_argument("--order", choices=["ldnet_first", "token_cls_first"], default="ldnet_first")
    ap.add_argument("--only", choices=["ldnet", "token_cls"], default=None,
                    help="train one model (run the other in a second process beside it, one thread each)")
    ap.add_argument("--group_by_length", action="store_true", help="length-grouped batches (both models)")
    ap.add_argument("--instruction", default=None,
                    help="LDNet's instruction ('' = none; default: the converter's); the tagger has no prompt")
    ap.add_argument("--data_dir", default=None, help="CoNLL03 source folder (default: shared/data/conll03)")
    ap.add_argument("--name", default="accuracy_conll03")
    ap.add_argument("--merge_seeds", nargs="+", default=None, metavar="RESULT_JSON",
                    help="mean +- std over the result files of separate runs (seeds, --only halves); trains nothing")
    args = ap.parse_args(argv)
    if args.merge_seeds:
        merged = merge_seeds(args.merge_seeds)
        for name in ("ldnet", "token_cls"):
            m = merged[name]
            if m["mean"] is not None:
                print(f"[accuracy_conll03] {name:<9} {m['mean']:.2f} +- {m['std']:.2f} (seeds {m['seeds']}, "
                      f"F1 {[round(x, 2) for x in m['f1']]}, steps {m['steps']})")
        if "delta_mean" in merged:
            print(f"[accuracy_conll03] LDNet - tagger: {merged['delta_mean']:+.2f} F1")
        print(f"wrote {C.write_json(args.name, merged)} and {plot_seeds(merged, args.name)}")
        return merged
    opts = {} if args.instruction is None else {"instruction": args.instruction}
    train = select(C.load_split("conll03", "train", args.data_dir, **opts), args.train_limit, args.seed)
    test = select(C.load_split("conll03", "test", args.data_dir, **opts), args.test_limit, args.seed + 1)
    res = run(train, test, order=args.order, only=args.only, group_by_length=args.group_by_length,
              **C.budget_kwargs(args))
    out = {k: {kk: vv for kk, vv in v.items() if kk != "predictions"} if isinstance(v, dict) else v
           for k, v in res.items()}
    s = res["summary"]
    if "token_cls" in res:
        print(res["token_cls"]["report"])
    if "delta_f1_ldnet_minus_token_cls" in s:
        print(f"[accuracy_conll03] LDNet entity strict F1 {s['ldnet_entity_strict_f1']:.4f} vs TokenCls seqeval F1 "
              f"{s['token_cls_seqeval_f1']:.4f} (strict IOB2 {s['token_cls_seqeval_strict_f1']:.4f}, as UIE spans "
              f"{s['token_cls_uie_ent_f1']:.4f}); delta {s['delta_f1_ldnet_minus_token_cls']:+.4f}")
    path = C.write_json(args.name, out)
    if args.only:
        print(f"wrote {path}")
    else:
        print(f"wrote {path} and {plot(res, args.name)}")
    return res


if __name__ == "__main__":
    main()
