#!/usr/bin/env python
"""LDNet in a few minutes on CPU: CoNLL04 (joint entities + relations) with the packaged all-MiniLM-L6-v2 encoder.

1. converts CoNLL04 from ``$LDNET_SHARED_DATA/conll04`` (default ``<repo>/../shared/data``) to unified records;
2. trains LDNet for 600 steps of 8 CoNLL04 training sentences, the schema's label order shuffled per record and
   epoch so the model reads labels by name, not position, and partial schemas (absent labels or a whole field
   dropped) mixed in (seeded; ~3.5 min on 2 idle CPU cores, ~7 min on one busy one);
3. prints the dev F1 (entities, strict relations) and a table of what it extracts from test sentences beside the gold;
4. saves model + processor to ``runs/demo/model`` for the next commands::

       pipeline("universal-ie", model="runs/demo/model", trust_remote_code=True)
       ldnet-serve runs/demo/model          # docs/serving.md
       make app                             # the Gradio demo on the same folder

Knobs (environment): ``LDNET_DEMO_STEPS`` (default 600), ``LDNET_DEMO_SECONDS`` (optional wall-clock cap on
training; the learning-rate schedule is planned for the steps, so a cap that bites gives a weaker model),
``LDNET_DEMO_TRAIN`` (training
sentences, default all 922), ``LDNET_DEMO_DEV`` (dev sentences scored, default all 231), ``LDNET_DEMO_OUT`` (output
folder, default ``runs/demo``), ``LDNET_DEMO_THREADS`` (torch threads, default all cores), ``LDNET_DEMO_SEED``.
Run with ``make demo``; measured numbers in bench/RESULTS.md §10.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("trainers") is None:  # pragma: no cover - a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, set_seed  # noqa: E402

from modeling_ldnet import LDNetModel, LDNetProcessor  # noqa: E402
from modeling_ldnet.modelcard_ldnet import card_metrics, collect_schema  # noqa: E402
from processing import convert_benchmark  # noqa: E402
from processing.paths import minilm_path, shared_data_dir  # noqa: E402
from trainers import LDNetTrainer, LDNetTrainingArguments, TimeLimitCallback  # noqa: E402
from trainers.augmented import AugmentedRecordDataset, EpochCallback  # noqa: E402
from trainers.schema_aug import SchemaAugConfig, SchemaAugmenter  # noqa: E402


def _ent_key(e: dict) -> tuple:
    return e["type"], tuple(e["span"])


def _rel_key(r: dict) -> tuple:
    return r["relation"], tuple(r["head"]["span"]), tuple(r["tail"]["span"])


def render_table(text: str, pred: dict, gold: dict, width: int = 110) -> str:
    """A compact side-by-side view of one sentence: every entity / relation marked ok (in both), miss (gold
    only) or extra (predicted only)."""
    lines = [f"  {text if len(text) <= width else text[: width - 3] + '...'}"]
    rows: list[tuple[str, str, str]] = []
    for kind, key, show in (
        ("ent", _ent_key, lambda e: f"{e['text']!r:28} {e['type']}"),
        ("rel", _rel_key, lambda r: f"{r['head']['text']!r} --{r['relation']}--> {r['tail']['text']!r}"),
    ):
        p = {key(x): x for x in pred.get(kind, [])}
        g = {key(x): x for x in gold.get(kind, [])}
        for k in sorted(set(p) | set(g), key=lambda k: (k[1] if kind == "ent" else k[1:], k)):
            mark = "ok" if k in p and k in g else ("miss" if k in g else "extra")
            rows.append((kind, mark, show(p.get(k) or g[k])))
    if not rows:
        rows.append(("", "", "(nothing predicted, nothing in the gold)"))
    lines += [f"    {kind:3} {mark:5} {desc}" for kind, mark, desc in rows]
    return "\n".join(lines)


def main() -> dict:
    transformers.logging.set_verbosity_error()
    t0 = time.time()
    steps = int(os.environ.get("LDNET_DEMO_STEPS", "600"))
    seconds = float(os.environ.get("LDNET_DEMO_SECONDS", "0")) or None
    n_train = int(os.environ.get("LDNET_DEMO_TRAIN", "0"))
    n_dev = int(os.environ.get("LDNET_DEMO_DEV", "0"))
    seed = int(os.environ.get("LDNET_DEMO_SEED", "1"))
    threads = int(os.environ.get("LDNET_DEMO_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    set_seed(seed)
    data_root = shared_data_dir()
    out_dir = Path(os.environ.get("LDNET_DEMO_OUT") or REPO / "runs" / "demo")

    print(f"[1/4] converting CoNLL04 from {data_root / 'conll04'}", flush=True)
    # "w/o Inst." setting (instruction = ""): shorter inputs, faster steps on CPU
    dd, _report = convert_benchmark(
        "conll04", data_root / "conll04", progress=False, with_entities=True, instruction=""
    )
    train = dd["train"] if not n_train else dd["train"].select(range(min(n_train, len(dd["train"]))))
    dev = dd["dev"] if not n_dev else dd["dev"].select(range(min(n_dev, len(dd["dev"]))))
    test = dd["test"]
    print(f"      {len(dd['train'])}/{len(dd['dev'])}/{len(test)} train/dev/test sentences; "
          f"training on {len(train)}, scoring {len(dev)} dev sentences", flush=True)

    encoder = minilm_path()
    # 128-token windows (CoNLL04 sentences fit), overlapping by 32 tokens for longer texts at inference
    processor = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(str(encoder)), max_length=128, window_stride=32)
    # from_encoder gives a new model the measured-best settings (NEW_MODEL_DEFAULTS, bench/RESULTS.md §10)
    # trained without instructions: the saved model tells the pipeline to use none either
    model = LDNetModel.from_encoder(str(encoder), tokenizer=processor.tokenizer, default_instruction="",
                                    max_seq_length=128, window_stride=32)

    args = LDNetTrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=32,
        learning_rate=2e-4,  # a short budget: far above the paper's 2e-5 / 1e-4 (bench/RESULTS.md §10)
        head_learning_rate=2e-3,
        warmup_steps=0.05,
        train_sampling_strategy="group_by_length",
        logging_steps=25,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
        seed=seed,
    )
    # the schema's label order is re-drawn per record and epoch (as `ldnet-train` does by default): a model trained on
    # CoNLL04's one fixed order binds labels to their position, not their name (issue #20; bench/label_order.py).
    # Some records lose absent labels or a whole field (answers included): users write partial schemas such as
    # {"rel": [...]} alone or {"ent": ["people", "location"]}, which a model trained on the full schema never saw.
    augment = SchemaAugConfig(shuffle=True, shuffle_inner=True, drop_nongold_rate=0.2, drop_field_rate=0.3)
    shuffled = AugmentedRecordDataset(train, processor, None, SchemaAugmenter(augment, seed=seed), seed=seed)
    callbacks = [EpochCallback(shuffled)] + ([TimeLimitCallback(seconds)] if seconds else [])
    trainer = LDNetTrainer(
        model=model,
        args=args,
        train_dataset=shuffled,
        eval_dataset=dev,
        processing_class=processor,
        callbacks=callbacks,
    )
    cap = f", at most {seconds:.0f} s" if seconds else ""
    print(f"[2/4] training LDNet (MiniLM-L6 encoder, {threads} threads): {steps} steps of 8 sentences{cap} ...",
          flush=True)
    t_train = time.time()
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if losses:
        print(f"      {trainer.state.global_step} steps in {time.time() - t_train:.0f} s; loss {losses[0]:.2f} -> "
              f"{losses[-1]:.2f}", flush=True)
    metrics = trainer.evaluate()
    print(f"[3/4] dev ({len(dev)} sentences): entity F1 = {metrics['eval_ent_f1']:.3f} "
          f"(P {metrics['eval_ent_precision']:.3f} / R {metrics['eval_ent_recall']:.3f}), relation strict F1 = "
          f"{metrics['eval_rel_strict_f1']:.3f} (P {metrics['eval_rel_strict_precision']:.3f} / "
          f"R {metrics['eval_rel_strict_recall']:.3f})", flush=True)

    picks = [r for r in test if r["ans"]["rel"]][:4]
    preds = trainer.extract([dict(r, ans={}) for r in picks])
    print("      test sentences (ok = predicted and gold, miss = gold only, extra = predicted only):")
    for rec, ans in zip(picks, preds):
        print(render_table(rec["text"], ans, rec["ans"]), flush=True)

    model_dir = out_dir / "model"
    trainer.model.save_pretrained(
        model_dir,
        # the same card information as every `ldnet-train` model (trainers/cli.py): schema, data, final metrics
        model_card={
            "schema": collect_schema(train["schema"]),
            "training_data": [{"name": "conll04", "split": "train", "records": len(train), "made_by": "make demo"},
                              {"name": "conll04", "split": "dev", "records": len(dev)}],
            "metrics": card_metrics(metrics),
            "instruction": "",
        },
    )
    processor.save_pretrained(model_dir)
    print(f"[4/4] saved model + processor to {model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir}"
          "  ->  pipeline('universal-ie', model=<that folder>, trust_remote_code=True)", flush=True)
    summary = {
        "steps": trainer.state.global_step,
        "dev_ent_f1": round(metrics["eval_ent_f1"], 4),
        "dev_rel_strict_f1": round(metrics["eval_rel_strict_f1"], 4),
        "seconds": round(time.time() - t0, 1),
        "model_dir": str(model_dir),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
