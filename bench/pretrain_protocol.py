#!/usr/bin/env python
"""Collect the issue-#9 protocol run (pre-train -> w/ PT vs w/o PT fine-tuning, K-shot, zero-shot, label order) into
one JSON, one plot and one Markdown table. Trains nothing: it reads the folders the commands wrote.

The commands (README "Pre-training, few-shot and zero-shot"; bench/RESULTS.md §7 has the exact ones of our run):

    python examples/pretrain.py ... --output_dir runs/pt-cpu
    python examples/run_uie.py --model_name_or_path runs/pt-cpu ... --output_dir runs/conll04-ft-pt
    python examples/run_uie.py --model_name_or_path $MINILM ...    --output_dir runs/conll04-ft-raw
    python examples/fewshot.py --model_name_or_path runs/pt-cpu ... --output_dir runs/fewshot-conll04-5
    python examples/zeroshot.py --model runs/pt-cpu ... --output_dir runs/zeroshot-twitter2017
    python bench/label_order.py --model runs/conll04-ft-pt ...     (-> bench/results/label_order.json)

then

    python bench/pretrain_protocol.py --pretrain runs/pt-cpu --ft_pt runs/conll04-ft-pt --ft_raw runs/conll04-ft-raw \\
        --fewshot runs/fewshot-conll04-5 --zeroshot runs/zeroshot-twitter2017 --label_order bench/results/label_order.json

Any input may be left out; what is given must exist (a missing file is an error naming it, never a silent blank).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C

#: fine-tuning runs: option -> (table row, plot label)
FT_RUNS = {
    "ft_pt": ("fine-tune CoNLL04 from the pre-trained checkpoint (w/ PT)", "w/ PT"),
    "ft_raw": ("fine-tune CoNLL04 from the raw encoder (w/o PT)", "w/o PT"),
    "ft_pt_shuffle": ("fine-tune CoNLL04 w/ PT, schema label order shuffled per record and epoch", "w/ PT + shuffle"),
}


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"expected {path} (did the run finish?)")
    return json.loads(path.read_text(encoding="utf-8"))


def _history(run_dir: Path) -> list[dict[str, Any]]:
    """``trainer_state.json`` log history (the last checkpoint's copy when the folder root has none)."""
    p = run_dir / "trainer_state.json"
    if not p.is_file():
        cks = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda q: int(q.parent.name.split("-")[1]))
        if not cks:
            raise FileNotFoundError(f"expected {p} (did the run finish?)")
        p = cks[-1]
    return _read(p).get("log_history", [])


def collect_pretrain(run_dir: Path) -> dict[str, Any]:
    info = _read(run_dir / "pretrain_info.json")
    hist = _history(run_dir)
    losses = [(h["step"], h["loss"]) for h in hist if "loss" in h and "step" in h]
    m = info.get("metrics", {})
    return {
        "dir": str(run_dir),
        "recipe": info.get("recipe_file"),
        "corpora": {c["name"]: c["used"] for c in info.get("corpora", [])},
        "records": m.get("train_records"),
        "steps": m.get("stopped_by_time_limit_at_step") or (hist[-1].get("step") if hist else None),
        "train_minutes": round(m.get("train_runtime", float("nan")) / 60, 1),
        "epochs": next((h.get("epoch") for h in reversed(hist) if "epoch" in h), None),
        "loss_curve": losses,
        "instruction_mode": info.get("instruction_mode"),
        "schema_augmentation": info.get("schema_augmentation"),
    }


def collect_finetune(run_dir: Path, metric: str = "rel_strict_f1") -> dict[str, Any]:
    res = _read(run_dir / "all_results.json")
    hist = _history(run_dir)
    dev_curve = [(h["epoch"], h[f"eval_{metric}"]) for h in hist if f"eval_{metric}" in h and "epoch" in h]
    return {
        "dir": str(run_dir),
        "test": {k: v for k, v in res.items() if k.startswith("test_") and isinstance(v, float)},
        "dev_best": max((v for _, v in dev_curve), default=None),
        "dev_curve": dev_curve,
        "epochs": res.get("epoch"),
        "train_minutes": round(res.get("train_runtime", float("nan")) / 60, 1),
        "metric": metric,
    }


def per_corpus_loss(run_dir: Path, n: int, cache_dir: str | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Loss of the saved pre-trained model on ``n`` training records of every corpus of its recipe, as trained
    (instruction sampled + schema augmented, epoch 0) and canonical (the converter's own instruction and schema, as
    evaluation sees them): shows which tasks the pre-training learnt and what the augmentation costs."""
    import torch

    from trainers import LDNetDataCollator
    from trainers.fewshot import load_checkpoint
    from trainers.pretrain import AugmentedRecordDataset, build_augmenters, build_pretrain_mix

    info = _read(run_dir / "pretrain_info.json")
    recipe, seed = info["recipe"], int(info.get("seed", 1227))
    C.quiet_transformers()
    model, processor = load_checkpoint(str(run_dir), None)
    model.eval()
    mix = build_pretrain_mix(recipe, seed=seed, max_records_per_corpus=n, exclude=info.get("excluded") or [],
                             cache_dir=cache_dir)
    instructions, schema_aug = build_augmenters(recipe, None, seed, mix.label_pool)
    views = {"augmented": AugmentedRecordDataset(mix.dataset, processor, instructions, schema_aug, seed=seed),
             "canonical": AugmentedRecordDataset(mix.dataset, processor, None, None, seed=seed)}
    collate = LDNetDataCollator(processor)
    keys = ("input_ids", "attention_mask", "span_graph_links", "label_drop_targets")
    corpus_of = mix.dataset["corpus"]
    out: dict[str, Any] = {}
    for name in dict.fromkeys(corpus_of):
        idx = [i for i, c in enumerate(corpus_of) if c == name]
        row = {"records": len(idx)}
        for view, ds in views.items():
            total = 0.0
            for k in range(0, len(idx), batch_size):
                batch = collate([ds[i] for i in idx[k:k + batch_size]])
                with torch.no_grad():
                    loss = model(**{key: batch[key] for key in keys if key in batch}).loss
                total += float(loss) * len(idx[k:k + batch_size])
            row[view] = total / len(idx)
        out[name] = row
    return out


def collect(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.pretrain:
        out["pretrain"] = collect_pretrain(Path(args.pretrain))
        if args.per_corpus_loss:
            out["pretrain"]["per_corpus_loss"] = per_corpus_loss(Path(args.pretrain), args.per_corpus_loss,
                                                                 args.cache_dir)
    for key in FT_RUNS:
        if getattr(args, key):
            out[key] = collect_finetune(Path(getattr(args, key)), args.metric)
    if args.fewshot:
        s = _read(Path(args.fewshot) / "summary.json")
        metric = s["metric"]
        out["fewshot"] = {
            "dir": args.fewshot,
            "metric": metric,
            "seeds": s["seeds"],
            "summary": {k: v.get(metric) for k, v in s["summary"].items()},
            "per_seed": [{"k": r["k"], "seed": r["seed"], "train_records": r["train_records"],
                          "test": r["test"].get(metric), "epochs_run": r.get("epochs_run")} for r in s["runs"]],
        }
    if args.zeroshot:
        z = _read(Path(args.zeroshot) / "zeroshot_results.json")
        out["zeroshot"] = {k: z.get(k) for k in ("model", "data", "split", "records", "in_pretraining_mix",
                                                 "seen_labels", "unseen_labels", "metrics")}
    for path in args.label_order or []:
        lo = _read(Path(path))
        out.setdefault("label_order", []).append(
            {"model": lo["model"], "data": lo["data"], "records": lo["records"], "summary": lo["summary"],
             "per_order": [o["metrics"].get(lo["summary"]["metric"]) for o in lo["orders"]]})
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"
    lines = ["| stage | setting | result |", "|---|---|---|"]
    if "pretrain" in res:
        p = res["pretrain"]
        lines.append(f"| pre-training | {p['records']} records of {len(p['corpora'])} corpora, {p['steps']} steps "
                     f"({p['epochs']:.2f} epochs), {p['train_minutes']} min | final logged loss "
                     f"{p['loss_curve'][-1][1]:.3f} (first {p['loss_curve'][0][1]:.3f}) |")
    for name, row in (res.get("pretrain", {}).get("per_corpus_loss") or {}).items():
        lines.append(f"| pre-trained model's loss on {row['records']} {name} train records | augmented (as trained) / "
                     f"canonical (as evaluated) | {row['augmented']:.3f} / {row['canonical']:.3f} |")
    for key, (name, _) in FT_RUNS.items():
        if key in res:
            f = res[key]
            t = f["test"]
            lines.append(f"| {name} | {f['epochs']} epochs, {f['train_minutes']} min, best dev "
                         f"{pct(f['dev_best'])} | test {f['metric']} **{pct(t.get('test_' + f['metric']))}** "
                         f"(P {pct(t.get('test_rel_strict_precision'))}, R {pct(t.get('test_rel_strict_recall'))}) |")
    if "fewshot" in res:
        fs = res["fewshot"]
        for k, ms in fs["summary"].items():
            per = ", ".join(pct(r["test"]) for r in fs["per_seed"] if str(r["k"]) == k)
            lines.append(f"| {k}-shot CoNLL04 from the pre-trained checkpoint | seeds {fs['seeds']} | "
                         f"{fs['metric'].removeprefix('test_')} **{pct(ms['mean'])} ± {pct(ms['std'])}** ({per}) |")
    if "zeroshot" in res:
        z = res["zeroshot"]
        f1 = {k: v for k, v in z["metrics"].items() if k.endswith("_f1")}
        held = "held out of the mix" if z["in_pretraining_mix"] is False else "IN the mix"
        lines.append(f"| zero-shot {z['data']} {z['split']} ({z['records']} records) | {held}; unseen labels: "
                     f"{', '.join(z['unseen_labels'] or []) or 'none'} | "
                     + ", ".join(f"{k.removeprefix('test_')} **{pct(v)}**" for k, v in f1.items()) + " |")
    for lo in res.get("label_order", []):
        s = lo["summary"]
        lines.append(f"| label order, {lo['data']} test ({lo['records']}) | original + 5 permutations of "
                     f"`{lo['model']}` | {s['metric'].removeprefix('test_')} original {pct(s['original'])}, permuted "
                     f"{pct(s['permuted_mean'])} ± {pct(s['permuted_std'])}, spread "
                     f"{pct(s['spread_max_minus_min_incl_original'])} |")
    return lines


def plot(res: dict[str, Any], name: str = "pretrain_protocol"):
    plt = C.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    if "pretrain" in res:
        steps, losses = zip(*res["pretrain"]["loss_curve"])
        axes[0].plot(steps, losses)
        axes[0].set_title("pre-training loss (mix)", fontsize=9)
        axes[0].set_xlabel("step")
    for key, (_, label) in FT_RUNS.items():
        if key in res and res[key]["dev_curve"]:
            ep, f1 = zip(*res[key]["dev_curve"])
            axes[1].plot(ep, [100 * v for v in f1], marker="o", label=label)
    axes[1].set_title("CoNLL04 dev rel strict F1 while fine-tuning", fontsize=9)
    axes[1].set_xlabel("epoch")
    axes[1].legend(fontsize=8)
    bars, vals, errs = [], [], []
    for key, (_, label) in FT_RUNS.items():
        if key in res:
            bars.append("CoNLL04\n" + label)
            vals.append(100 * (res[key]["test"].get("test_" + res[key]["metric"]) or 0))
            errs.append(0)
    if "fewshot" in res:
        for k, ms in res["fewshot"]["summary"].items():
            bars.append(f"CoNLL04\n{k}-shot")
            vals.append(100 * ms["mean"])
            errs.append(100 * ms["std"])
    if "zeroshot" in res:
        z = res["zeroshot"]
        f1 = [v for k, v in z["metrics"].items() if k.endswith("ent_f1")]
        if f1:
            bars.append(f"{z['data']}\nzero-shot")
            vals.append(100 * f1[0])
            errs.append(0)
    b = axes[2].bar(bars, vals, yerr=errs, capsize=4, color="C2")
    C.label_bars(axes[2], b, vals, fontsize=8)
    axes[2].set_title("test F1 (%), MiniLM-L6 on CPU", fontsize=9)
    axes[2].tick_params(axis="x", labelsize=7)
    return C.save_plot(fig, name)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrain", default=None, help="pre-training output folder (pretrain_info.json)")
    ap.add_argument("--ft_pt", default=None, help="run_uie output folder, fine-tuned from --pretrain")
    ap.add_argument("--ft_raw", default=None, help="run_uie output folder, fine-tuned from the raw encoder")
    ap.add_argument("--ft_pt_shuffle", default=None, help="run_uie output folder, from --pretrain with --schema_shuffle")
    ap.add_argument("--fewshot", default=None, help="examples/fewshot.py output folder (summary.json)")
    ap.add_argument("--zeroshot", default=None, help="examples/zeroshot.py output folder (zeroshot_results.json)")
    ap.add_argument("--label_order", nargs="+", default=None, help="bench/label_order.py result JSON(s)")
    ap.add_argument("--metric", default="rel_strict_f1", help="fine-tuning metric to report")
    ap.add_argument("--per_corpus_loss", type=int, default=0, metavar="N",
                    help="also load the pre-trained model and report its loss on N records of every corpus")
    ap.add_argument("--cache_dir", default=None, help="converted-benchmark cache of the pre-training run")
    ap.add_argument("--name", default="pretrain_protocol")
    args = ap.parse_args(argv)
    res = collect(args)
    lines = markdown(res)
    print("\n".join(lines))
    path = C.write_json(args.name, {**res, "markdown": lines})
    print(f"wrote {path} and {plot(res, args.name)}")
    return res


if __name__ == "__main__":
    main()
