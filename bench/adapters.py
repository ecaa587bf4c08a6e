"""LoRA adapters vs full fine-tuning (issue 28). Three commands:

* ``step``: one training step (forward + backward + AdamW) of LDNet on the real MiniLM encoder, LoRA (peft, the
  default targets and heads in full) vs full fine-tuning: time (interleaved in one process, medians) and peak
  memory (each mode in its own child process: VmHWM above the loaded model), as ratios; and the bytes of an
  adapter folder vs the full model folder. 1 thread.
* ``switch``: serving several adapters on one base (``serving.adapters.AdapterRegistry``): peft ``set_adapter``
  on one unmerged model vs one merged copy per adapter, forward time over batches of mixed adapters.
* ``forgetting``: fine-tune a trained base on a task (CoNLL04) with full fine-tuning, ``--freeze_encoder`` and
  ``--lora`` for N minutes and seeds; the task's test F1 and the base's other task (CoNLL03) F1 before / after;
  ``lora.json`` with the means (the issue's goals).

    python bench/adapters.py step --steps 6
    python bench/adapters.py switch --adapters 4 --batches 16
    python bench/adapters.py forgetting --base runs/conll03 --task conll04 --other conll03 --minutes 20 \
        --seeds 1227 1228 1229 --out bench/results/adapters
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as C  # first: the offline environment and sys.path
import torch

from serving.adapters import AdapterRegistry, adapter_folder_bytes
from trainers.adapters import AdapterArguments, add_lora, load_adapter_model, save_adapter_folder
from trainers.cli import train_main
from trainers.loading import load_checkpoint, load_model_and_processor
from trainers.trainer import LDNetTrainer, LDNetTrainingArguments, ldnet_parameter_groups


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def make_base(folder: Path, max_length: int) -> Path:
    """A fresh LDNet on MiniLM (new-model defaults), saved as the base folder the adapters are trained on."""
    proc = C.make_processor(max_length=max_length)
    model = C.make_ldnet(proc)
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def records(n: int) -> list[dict]:
    return C.load_split("conll04", "train")[:n]


def build(mode: str, base: Path, lr: float = 5e-4):
    """``(model, optimizer, processor)`` for ``full`` or ``lora`` on the saved base (the trainer's parameter
    groups: frozen tensors never reach the optimiser)."""
    model, proc = load_model_and_processor(base, require_ldnet=True)
    if mode == "lora":
        model = add_lora(model, AdapterArguments(lora=True), base)
    prefix = "base_model.model.plm." if mode == "lora" else "plm."
    opt = torch.optim.AdamW(ldnet_parameter_groups(model, lr, 1e-4, encoder_prefix=prefix))
    model.train()
    return model, opt, proc


def train_step(model, opt, batch: dict) -> None:
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def child_memory(mode: str, base: Path, batch_size: int, steps: int) -> dict[str, Any]:
    """Run in a fresh process: peak RSS of ``steps`` training steps above the loaded model."""
    torch.set_num_threads(1)
    model, opt, proc = build(mode, base)
    batch = C.ldnet_batch(proc, records(batch_size))
    loaded = _status_kib("VmRSS")
    for _ in range(steps):
        train_step(model, opt, batch)
    peak = _status_kib("VmHWM")
    return {"mode": mode, "rss_loaded_mib": loaded / 1024, "peak_mib": peak / 1024,
            "training_peak_above_loaded_mib": (peak - loaded) / 1024}


def cmd_step(a: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_adapters_"))
    base = make_base(work / "base", a.max_length)
    batch_recs = records(a.batch_size)
    models = {m: build(m, base) for m in ("full", "lora")}
    batches = {m: C.ldnet_batch(models[m][2], batch_recs) for m in models}
    times = C.interleaved({m: (lambda m=m: train_step(models[m][0], models[m][1], batches[m])) for m in models},
                          repeats=a.steps, warmup=1)
    memory = {}
    for mode in ("full", "lora"):
        out = subprocess.run([sys.executable, __file__, "_memory", mode, str(base), str(a.batch_size),
                              str(a.memory_steps)], capture_output=True, text=True, check=True)
        memory[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    lora_model = models["lora"][0]
    save_adapter_folder(lora_model, work / "adapter", models["lora"][2])
    n_trainable = {m: sum(p.numel() for p in models[m][0].parameters() if p.requires_grad) for m in models}
    result = {
        "encoder": "all-MiniLM-L6-v2", "batch_size": a.batch_size, "max_length": a.max_length,
        "tokens_per_record": int(batches["full"]["input_ids"].shape[1]), "threads": torch.get_num_threads(),
        "step_time": {m: C.summary(t) for m, t in times.items()},
        "step_time_ratio_lora_over_full": C.med(times["lora"]) / C.med(times["full"]),
        "memory": memory,
        "peak_memory_ratio_lora_over_full": memory["lora"]["peak_mib"] / memory["full"]["peak_mib"],
        "training_peak_above_loaded_ratio_lora_over_full": (memory["lora"]["training_peak_above_loaded_mib"]
                                                            / memory["full"]["training_peak_above_loaded_mib"]),
        "trainable_parameters": n_trainable,
        "adapter_bytes": adapter_folder_bytes(work / "adapter"),
        "adapter_weights_bytes": (work / "adapter" / "adapter_model.safetensors").stat().st_size,
        "model_bytes": adapter_folder_bytes(base),
        "model_weights_bytes": (base / "model.safetensors").stat().st_size,
    }
    result["adapter_over_model_bytes"] = result["adapter_bytes"] / result["model_bytes"]
    return result


def cmd_switch(a: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_switch_"))
    base = make_base(work / "base", a.max_length)
    folders = {}
    for i in range(a.adapters):  # random non-zero LoRA weights: the forward cost is what is measured
        model, proc = load_model_and_processor(base, require_ldnet=True)
        peft_model = add_lora(model, AdapterArguments(lora=True), base)
        gen = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for _, p in peft_model.named_parameters():
                if p.requires_grad:
                    p.add_(torch.randn(p.shape, generator=gen) * 0.01)
        folders[f"a{i}"] = save_adapter_folder(peft_model, work / f"a{i}", proc)
    regs = {mode: AdapterRegistry(base, folders, mode=mode) for mode in ("switch", "merged")}
    recs = C.load_split("conll04", "test")[: a.batch_size * a.batches]
    order = [f"a{i % a.adapters}" for i in range(a.batches)]  # mixed: every batch another adapter

    def run(mode: str) -> None:
        for j, name in enumerate(order):
            with regs[mode].use(name) as (model, proc), torch.no_grad():
                enc = proc(recs[j * a.batch_size:(j + 1) * a.batch_size], return_tensors="pt")
                model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])

    times = C.interleaved({m: (lambda m=m: run(m)) for m in regs}, repeats=a.repeats, warmup=1)
    return {"adapters": a.adapters, "batches": a.batches, "batch_size": a.batch_size,
            "time": {m: C.summary(t) for m, t in times.items()},
            "switch_over_merged_time": C.med(times["switch"]) / C.med(times["merged"])}


def evaluate(folder: Path, test: list[dict], batch_size: int) -> dict[str, float]:
    """Test metrics of a saved LDNet folder or an adapter folder."""
    if (folder / "adapter_config.json").is_file():
        model, proc = load_adapter_model(folder)
    else:
        model, proc = load_checkpoint(str(folder))
    args = LDNetTrainingArguments(output_dir=tempfile.mkdtemp(), per_device_eval_batch_size=batch_size,
                                  report_to="none", use_cpu=True, disable_tqdm=True)
    return LDNetTrainer(model=model, args=args, processing_class=proc).predict(test).metrics


def split_records(source: str, split: str) -> list[dict]:
    """A registered benchmark's split, or ``split.jsonl`` of a converted folder."""
    folder = Path(source)
    if folder.is_dir():
        return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    return C.load_split(source, split)


def data_flags(source: str) -> list[str]:
    return ["--data_dir", source] if Path(source).is_dir() else ["--benchmark", source]


def cmd_forgetting(a: argparse.Namespace) -> dict[str, Any]:
    out_dir = Path(a.out)
    task_test = split_records(a.task, "test")[: a.max_eval]
    other_test = split_records(a.other, "test")[: a.max_eval]
    base = Path(a.base)
    before = {"task": evaluate(base, task_test, a.batch_size), "other": evaluate(base, other_test, a.batch_size)}
    runs = []
    flags = {"full": [], "freeze_encoder": ["--freeze_encoder"], "lora": ["--lora"]}
    budget = ["--max_steps", str(a.max_steps)] if a.max_steps else ["--max_minutes", str(a.minutes)]
    for mode in a.modes:
        for seed in a.seeds:
            run_dir = out_dir / "runs" / f"{mode}-s{seed}"
            train_main(["--model_name_or_path", str(base), *data_flags(a.task), "--output_dir", str(run_dir),
                        "--seed", str(seed), "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
                        "--save_strategy", "no", "--eval_strategy", "no", "--do_train",
                        "--per_device_train_batch_size", str(a.batch_size), *budget, *flags[mode]])
            task, other = evaluate(run_dir, task_test, a.batch_size), evaluate(run_dir, other_test, a.batch_size)
            runs.append({"mode": mode, "seed": seed, "task": task, "other": other,
                         "folder_bytes": adapter_folder_bytes(run_dir)})
    key_task, key_other = f"test_{a.task_metric}", f"test_{a.other_metric}"

    def mean(mode: str, part: str, key: str) -> float | None:
        xs = [r[part][key] for r in runs if r["mode"] == mode and key in r[part]]
        return statistics.mean(xs) if xs else None

    other_before = before["other"].get(key_other)
    summary = {m: {"task_f1": mean(m, "task", key_task), "other_f1": mean(m, "other", key_other)} for m in a.modes}
    for m in a.modes:
        o = summary[m]["other_f1"]
        summary[m]["retention"] = o / other_before if o is not None and other_before else None
    lora_runs = [r for r in runs if r["mode"] == "lora"]
    goals = {"lora_rel_f1": summary.get("lora", {}).get("task_f1"), "full_rel_f1": summary.get("full", {}).get("task_f1"),
             "adapter_bytes": lora_runs[0]["folder_bytes"] if lora_runs else None,
             "model_bytes": adapter_folder_bytes(base),
             "retention_lora": summary.get("lora", {}).get("retention"),
             "retention_full": summary.get("full", {}).get("retention")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lora.json").write_text(json.dumps(goals, indent=2) + "\n")
    return {"before": before, "runs": runs, "summary": summary, "goals": goals}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_memory":  # child process of `step`
        print(json.dumps(child_memory(argv[1], Path(argv[2]), int(argv[3]), int(argv[4]))))
        return
    C.quiet_transformers()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("step", help="LoRA vs full: step time, peak memory, folder bytes")
    s.add_argument("--steps", type=int, default=6)
    s.add_argument("--memory_steps", type=int, default=2)
    s.add_argument("--batch_size", type=int, default=8)
    s.add_argument("--max_length", type=int, default=128)
    w = sub.add_parser("switch", help="several adapters on one base: set_adapter vs merged copies")
    w.add_argument("--adapters", type=int, default=4)
    w.add_argument("--batches", type=int, default=8)
    w.add_argument("--batch_size", type=int, default=8)
    w.add_argument("--repeats", type=int, default=3)
    w.add_argument("--max_length", type=int, default=128)
    f = sub.add_parser("forgetting", help="full / freeze_encoder / LoRA fine-tuning: task F1 and retention")
    f.add_argument("--base", required=True, help="the trained base LDNet folder (e.g. a CoNLL03 model)")
    f.add_argument("--task", default="conll04", help="benchmark or converted folder to fine-tune on")
    f.add_argument("--other", default="conll03", help="benchmark or converted folder the base must not forget")
    f.add_argument("--task_metric", default="rel_strict_f1")
    f.add_argument("--other_metric", default="ent_f1")
    f.add_argument("--modes", nargs="+", default=["full", "freeze_encoder", "lora"])
    f.add_argument("--seeds", nargs="+", type=int, default=[1227, 1228, 1229])
    f.add_argument("--minutes", type=float, default=20.0)
    f.add_argument("--max_steps", type=int, default=None, help="a step budget instead of --minutes (smoke runs)")
    f.add_argument("--max_eval", type=int, default=None, help="first N test records of each task")
    f.add_argument("--batch_size", type=int, default=8)
    f.add_argument("--out", default=str(C.RESULTS_DIR / "adapters"))
    a = ap.parse_args(argv)
    result = {"step": cmd_step, "switch": cmd_switch, "forgetting": cmd_forgetting}[a.cmd](a)
    name = {"step": "adapters_step", "switch": "adapters_switch", "forgetting": "adapters_forgetting"}[a.cmd]
    path = C.write_json(name, result, Path(a.out) if a.cmd == "forgetting" else None)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "memory", "before")}, indent=1,
                     default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
