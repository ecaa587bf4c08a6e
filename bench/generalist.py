#!/usr/bin/env python
"""The generalist, measured: zero-shot NER on the held-out sets through the public pipeline, and K-shot fine-tuning
from the generalist vs from the raw encoder (issue #19).

    # zero-shot: WNUT-17, NCBI-disease, Twitter-2017 test sets; P / R / F1 per set, seen vs never-seen types
    python bench/generalist.py zeroshot --model runs/generalist                  # bare labels
    python bench/generalist.py zeroshot --model runs/generalist --descriptions   # + label descriptions

    # few-shot: K-shot CoNLL04 (joint) / WNUT-17 from the generalist vs from MiniLM, same steps, 3 seeds
    python bench/generalist.py fewshot --generalist runs/generalist --shots 5 10 50 --seeds 1 2 3

Zero-shot means: no record of the set's splits was trained on (``INDEX.md``, "held-out zero-shot targets"); the
pipeline gets the test text and the set's label names (optionally with the descriptions below, written once from
the data sets' annotation guidelines, never tuned on the sets), with the model's default threshold. A type is
*seen* when the model's trained labels (``config.trained_labels``, else ``pretrain_info.json``'s label pool) hold its
exact name, *unseen* otherwise; P / R / F1 are micro over (type, start, end) with exact offsets (SPEC §6).
Writes ``bench/results/generalist/zeroshot[_descriptions].json`` (F1 in 0-1) and ``fewshot.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "generalist"

#: held-out zero-shot targets: result key -> (registered benchmark, split)
TARGETS = {"wnut17": ("wnut17", "test"), "ncbi_disease": ("ncbi_disease", "test"), "twitter2017": ("twitter2017", "test")}

#: label descriptions for the held-out sets, from each set's annotation guidelines (WNUT-17 task paper, NCBI
#: disease corpus guidelines, CoNLL-2003 / UMT types); passed with --descriptions. Never tuned on the sets.
DESCRIPTIONS = {
    "person": "the name of a person, real or fictional, including online handles of people",
    "location": "the name of a place: a country, city, region, street, building or natural landmark",
    "corporation": "the name of a company, business or brand-owning corporation",
    "product": "the name of a product: a device, software, vehicle, food, drink or other thing sold or made",
    "creative work": "the title of a song, film, book, TV show, video game or other work of art",
    "group": "the name of a group of people that is not a company: a band, sports team, party or fan group",
    "disease": "a disease, disorder, syndrome, cancer, deficiency or inherited condition",
    "organization": "the name of an organization: a company, institution, team, party or agency",
    "miscellaneous": "another named thing: a nationality, event, title, language or product name",
}


def trained_labels(model_dir: Path) -> set[str] | None:
    """Every label name the model was trained on (config ``trained_labels``, else pretrain_info's label pool)."""
    cfg = json.loads((model_dir / "config.json").read_text())
    if cfg.get("trained_labels"):
        out: set[str] = set()
        for labels in cfg["trained_labels"].values():
            out.update(labels if isinstance(labels, list) else list(labels))
        return out
    info = model_dir / "pretrain_info.json"
    if info.is_file():
        pool = json.loads(info.read_text()).get("label_pool") or {}
        out = set()
        for per_field in (pool.get("lists") or {}).values():
            for labels in per_field.values():
                out.update(labels)
        return out
    return None


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4), "tp": tp, "pred": n_pred, "gold": n_gold}


def score_entities(gold: list[dict], pred: list[dict], types: set[str] | None = None) -> dict[str, float]:
    """Micro P / R / F1 over (record, type, start, end); ``types`` restricts to those types."""
    g = {(i, e["type"], *e["span"]) for i, a in enumerate(gold) for e in a.get("ent", [])
         if types is None or e["type"] in types}
    p = {(i, e["type"], *e["span"]) for i, a in enumerate(pred) for e in a.get("ent", [])
         if types is None or e["type"] in types}
    return prf(len(g & p), len(p), len(g))


def zeroshot(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(args.threads)
    _common.quiet_transformers()
    model_dir = Path(args.model)
    ie = pipeline("universal-ie", model=str(model_dir), trust_remote_code=True)
    seen_all = trained_labels(model_dir)
    results: dict[str, Any] = {}
    for key in args.sets:
        bench, split = TARGETS[key]
        recs = _common.load_split(bench, split)
        if args.max_samples:
            recs = recs[: args.max_samples]
        labels = list(recs[0]["schema"]["ent"])
        schema: dict[str, Any] = {"ent": {lab: DESCRIPTIONS[lab] for lab in labels} if args.descriptions else labels}
        t0 = time.time()
        preds = ie([{"text": r["text"], "schema": schema} for r in recs], batch_size=args.batch_size)
        secs = time.time() - t0
        gold = [r["ans"] for r in recs]
        seen = {lab for lab in labels if seen_all is not None and lab in seen_all}
        unseen = set(labels) - seen
        row = score_entities(gold, preds)
        row.update({
            "records": len(recs), "seconds": round(secs, 1), "labels": labels,
            "seen_types": sorted(seen), "unseen_types": sorted(unseen),
            "seen": score_entities(gold, preds, seen) if seen else None,
            "unseen": score_entities(gold, preds, unseen) if unseen else None,
            "per_type": {lab: score_entities(gold, preds, {lab}) for lab in labels},
            "gold_types": dict(Counter(e["type"] for a in gold for e in a.get("ent", []))),
        })
        results[key] = row
        print(f"{key}: P {row['p']:.3f} R {row['r']:.3f} F1 {row['f1']:.3f} ({len(recs)} records, {secs:.0f} s); "
              f"seen {sorted(seen)} unseen {sorted(unseen)}", flush=True)
    out = {**results, "_meta": {"model": str(model_dir), "descriptions": bool(args.descriptions),
                                "threshold": "model default", "machine": _common.machine_info()}}
    name = "zeroshot_descriptions" if args.descriptions else "zeroshot"
    path = Path(args.out_dir) / f"{name}{args.suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    if args.update_card:
        record_on_card(model_dir, results, args.descriptions)
    return out


def record_on_card(model_dir: Path, results: dict[str, Any], descriptions: bool) -> None:
    """The zero-shot table on the model's card (README.md + config ``model_card_info.metrics``), beside what the
    training run recorded: one row per held-out set, P / R / F1 in 0-1."""
    from transformers import AutoConfig

    from modeling_ldnet.modelcard_ldnet import update_model_card

    config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=True)
    info = dict(getattr(config, "model_card_info", None) or {})
    metrics = dict(info.get("metrics") or {})
    how = "zero-shot, label descriptions" if descriptions else "zero-shot"
    for key, row in results.items():
        metrics[f"{key} test ({how})"] = {"ent_precision": row["p"], "ent_recall": row["r"], "ent_f1": row["f1"]}
    update_model_card(model_dir, config, metrics=metrics)
    print(f"recorded the zero-shot rows on {model_dir / 'README.md'}")


#: the mix's NER sets whose dev splits fit the generalist's decode thresholds (``calibrate``): never a held-out set
CALIBRATION_SETS = ("conll03", "twitter2015", "bionlp13cg", "bionlp13pc", "bionlp11id", "bionlp13ge", "anatem", "bc2gm",
                    "linnaeus", "ex_ptm")


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Fit ``config.decode_channel_thresholds`` on a seeded sample of the mix's dev splits (each set's own labels, the
    model's default instruction) and write them into the model folder: the held-out sets are never looked at."""
    import random

    import torch
    from transformers import AutoModel

    from modeling_ldnet import LDNetProcessor
    from modeling_ldnet.modelcard_ldnet import update_model_card
    from trainers.calibration import calibrate_thresholds

    held_out = set(TARGETS) | {"conll04"}
    if held_out & set(args.sets):
        raise ValueError(f"calibrate: {sorted(held_out & set(args.sets))} are held out (zero-/few-shot targets)")
    torch.set_num_threads(args.threads)
    _common.quiet_transformers()
    model_dir = Path(args.model)
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    proc = LDNetProcessor.from_pretrained(str(model_dir))
    instruction = getattr(model.config, "default_instruction", None) or ""
    records: list[dict] = []
    for name in args.sets:
        dev = _common.load_split(name, "dev")
        random.Random(args.seed).shuffle(dev)
        records += [{**r, "instruction": instruction} for r in dev[: args.per_corpus]]
    t0 = time.time()
    res = calibrate_thresholds(model, proc, records, batch_size=args.batch_size)
    out = {"model": str(model_dir), "sets": list(args.sets), "per_corpus": args.per_corpus, "records": len(records),
           "metric": res.metric, "before": round(res.before, 4), "after": round(res.after, 4),
           "base_threshold": res.base_threshold, "thresholds": res.thresholds, "seconds": round(time.time() - t0, 1)}
    print(f"calibrated on {len(records)} dev records of {len(args.sets)} mix sets: {res.metric} "
          f"{res.before:.4f} -> {res.after:.4f}, thresholds {res.thresholds}", flush=True)
    if args.apply:
        update_model_card(model_dir, model.config, proc)  # config.json (+ card) with decode_channel_thresholds
        print(f"wrote the thresholds into {model_dir / 'config.json'}")
    path = Path(args.out_dir) / f"calibration{args.suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def _step_batches(kind: str, n_batches: int, batch_size: int, seed: int) -> list[list[dict]]:
    """``n_batches`` seeded random batches: ``pretrain`` = records of the generalist mix as pre-training shows them
    (augmented schema, no instruction); ``finetune`` = CoNLL04 joint training records as ldnet-train reads them."""
    import random

    rng = random.Random(seed)
    if kind == "pretrain":
        from trainers.pretrain import AugmentedRecordDataset, build_augmenters, build_pretrain_mix, load_recipe

        recipe = load_recipe(REPO / "examples" / "recipes" / "generalist.json")
        mix = build_pretrain_mix(recipe, seed=1, cache_dir=str(REPO / "runs" / "cache" / "generalist"))
        instructions, schema_aug = build_augmenters(recipe, None, 1, mix.label_pool)
        ds = AugmentedRecordDataset(mix.dataset, None, instructions, schema_aug, seed=1)
        pick = rng.sample(range(len(ds)), n_batches * batch_size)
        recs = [ds.record(i, 0) for i in pick]
    else:
        recs = _common.load_split("conll04", "train", with_entities=True)
        recs = [recs[i] for i in rng.sample(range(len(recs)), n_batches * batch_size)]
    return [recs[i * batch_size:(i + 1) * batch_size] for i in range(n_batches)]


def _step_model(max_length: int):
    import torch

    from trainers.trainer import ldnet_parameter_groups

    proc = _common.make_processor(max_length=max_length)
    model = _common.make_ldnet(proc).train()
    opt = torch.optim.AdamW(ldnet_parameter_groups(model, 2e-4, 2e-3, encoder_prefix="plm."))
    return model, opt, proc


def _train_step(model: Any, opt: Any, proc: Any, records: list[dict]) -> int:
    """Encode (the collator's work) + forward + backward + AdamW on one batch; returns its padded token count."""
    batch = _common.ldnet_batch(proc, records)
    model(**batch).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return int(batch["input_ids"].numel())


def _child_memory(kind: str, batch_size: int, steps: int, max_length: int) -> dict[str, Any]:
    """In a fresh process: peak RSS (VmHWM) of ``steps`` training steps above the loaded model and batches."""
    import torch

    torch.set_num_threads(1)
    batches = _step_batches(kind, steps, batch_size, seed=2)
    model, opt, proc = _step_model(max_length)

    def kib(field: str) -> int:
        return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith(field + ":"))

    loaded = kib("VmRSS")
    for b in batches:
        _train_step(model, opt, proc, b)
    peak = kib("VmHWM")
    return {"kind": kind, "loaded_mib": loaded / 1024, "peak_mib": peak / 1024, "above_loaded_mib": (peak - loaded) / 1024}


def step(args: argparse.Namespace) -> dict[str, Any]:
    """A pre-training step on the generalist mix vs a plain CoNLL04 fine-tuning step, same model, batch size and
    max length: time (interleaved in one process, medians over different batches) and peak memory (each kind in
    its own child process), as ratios."""
    import torch

    torch.set_num_threads(1)
    _common.quiet_transformers()
    batches = {k: _step_batches(k, args.steps + 1, args.batch_size, seed=1) for k in ("pretrain", "finetune")}
    model, opt, proc = _step_model(args.max_length)
    tokens: dict[str, list[int]] = {k: [] for k in batches}
    cursor = dict.fromkeys(batches, 0)

    def run(kind: str) -> None:
        b = batches[kind][cursor[kind] % len(batches[kind])]
        cursor[kind] += 1
        tokens[kind].append(_train_step(model, opt, proc, b))

    times = _common.interleaved({k: (lambda k=k: run(k)) for k in batches}, repeats=args.steps, warmup=1)
    memory = {}
    for kind in batches:
        out = subprocess.run([sys.executable, __file__, "_memory", kind, str(args.batch_size), str(args.memory_steps),
                              str(args.max_length)], capture_output=True, text=True, check=True, cwd=REPO)
        memory[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    labels = {k: statistics.mean(sum(len(v) if isinstance(v, list) else len(v or {}) for v in r["schema"].values())
                                 for b in batches[k] for r in b) for k in batches}
    res = {
        "batch_size": args.batch_size, "max_length": args.max_length, "steps": args.steps, "threads": 1,
        "time": {k: _common.summary(v) for k, v in times.items()},
        "time_ratio_pretrain_over_finetune": _common.med(times["pretrain"]) / _common.med(times["finetune"]),
        "padded_tokens_per_batch": {k: statistics.mean(v) for k, v in tokens.items()},
        "schema_labels_per_record": labels,
        "memory": memory,
        "peak_ratio_pretrain_over_finetune": memory["pretrain"]["peak_mib"] / memory["finetune"]["peak_mib"],
        "above_loaded_ratio_pretrain_over_finetune": (memory["pretrain"]["above_loaded_mib"]
                                                      / memory["finetune"]["above_loaded_mib"]),
        "machine": _common.machine_info(),
    }
    path = Path(args.out_dir) / f"step{args.suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("time_ratio_pretrain_over_finetune", "peak_ratio_pretrain_over_finetune",
                                          "padded_tokens_per_batch", "schema_labels_per_record")}), flush=True)
    return res


def fewshot(args: argparse.Namespace) -> dict[str, Any]:
    """K-shot runs of ``ldnet-fewshot`` (sampling + ldnet-train + test) from both starts, same steps and seeds."""
    starts = {"generalist": args.generalist, "raw": args.raw or str(_common.minilm_path())}
    starts = {k: v for k, v in starts.items() if args.only in (None, k)}
    metric = {"conll04": "test_rel_strict_f1", "wnut17": "test_ent_f1"}
    path = Path(args.out_dir) / f"fewshot{args.suffix}.json"
    out: dict[str, Any] = json.loads(path.read_text()) if path.is_file() and args.resume else {}
    for target in args.targets:
        for k in args.shots:
            for start, model in starts.items():
                cell = out.setdefault(target, {}).setdefault(str(k), {})
                if start in cell and len(cell[start]) == len(args.seeds):
                    continue
                run_dir = Path(args.work_dir) / f"{target}-{k}shot-{start}"
                # both starts see the same K-shot sample, steps and recipe; records without instructions (the
                # generalist is trained without them: the "w/o Inst." setting)
                opts = "instruction=" + (",with_entities=true" if target == "conll04" else "")
                cmd = [sys.executable, str(REPO / "examples" / "fewshot.py"), "--model_name_or_path", model, "--benchmark", target,
                       "--benchmark_options", opts, "--shots", str(k), "--seeds", *map(str, args.seeds),
                       "--output_dir", str(run_dir), "--preset", "quick",
                       # after the preset's flags (the last one wins): fixed steps, no dev selection
                       "--max_steps", str(args.max_steps), "--per_device_train_batch_size", "8",
                       "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                       "--early_stopping_patience", "0", "--learning_rate", str(args.lr),
                       "--head_learning_rate", str(args.head_lr), "--max_length", "256", "--warmup_steps", "0.1",
                       "--disable_tqdm", "true"]
                t0 = time.time()
                subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
                summary = json.loads((run_dir / "summary.json").read_text())
                per_seed = [r["test"][metric[target]] for r in summary["runs"] if r["k"] == k]
                cell[start] = [round(float(x), 4) for x in per_seed]
                print(f"{target} {k}-shot {start}: {metric[target]} per seed {cell[start]} "
                      f"(mean {statistics.mean(per_seed):.4f}; {time.time() - t0:.0f} s)", flush=True)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    z = sub.add_parser("zeroshot", help="zero-shot NER on the held-out sets through the pipeline")
    z.add_argument("--model", required=True)
    z.add_argument("--sets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    z.add_argument("--descriptions", action="store_true", help="give every label its description (GLiNER2 form)")
    z.add_argument("--max_samples", type=int, default=None)
    z.add_argument("--batch_size", type=int, default=16)
    z.add_argument("--threads", type=int, default=1)
    z.add_argument("--update_card", action="store_true", help="write the table onto the model's card (README.md)")
    f = sub.add_parser("fewshot", help="K-shot fine-tuning from the generalist vs the raw encoder")
    f.add_argument("--generalist", required=True)
    f.add_argument("--raw", default=None, help="encoder folder (default: the packaged MiniLM)")
    f.add_argument("--targets", nargs="+", default=["conll04", "wnut17"], choices=["conll04", "wnut17"])
    f.add_argument("--shots", type=int, nargs="+", default=[5, 10, 50])
    f.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    f.add_argument("--max_steps", type=int, default=200)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("--head_lr", type=float, default=1e-3)
    f.add_argument("--work_dir", default=str(REPO / "runs" / "generalist-fewshot"))
    f.add_argument("--resume", action="store_true", help="keep cells already in fewshot.json")
    f.add_argument("--only", choices=["generalist", "raw"], default=None,
                   help="run one start only (e.g. the raw encoder while the generalist trains); cells merge on --resume")
    c = sub.add_parser("calibrate", help="fit the decode thresholds on the mix's dev splits (never a held-out set)")
    c.add_argument("--model", required=True)
    c.add_argument("--sets", nargs="+", default=list(CALIBRATION_SETS))
    c.add_argument("--per_corpus", type=int, default=200, help="dev records per set (seeded sample)")
    c.add_argument("--seed", type=int, default=1227)
    c.add_argument("--batch_size", type=int, default=16)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--apply", action="store_true", help="write the thresholds into the model folder's config.json")
    s = sub.add_parser("step", help="a pre-training step vs a fine-tuning step: time and peak memory ratios")
    s.add_argument("--steps", type=int, default=12)
    s.add_argument("--memory_steps", type=int, default=4)
    s.add_argument("--batch_size", type=int, default=8)
    s.add_argument("--max_length", type=int, default=256)
    for p in (z, f, c, s):
        p.add_argument("--out_dir", default=str(OUT))
        p.add_argument("--suffix", default="", help="results file suffix, e.g. _smoke")
    args = ap.parse_args(argv)
    return {"zeroshot": zeroshot, "fewshot": fewshot, "calibrate": calibrate, "step": step}[args.cmd](args)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_memory"]:  # child process of `step`
        print(json.dumps(_child_memory(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
