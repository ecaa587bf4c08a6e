#!/usr/bin/env python
"""One LDNet training step against one ``AutoModelForTokenClassification`` step: same encoder (packaged MiniLM),
same ``input_ids``/``attention_mask`` batch (16 x ~128 tokens: CoNLL03 NER requests packed from consecutive
training sentences), same optimiser set-up.

A step = ``zero_grad`` + forward (with loss) + backward + grad-norm clip (1.0) + ``AdamW.step``. Both models use
the SPEC §7.1 parameter groups (``trainers.ldnet_parameter_groups``: encoder lr 2e-5 / head lr 1e-4, weight decay 0.1
except embeddings/LayerNorm/biases). LDNet's targets are the processor's gold span-graph links and label-drop
targets; the token-classification labels are BIO tags of the same entities (first sub-token; -100 elsewhere).
The two steps run interleaved (ABAB..., order alternating), ``--repeats`` times; reported: median seconds, the
ratio LDNet / baseline (goal <= 1.4) and the forward / backward / optimiser split of each.

    python bench/speed_train.py --repeats 11            # -> bench/results/speed_train.json, bench/plots/
    python bench/speed_train.py --profile               # + torch.profiler top operators of both steps
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np
import torch

BIO_TYPES = ["person", "location", "organization", "miscellaneous"]
BIO_LABELS = ["O"] + [f"{p}-{t}" for t in BIO_TYPES for p in ("B", "I")]


def token_bio_labels(processor, enc: dict, records: list[dict]) -> torch.Tensor:
    """BIO label ids over the LDNet input sequence (text tokens only; -100 on prefix, pads and non-first pieces)."""
    ids = enc["input_ids"]
    labels = torch.full_like(ids, -100)
    for b, (meta, rec) in enumerate(zip(enc["meta"], records)):
        base = meta.text_offset
        n_text = meta.window[1] - meta.window[0]
        labels[b, base: base + n_text] = 0
        for e in (rec.get("ans") or {}).get("ent") or []:
            s, t = e["span"]
            toks = [k for k, (a, z) in enumerate(meta.token_offsets[:n_text]) if a >= s and z <= t]
            if not toks or e["type"] not in BIO_TYPES:
                continue
            labels[b, base + toks[0]] = BIO_LABELS.index(f"B-{e['type']}")
            for k in toks[1:]:
                labels[b, base + k] = BIO_LABELS.index(f"I-{e['type']}")
    return labels


def make_batch(processor, source: list[dict], batch_size: int, total_tokens: int) -> tuple[dict, torch.Tensor]:
    from speed_inference import prefix_length

    tol = 0.05  # texts of [0.905, 1] x the room left by the prefix: the padded batch is ~total_tokens long
    text_tokens = (total_tokens - prefix_length(processor, source[0])) / (1 + tol)
    recs = C.pack_records(source, processor.tokenizer, text_tokens, batch_size, tolerance=tol)
    enc = processor(recs, return_tensors="pt")
    batch = {k: enc[k] for k in ("input_ids", "attention_mask", "span_graph_links", "label_drop_targets")}
    return batch, token_bio_labels(processor, enc, recs)


def make_models(processor, seed: int = 1227):
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(seed)
    ldnet = C.make_ldnet(processor)
    base = AutoModelForTokenClassification.from_pretrained(
        str(C.minilm_path()), num_labels=len(BIO_LABELS), id2label=dict(enumerate(BIO_LABELS)),
        label2id={v: k for k, v in enumerate(BIO_LABELS)},
    )
    base.resize_token_embeddings(len(processor.tokenizer))
    return ldnet.train(), base.train()


def make_optimizer(model, encoder_prefix: str) -> torch.optim.Optimizer:
    from trainers import ldnet_parameter_groups

    groups = ldnet_parameter_groups(model, 2e-5, 1e-4, weight_decay=0.1, encoder_prefix=encoder_prefix)
    return torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)


def make_step(model, opt, inputs: dict, split: dict[str, list[float]]):
    def step() -> None:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        split["forward"].append(t1 - t0)
        split["backward"].append(t2 - t1)
        split["optimizer"].append(t3 - t2)

    return step


def profile_step(step, n: int = 2, top: int = 15) -> list[dict[str, Any]]:
    """torch.profiler (CPU) over ``n`` steps: the ``top`` operators by self CPU time, with their share."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
    avgs = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in avgs) or 1.0
    return [{"op": e.key, "self_cpu_pct": 100 * e.self_cpu_time_total / total, "calls": e.count,
             "self_cpu_ms_per_step": e.self_cpu_time_total / 1000 / n} for e in avgs[:top]]


def run(batch_size: int = 16, total_tokens: int = 128, repeats: int = 11, warmup: int = 2, threads: int = 1,
        source: list[dict] | None = None, profile: bool = False, seed: int = 1227) -> dict:
    torch.set_num_threads(threads)
    processor = C.make_processor()
    if source is None:
        try:
            source = C.load_split("conll03", "train")
        except C.DATA_ERRORS as exc:  # pragma: no cover
            from speed_inference import fallback_source

            print(f"[speed_train] CoNLL03 unavailable ({exc}); using synthetic sentences")
            source = fallback_source()
    batch, bio = make_batch(processor, source, batch_size, total_tokens)
    ldnet, base = make_models(processor, seed)
    ld_opt, base_opt = make_optimizer(ldnet, "plm."), make_optimizer(base, base.base_model_prefix + ".")
    base_inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": bio}
    splits = {name: {"forward": [], "backward": [], "optimizer": []} for name in ("ldnet", "token_cls")}
    steps = {"ldnet": make_step(ldnet, ld_opt, batch, splits["ldnet"]),
             "token_cls": make_step(base, base_opt, base_inputs, splits["token_cls"])}
    times = C.interleaved(steps, repeats=repeats, warmup=warmup)
    med = {k: C.med(v) for k, v in times.items()}
    res: dict[str, Any] = {
        "encoder": "all-MiniLM-L6-v2 (packaged)",
        "threads": threads,
        "batch_shape": list(batch["input_ids"].shape),
        "real_tokens_per_record": float(batch["attention_mask"].sum(1).float().mean()),
        "gold_links": int(batch["span_graph_links"].shape[0]),
        "seconds": {k: C.summary(v) for k, v in times.items()},
        "ratio_ldnet_vs_token_cls": med["ldnet"] / med["token_cls"],
        "paired_ratio_ldnet_vs_token_cls": C.med([a / b for a, b in zip(times["ldnet"], times["token_cls"])]),
        "split_median_s": {m: {k: C.med(v[warmup:]) for k, v in s.items()} for m, s in splits.items()},
        "params": {"ldnet": sum(p.numel() for p in ldnet.parameters()),
                   "token_cls": sum(p.numel() for p in base.parameters())},
    }
    res["goal_ratio_le_1.4"] = res["ratio_ldnet_vs_token_cls"] <= 1.4
    if profile:
        res["profile"] = {name: profile_step(fn) for name, fn in steps.items()}
    return res


def plot(res: dict, name: str = "speed_train"):
    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = ["token_cls", "ldnet"]
    labels = ["AutoModelForTokenClassification", "LDNet"]
    bottom = np.zeros(2)
    for part in ("forward", "backward", "optimizer"):
        vals = np.array([res["split_median_s"][n][part] for n in names])
        ax.bar(labels, vals, 0.5, bottom=bottom, label=part)
        bottom += vals
    ax.text(1, bottom[1], f"{res['ratio_ldnet_vs_token_cls']:.2f}x", ha="center", va="bottom")
    shape = "x".join(str(v) for v in res["batch_shape"])
    ax.set_ylabel("seconds / training step (median)")
    ax.set_title(f"Training step, MiniLM-L6, batch {shape}, CPU {res['threads']} thread(s)", fontsize=9)
    ax.legend(fontsize=8)
    return C.save_plot(fig, name)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128, help="about this many tokens per record (prefix included)")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="add torch.profiler top operators of both steps")
    ap.add_argument("--name", default="speed_train")
    args = ap.parse_args(argv)
    res = run(args.batch_size, args.tokens, args.repeats, args.warmup, args.threads, profile=args.profile)
    s = res["split_median_s"]
    print(f"[speed_train] batch {res['batch_shape']}: LDNet {res['seconds']['ldnet']['median_s']:.3f} s/step, "
          f"token-cls {res['seconds']['token_cls']['median_s']:.3f} s/step -> ratio "
          f"{res['ratio_ldnet_vs_token_cls']:.3f} (paired {res['paired_ratio_ldnet_vs_token_cls']:.3f}; goal <= 1.4: "
          f"{res['goal_ratio_le_1.4']})")
    for m in s:
        print(f"  {m}: " + ", ".join(f"{k} {v:.3f}s" for k, v in s[m].items()))
    if "profile" in res:
        for m, rows in res["profile"].items():
            print(f"  profile {m}: " + "; ".join(f"{r['op']} {r['self_cpu_pct']:.1f}%" for r in rows[:8]))
    path = C.write_json(args.name, res)
    print(f"wrote {path} and {plot(res, args.name)}")
    return res


if __name__ == "__main__":
    main()
