#!/usr/bin/env python
"""Issue #14: what makes LDNet learn on small CPU budgets. One CoNLL04 (joint, w/o instruction) run per call.

A fixed step budget (not wall clock: the machine is shared), seeded; prints and writes one JSON line with dev/test
entity F1, relation strict F1 (and with entity types), precision/recall, steps and seconds.

    python bench/fast_start.py --out runs/fast/base-s1 --steps 400 --seed 1 --config '{"score_bias_init": -4}'

Several runs (configs x seeds, made in parallel processes) are summarised side by side, mean +- std per config::

    python bench/fast_start.py --merge runs/fast/C-s1 runs/fast/C-s2 ... --out runs/fast/table.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, set_seed  # noqa: E402

from modeling_ldnet import LDNetModel, LDNetProcessor  # noqa: E402
from processing import convert_benchmark  # noqa: E402
from processing.paths import minilm_path, shared_data_dir  # noqa: E402
from trainers import LDNetTrainer, LDNetTrainingArguments  # noqa: E402

#: the model settings a run is grouped by (its effective config, NEW_MODEL_DEFAULTS included)
EFFECTIVE = ("use_label_drop", "label_drop_mode", "label_drop_axis", "label_drop_detach", "score_bias_init")

MERGE_COLUMNS = (
    ("eval_ent_f1", "dev ent F1"), ("eval_rel_strict_f1", "dev rel F1"), ("eval_rel_strict_precision", "dev rel P"),
    ("test_ent_f1", "test ent F1"), ("test_rel_strict_f1", "test rel F1"), ("test_rel_strict_precision", "test rel P"),
    ("test_cal_rel_strict_f1", "test rel F1 calibrated"), ("test_cal_rel_strict_precision", "test rel P calibrated"),
    ("test_cal_ent_f1", "test ent F1 calibrated"),
)


def merge(dirs: list[str]) -> str:
    """Markdown table: one row per (dataset, config), mean +- std (population std over seeds) of each column."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for d in dirs:
        res = json.loads((Path(d) / "result.json").read_text())
        eff = dict(res.get("effective", res["config"]))
        if eff.get("use_label_drop") is False:  # the gate's settings mean nothing without a gate
            eff = {k: v for k, v in eff.items() if not k.startswith("label_drop_")}
        key = json.dumps({"dataset": res.get("dataset", "conll04"), **eff}, sort_keys=True)
        groups.setdefault(key, []).append(res)
    head = "| config | seeds | " + " | ".join(c[1] for c in MERGE_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(MERGE_COLUMNS) + 2)]
    for key, runs in groups.items():
        cells = []
        for col, _ in MERGE_COLUMNS:
            vals = [100 * r[col] for r in runs if col in r]
            cells.append("" if not vals else f"{statistics.mean(vals):.1f} ± {statistics.pstdev(vals):.1f}"
                         + (f" (n={len(vals)})" if len(vals) != len(runs) else ""))
        seeds = ",".join(str(r["seed"]) for r in runs)
        lines.append(f"| `{key}` | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--merge":
        p = argparse.ArgumentParser()
        p.add_argument("--merge", nargs="+", required=True)
        p.add_argument("--out", required=True)
        a = p.parse_args(argv)
        table = merge(a.merge)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(table + "\n")
        print(table)
        return {"table": table}
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="conll04", choices=("conll04", "aste-14res"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--max_minutes", type=float, default=None,
                   help="wall-clock training budget (the LR decays over it; --steps stays a cap)")
    p.add_argument("--window_stride", type=int, default=None, help="processor window stride (long texts)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--head_lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--config", default="{}", help="LDNetConfig overrides (JSON)")
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--dev", type=int, default=0, help="dev records (0: all)")
    p.add_argument("--test", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=float, default=0.05)
    p.add_argument("--scheduler", default="linear")
    p.add_argument("--save_model", action="store_true", help="save model + processor to OUT/model")
    p.add_argument("--calibrate", action="store_true", help="fit per-channel thresholds on dev, report test both ways")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    transformers.logging.set_verbosity_error()
    set_seed(a.seed)
    data = shared_data_dir()
    if a.dataset == "conll04":
        dd, _ = convert_benchmark("conll04", data / "conll04", progress=False, with_entities=True, instruction="")
    else:
        dd, _ = convert_benchmark(a.dataset, data / "aste", progress=False, instruction="")
    dev = dd["dev"] if not a.dev else dd["dev"].select(range(a.dev))
    enc = str(minilm_path())
    processor = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(enc), max_length=a.max_length,
                               **({"window_stride": a.window_stride} if a.window_stride else {}))
    model = LDNetModel.from_encoder(enc, tokenizer=processor.tokenizer, **json.loads(a.config))
    args = LDNetTrainingArguments(
        output_dir=a.out, max_steps=a.steps, per_device_train_batch_size=a.batch_size, per_device_eval_batch_size=32,
        learning_rate=a.lr, head_learning_rate=a.head_lr, warmup_steps=a.warmup, lr_scheduler_type=a.scheduler,
        train_sampling_strategy="group_by_length", logging_steps=50, save_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, dataloader_pin_memory=False, seed=a.seed,
        max_minutes=a.max_minutes,
    )
    trainer = LDNetTrainer(model=model, args=args, train_dataset=dd["train"], eval_dataset=dev,
                           processing_class=processor)
    t0 = time.time()
    trainer.train()
    train_s = time.time() - t0
    m = trainer.evaluate()
    res = {"dataset": a.dataset, "config": json.loads(a.config), "seed": a.seed, "steps": trainer.state.global_step, "batch": a.batch_size,
           "effective": {k: getattr(model.config, k) for k in EFFECTIVE},
           "lr": a.lr, "head_lr": a.head_lr, "train_seconds": round(train_s, 1), "max_minutes": a.max_minutes,
           "threads": a.threads}
    res.update({k: round(v, 4) for k, v in m.items() if k.startswith("eval_") and ("f1" in k or "_p" in k or "_r" in k
                                                                                  or "precision" in k or "recall" in k)})
    keep = ("ent_f1", "ent_precision", "ent_recall", "rel_strict_f1", "rel_strict_precision", "rel_strict_recall",
            "rel_typed_f1", "aste_f1", "aste_precision", "aste_recall", "general_f1")
    if a.test:
        t = trainer.evaluate(dd["test"], metric_key_prefix="test")
        res.update({k: round(v, 4) for k, v in t.items() if k.startswith("test_") and k[5:] in keep})
    if a.calibrate:
        from trainers.calibration import calibrate_thresholds

        cal = calibrate_thresholds(trainer.model, processor, dev)
        res["calibration"] = {"thresholds": cal.thresholds, "metric": cal.metric, "dev_before": cal.before,
                              "dev_after": cal.after}
        if a.test:
            t = trainer.evaluate(dd["test"], metric_key_prefix="test_cal")
            res.update({k: round(v, 4) for k, v in t.items() if k.startswith("test_cal_") and k[9:] in keep})
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.save_model:
        trainer.model.save_pretrained(Path(a.out) / "model", model_card=False)
        processor.save_pretrained(Path(a.out) / "model")
    (Path(a.out) / "result.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
