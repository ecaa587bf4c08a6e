#!/usr/bin/env python
"""CoNLL04 benchmark run (issue #6): teacher -> teacher scores -> distilled student, time-bounded, on CPU or GPU.

Stages (paper §3.3 / Alg. 1, SPEC §7.3 — the student starts from the *pre-trained encoder*, as in the paper):

1. convert CoNLL04 (``$LDNET_SHARED_DATA/conll04``) to unified records (relation triplets; ``--with_entities`` for
   joint NER + RE);
2. **teacher**: fine-tune LDNet on the encoder (default: the packaged all-MiniLM-L6-v2), evaluate on dev every epoch
   (early stopping, patience 3, best checkpoint on ``rel_strict_f1``), score dev and test;
3. **teacher scores**: run the best teacher over the training records (``ldnet-teacher-scores`` logic);
4. **student**: fine-tune a fresh LDNet on the same encoder with ``L_MR + L_LD + distill_weight * L_MT``;
5. write ``metrics.json`` (dev/test metrics of both, steps, seconds, distillation coverage), ``loss_curves.png``
   (train loss components and dev F1 per step) and print the test relation strict F1.

The time budget ``--max_minutes`` covers the whole run (``--teacher_share`` of it for the teacher stage, teacher
scoring included); the number of steps is planned from a short timing of forward/backward and decoding, and a
time-limit callback stops a run that would still overrun (the cosine schedule then does not reach zero). Each stage
runs at least one optimisation step, so a tiny budget on a slow machine can still be exceeded.

Example (smoke run, ~2 min on 2 CPU cores)::

    python bench/train_conll04.py --out runs/bench-smoke --max_minutes 2 --train_samples 48 --dev_samples 24 \
        --test_samples 24
Full run (the lead schedules CPU/GPU time)::

    python bench/train_conll04.py --out runs/conll04 --max_minutes 120
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import _common  # noqa: F401 - the offline switches and the repository on sys.path (before the imports below)

from processing.paths import minilm_path, shared_data_dir


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max_minutes", type=float, default=60.0, help="time budget of the whole run (minutes)")
    p.add_argument("--teacher_share", type=float, default=0.5, help="share of the budget for the teacher")
    p.add_argument("--data_dir", default=None, help="CoNLL04 source folder (default $LDNET_SHARED_DATA/conll04)")
    p.add_argument("--encoder", default=None, help="encoder folder (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--with_entities", action="store_true", help="joint NER + RE records")
    p.add_argument("--train_samples", type=int, default=None)
    p.add_argument("--dev_samples", type=int, default=None)
    p.add_argument("--test_samples", type=int, default=None)
    p.add_argument("--epochs", type=float, default=20, help="upper bound on epochs (paper: 20)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--eval_batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=2e-5, help="encoder lr (SPEC §7.1)")
    p.add_argument("--head_learning_rate", type=float, default=1e-4, help="heads lr (SPEC §7.1)")
    p.add_argument("--max_length", type=int, default=256)
    p.add_argument("--distill_weight", type=float, default=1.0)
    p.add_argument("--distill_target", choices=("logits", "probs"), default="logits")
    p.add_argument("--label_drop_mode", choices=("logit", "prob"), default="logit")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--seed", type=int, default=1227)
    p.add_argument("--skip_student", action="store_true")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------


def plan_steps(trainer, n_dev: int, budget_s: float, epochs: float, after: int = 0) -> dict:
    """Time two forward/backward passes and a decode batch; plan max_steps and evaluation cadence so that training,
    the dev evaluations and decoding ``after`` records at the end fit in ``budget_s``."""
    import torch

    model = trainer.model
    model.train()
    loader = trainer.get_train_dataloader()
    it = iter(loader)
    times = []
    for _ in range(4):  # the first pass is a cold start (allocations, kernels): dropped below
        try:
            batch = next(it)
        except StopIteration:
            break
        batch = trainer._prepare_inputs(batch)
        t = time.time()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        times.append(time.time() - t)
    model.zero_grad(set_to_none=True)
    trainer._ldnet_stats = None  # forget the timing passes in the logs
    warm = sorted(times[1:] or times)
    step_s = (warm[len(warm) // 2] if warm else 1.0) * 1.15  # + optimiser step
    records = trainer.eval_dataset
    sample = [records[i] for i in range(min(len(records), trainer.args.per_device_eval_batch_size))]
    t = time.time()
    with torch.no_grad():
        trainer.extract(sample)
    per_record = (time.time() - t) / max(1, len(sample)) * 1.2
    eval_s = per_record * n_dev + 2.0 * step_s  # + saving the checkpoint
    final_s = per_record * after
    budget_s = budget_s - final_s - (time.time() - t) - sum(times)
    steps_per_epoch = max(1, len(loader))
    epoch_s = steps_per_epoch * step_s + eval_s
    fit_epochs = max(budget_s - eval_s, step_s) / epoch_s
    total = max(1, int(min(epochs, fit_epochs) * steps_per_epoch))
    if fit_epochs >= 2:
        eval_steps = steps_per_epoch  # once per epoch
    else:  # less than two epochs fit: evaluate ~3 times anyway (early stopping needs several points)
        eval_steps = max(1, math.ceil(total / 3))
    return {"step_seconds": round(step_s, 3), "eval_seconds": round(eval_s, 2), "final_seconds": round(final_s, 2),
            "steps_per_epoch": steps_per_epoch, "max_steps": total, "eval_steps": eval_steps}


def run_stage(
    name: str, a, encoder: str, processor, train, dev, test, budget_s: float, teacher_store=None, reserve_records: int = 0
) -> dict:
    """Train one model within ``budget_s`` seconds, everything included: loading, planning, training, and the final
    dev + test decoding (plus ``reserve_records`` more records to decode afterwards, e.g. the teacher scores)."""
    from transformers import EarlyStoppingCallback

    from modeling_ldnet import LDNetModel
    from trainers import LDNetTrainer, LDNetTrainingArguments, TimeLimitCallback

    out = Path(a.out) / name
    t0 = time.time()
    model = LDNetModel.from_encoder(
        encoder,
        tokenizer=processor.tokenizer,
        label_drop_mode=a.label_drop_mode,
        distill_weight=a.distill_weight,
        distill_target=a.distill_target,
    )

    def make_args(max_steps: int, eval_steps: int) -> LDNetTrainingArguments:
        return LDNetTrainingArguments(
            output_dir=str(out),
            max_steps=max_steps,
            per_device_train_batch_size=a.batch_size,
            per_device_eval_batch_size=a.eval_batch_size,
            learning_rate=a.learning_rate,
            head_learning_rate=a.head_learning_rate,
            seed=a.seed,
            eval_strategy="steps",
            eval_steps=eval_steps,
            save_strategy="steps",
            save_steps=eval_steps,
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="rel_strict_f1",
            greater_is_better=True,
            logging_steps=max(1, min(10, eval_steps // 2)),
            report_to="none",
            disable_tqdm=True,
            dataloader_pin_memory=False,
            train_sampling_strategy="group_by_length",
        )

    trainer = LDNetTrainer(
        model=model, args=make_args(1, 1), train_dataset=train, eval_dataset=dev, processing_class=processor,
        teacher_store=teacher_store,
    )
    after = len(dev) + len(test) + reserve_records  # records decoded after training (final dev/test, teacher scores)
    plan = plan_steps(trainer, len(dev), budget_s - (time.time() - t0), a.epochs, after=after)
    print(f"[{name}] plan: {json.dumps(plan)}", flush=True)
    limit = TimeLimitCallback(max(1.0, budget_s - (time.time() - t0) - plan["final_seconds"]))
    trainer = LDNetTrainer(
        model=model,
        args=make_args(plan["max_steps"], plan["eval_steps"]),
        train_dataset=trainer.train_dataset,
        eval_dataset=dev,
        processing_class=processor,
        teacher_store=teacher_store,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=a.patience), limit],
    )
    train_result = trainer.train()
    train_s = time.time() - t0
    trainer.save_model(str(out / "best"))
    dev_m = trainer.evaluate(dev, metric_key_prefix="dev")
    test_out = trainer.predict(test, metric_key_prefix="test")
    with open(out / "test_predictions.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": rec["id"], "ans": ans}, ensure_ascii=False) + "\n" for rec, ans in zip(test, test_out.predictions))
    result = {
        "plan": plan,
        "steps": trainer.state.global_step,
        "stopped_by_time_limit": limit.stopped_at_step is not None,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_dev_metric": trainer.state.best_metric,
        "train_seconds": round(train_s, 1),
        "train_loss": train_result.training_loss,
        "dev": dev_m,
        "test": test_out.metrics,
        "log_history": trainer.state.log_history,
        "model_dir": str(out / "best"),
    }
    if teacher_store is not None:
        result["distillation"] = dict(trainer.teacher_counts)
    return result


def plot_curves(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, res in results.items():
        hist = res["log_history"]
        for key, style in (("loss", "-"), ("span_graph_loss", "--"), ("label_drop_loss", ":"), ("distill_loss", "-.")):
            pts = [(h["step"], h[key]) for h in hist if key in h]
            if pts:
                axes[0].plot(*zip(*pts), style, marker=".", label=f"{name} {key}")
        pts = [(h["step"], h["eval_rel_strict_f1"]) for h in hist if "eval_rel_strict_f1" in h]
        if pts:
            axes[1].plot(*zip(*pts), "o-", label=f"{name} dev rel strict F1")
        pts = [(h["step"], h["eval_ent_f1"]) for h in hist if "eval_ent_f1" in h]
        if pts:
            axes[1].plot(*zip(*pts), "s--", label=f"{name} dev ent F1")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("F1")
    axes[1].legend(fontsize=7)
    fig.suptitle("LDNet on CoNLL04: teacher and distilled student")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    import torch
    import transformers
    from transformers import AutoTokenizer, set_seed

    from modeling_ldnet import LDNetModel, LDNetProcessor
    from processing import convert_benchmark
    from trainers import TeacherScoreStore, compute_teacher_scores

    a = parse_args(argv)
    transformers.logging.set_verbosity_error()
    t_start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(a.seed)
    data_dir = Path(a.data_dir or shared_data_dir() / "conll04")
    encoder = a.encoder or str(minilm_path())
    opts = {"with_entities": True} if a.with_entities else {}
    dd, _ = convert_benchmark("conll04", data_dir, progress=False, **opts)

    def cut(ds, n):
        return ds if n is None or n >= len(ds) else ds.select(range(n))

    train, dev, test = cut(dd["train"], a.train_samples), cut(dd["dev"], a.dev_samples), cut(dd["test"], a.test_samples)
    print(f"CoNLL04: train {len(train)}, dev {len(dev)}, test {len(test)} records; encoder {encoder}", flush=True)
    processor = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(encoder), max_length=a.max_length)

    budget = a.max_minutes * 60.0 - (time.time() - t_start)
    share = a.teacher_share if not a.skip_student else 1.0
    results: dict = {}
    results["teacher"] = run_stage(
        "teacher", a, encoder, processor, train, dev, test, budget * share,
        reserve_records=0 if a.skip_student else len(train),
    )

    if not a.skip_student:
        t = time.time()
        teacher = LDNetModel.from_pretrained(results["teacher"]["model_dir"])
        device = "cuda" if torch.cuda.is_available() else "cpu"
        teacher.to(device)
        manifest = compute_teacher_scores(
            teacher, processor, train, out / "teacher_scores", batch_size=a.eval_batch_size, device=device,
            metadata={"model": results["teacher"]["model_dir"], "data": str(data_dir), "split": "train"},
        )
        del teacher
        scores_s = time.time() - t
        print(f"teacher scores: {manifest['num_entries']} features in {scores_s:.0f} s", flush=True)
        student_budget = max(1.0, a.max_minutes * 60.0 - (time.time() - t_start) - 5.0)
        results["student"] = run_stage(
            "student", a, encoder, processor, train, dev, test, student_budget,
            teacher_store=TeacherScoreStore(out / "teacher_scores"),
        )
        results["teacher_scores_seconds"] = round(scores_s, 1)

    summary = {
        "config": vars(a) | {"encoder": encoder, "data_dir": str(data_dir), "train": len(train), "dev": len(dev),
                             "test": len(test)},
        "total_seconds": round(time.time() - t_start, 1),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
    }
    for name in ("teacher", "student"):
        if name in results:
            r = results[name]
            summary[name] = {k: v for k, v in r.items() if k != "log_history"}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "log_history.json").write_text(
        json.dumps({k: v["log_history"] for k, v in results.items() if isinstance(v, dict) and "log_history" in v},
                   indent=1)
    )
    plot_curves({k: v for k, v in results.items() if isinstance(v, dict) and "log_history" in v}, out / "loss_curves.png")
    line = "test rel strict F1: teacher {:.4f}".format(results["teacher"]["test"]["test_rel_strict_f1"])
    if "student" in results:
        line += ", student {:.4f}".format(results["student"]["test"]["test_rel_strict_f1"])
    print(line, flush=True)
    print(f"wrote {out / 'metrics.json'} and {out / 'loss_curves.png'} ({summary['total_seconds']:.0f} s)", flush=True)
    return summary


if __name__ == "__main__":
    main()
