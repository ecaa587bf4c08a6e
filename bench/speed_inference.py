#!/usr/bin/env python
"""Inference speed of LDNet against the bare encoder on the same inputs, the decoder against the reference
decoders on identical scores, and peak memory against sequence length.

1. **Throughput** (records/s) at batch 1 and 32, ~40 and ~200 tokens (CoNLL03 NER request: instruction + 4 entity
   labels + text; texts packed from consecutive CoNLL03 test sentences). LDNet path = ``processor(records)`` +
   ``LDNetModel.forward`` + ``processor.post_process_extraction``; baseline = ``model.plm`` (the same MiniLM
   encoder, same weights) forward on the same ``input_ids``/``attention_mask``. Both measured interleaved in one
   process; reported: ratio = LDNet records/s / encoder records/s (goal >= 0.85) and the LDNet split
   encode / forward / decode. The LDNet heads are first fine-tuned briefly (``--finetune_steps``) on CoNLL03 so
   that logits are as sparse as a trained model's (an untrained head gives dense, unrealistic link grids).
2. **Decoder**: ``span_graph.decode_chains`` (the fast decoder used by ``post_process_extraction``) against
   ``span_graph.plain_decode`` (unbounded reference) and ``span_graph.mirror_decode`` (SPEC §5.1 algorithm) on the
   SAME thresholded grids (``threshold_logits``). Score sources: gold-like logits (gold cells ``+mu``, others
   ``-mu``, plus Gaussian noise), the fine-tuned model's logits and an untrained model's logits (dense grids, as in
   early training). ``decode_chains`` must return exactly the ``plain_decode`` chains (asserted wherever the
   reference finishes within ``--reference_timeout_s`` and the fast search stays within its step budget; a reference
   that does not finish is reported as a lower bound). Goal: >= 20x faster.
3. **Peak memory** vs sequence length 128/256/512 (batch 8), LDNet forward vs bare encoder forward
   (``torch.inference_mode``), two methods: (a) ``torch.profiler(profile_memory=True)`` memory timeline: peak of the
   bytes of live CPU tensors during the forward minus what was alive before (deterministic; the primary number);
   (b) process RSS, each run in a FRESH subprocess: load model and inputs, ``gc.collect()``, reset the kernel's
   peak-RSS counter (``echo 5 > /proc/self/clear_refs``), read ``VmRSS``, run one forward, read ``VmHWM``; delta =
   ``VmHWM - VmRSS(before)`` (includes allocator effects: freed encoder activations are reused, so it is noisy).
   ``tracemalloc`` does not see torch's allocator and ``ru_maxrss`` cannot be reset (the model-loading peak would
   hide the forward's), hence these methods.

    python bench/speed_inference.py                       # everything, writes bench/results/speed_inference.json
    python bench/speed_inference.py --repeats 9 --sections throughput decoder
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np
import torch

NER_SCHEMA = {"ent": ["person", "location", "organization", "miscellaneous"]}


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------


def prefix_length(processor, record: dict) -> int:
    enc = processor([{**record, "text": "x", "ans": {}}])
    return enc["meta"][0].text_offset + 1  # [CLS] ... [TL] and the final [SEP]


def make_inputs(processor, source: list[dict], total_tokens: int, n: int, keep_ans: bool = False) -> list[dict]:
    """``n`` records of about ``total_tokens`` tokens in all (prefix included)."""
    text_tokens = max(4, total_tokens - prefix_length(processor, source[0]))
    return C.pack_records(source, processor.tokenizer, text_tokens, n, keep_ans=keep_ans)


def fallback_source(n: int = 400, seed: int = 0) -> list[dict]:
    """Synthetic NER sentences (used when no CoNLL03 copy is around, e.g. in the smoke test)."""
    import random

    rng = random.Random(seed)
    people, places = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dan Brown"], ["Paris", "Boston", "Lagos", "Kyoto"]
    out = []
    for i in range(n):
        p, loc = rng.choice(people), rng.choice(places)
        filler = " ".join(rng.choice(["and", "then", "met", "the", "local", "press", "again"])
                          for _ in range(rng.randint(0, 12)))
        text = f"{p} flew to {loc} on Monday {filler} ." if filler else f"{p} flew to {loc} on Monday ."
        a, b = text.index(p), text.index(loc)
        ents = [{"type": "person", "text": p, "span": [a, a + len(p)]},
                {"type": "location", "text": loc, "span": [b, b + len(loc)]}]
        out.append({"id": i, "instruction": "Please identify possible entities from the given text and determine "
                    "their types.", "schema": NER_SCHEMA, "text": text, "bg": "", "ans": {"ent": ents}})
    return out


# ---------------------------------------------------------------------------------------------------------------
# 1. throughput
# ---------------------------------------------------------------------------------------------------------------


def bench_throughput(model, processor, records: list[dict], batch_size: int, repeats: int, warmup: int = 1) -> dict:
    """Records/s of the LDNet path and of the bare encoder forward on the same (pre-encoded) inputs."""
    batches = [records[i: i + batch_size] for i in range(0, len(records), batch_size)]
    encoded = [processor(b, return_tensors="pt") for b in batches]
    split = {"encode": [], "forward": [], "decode": []}
    n_items = [0]

    @torch.inference_mode()
    def ldnet_path() -> None:
        te = tf = td = 0.0
        for b in batches:
            t0 = time.perf_counter()
            enc = processor(b, return_tensors="pt")
            t1 = time.perf_counter()
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            t2 = time.perf_counter()
            ans = processor.post_process_extraction(out.logits, enc)
            t3 = time.perf_counter()
            te, tf, td = te + t1 - t0, tf + t2 - t1, td + t3 - t2
            n_items[0] = sum(len(a.get("ent", [])) for a in ans)
        split["encode"].append(te)
        split["forward"].append(tf)
        split["decode"].append(td)

    @torch.inference_mode()
    def ldnet_forward_only() -> None:
        for enc in encoded:
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])

    @torch.inference_mode()
    def bare_encoder() -> None:
        for enc in encoded:
            model.plm(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])

    times = C.interleaved(
        {"ldnet_path": ldnet_path, "ldnet_forward": ldnet_forward_only, "bare_encoder": bare_encoder},
        repeats=repeats, warmup=warmup,
    )
    for k in split:
        split[k] = split[k][warmup:]
    n = len(records)
    med = {k: C.med(v) for k, v in times.items()}
    lens = [int(e["attention_mask"].sum(1).float().mean()) for e in encoded]
    padded = [int(e["input_ids"].shape[1]) for e in encoded]
    res = {
        "batch_size": batch_size,
        "records": n,
        "mean_tokens": float(np.mean(lens)),
        "mean_padded_length": float(np.mean(padded)),
        "records_per_s": {k: n / v for k, v in med.items()},
        "seconds": {k: C.summary(v) for k, v in times.items()},
        "ratio_ldnet_path_vs_encoder": med["bare_encoder"] / med["ldnet_path"],
        "ratio_ldnet_forward_vs_encoder": med["bare_encoder"] / med["ldnet_forward"],
        # per-round ratios (paired): robust to drifts of the shared machine's load
        "paired_ratio_ldnet_path_vs_encoder": C.med(
            [b / a for a, b in zip(times["ldnet_path"], times["bare_encoder"])]
        ),
        "split_median_s": {k: C.med(v) for k, v in split.items()},
        "split_fraction": {k: C.med(v) / max(1e-12, C.med(times["ldnet_path"])) for k, v in split.items()},
        "entities_decoded_last_batch": n_items[0],
    }
    return res


# ---------------------------------------------------------------------------------------------------------------
# 2. decoder vs reference decoders
# ---------------------------------------------------------------------------------------------------------------


def gold_like_logits(enc: dict, mu: float, sigma: float, seed: int) -> torch.Tensor:
    """``+mu`` on gold links, ``-mu`` elsewhere, plus N(0, sigma) noise; padding masked like the model does."""
    from modeling_ldnet.modeling_ldnet import MASK_VALUE, links_to_dense

    ids = enc["input_ids"]
    b, length = ids.shape
    gold = links_to_dense(enc["span_graph_links"], b, 3, length).float()
    g = torch.Generator().manual_seed(seed)
    logits = (2 * gold - 1) * mu + sigma * torch.randn(gold.shape, generator=g)
    tok = enc["attention_mask"].bool()
    valid = (tok[:, None, :, None] & tok[:, None, None, :]).expand_as(logits)
    return logits.masked_fill(~valid, MASK_VALUE)


class _Timeout(Exception):
    pass


def _with_timeout(fn, seconds: float | None):
    """Run ``fn()``; ``_Timeout`` after ``seconds`` of wall time (SIGALRM: main thread, POSIX only)."""
    import signal
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()

    def handler(*_):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def bench_decoder(processor, enc: dict, logits: torch.Tensor, repeats: int, with_mirror: bool = True,
                  reference_timeout_s: float = 30.0) -> dict:
    """Time ``decode_chains`` vs ``plain_decode`` (and ``mirror_decode``) on the same thresholded grids.

    A reference decoder that needs more than ``reference_timeout_s`` for one pass over the records is stopped
    (exponential blow-up, SPEC §5.3): its time is reported as a lower bound and its outputs are not compared.
    """
    from modeling_ldnet.span_graph import (
        decode_chains,
        mirror_decode,
        plain_decode,
        threshold_logits,
        typed_chain_ok,
    )

    metas = enc["meta"]
    lengths = [m.length for m in metas]
    y = threshold_logits(logits, lengths, processor.threshold, processor.max_links_per_row)
    jobs = []
    for b, m in enumerate(metas):
        n = m.length
        lo = m.text_offset
        hi = lo + m.window[1] - m.window[0]
        probs = torch.sigmoid(logits[b, 0, :n, :n].float()).numpy()
        jobs.append((np.ascontiguousarray(y[b, :, :n, :n]), probs, m.tags, (lo, hi), m.plain_text_mode))
    mp, budget = processor.max_parts, processor.decode_budget
    fast_out: list = [None] * len(jobs)
    plain_out: list = [None] * len(jobs)
    mirror_out: list = [None] * len(jobs)
    exhausted = [0]
    mirror_failed = [0]

    def fast() -> None:
        exhausted[0] = 0
        for k, (yy, pr, tags, rng, ptm) in enumerate(jobs):
            r = decode_chains(yy, pr, tags, rng, ptm, mp, budget)
            exhausted[0] += r.budget_exhausted
            fast_out[k] = r.chains

    def plain() -> None:
        for k, (yy, _, tags, rng, ptm) in enumerate(jobs):
            plain_out[k] = plain_decode(yy, tags, rng, ptm, mp)

    def mirror() -> None:
        mirror_failed[0] = 0
        for k, (yy, _, tags, rng, ptm) in enumerate(jobs):
            try:
                chains = mirror_decode(yy)
            except RuntimeError:  # its max_paths guard: path explosion
                mirror_failed[0] += 1
                chains = None
            if chains is not None:  # keep what interpretation can type (as the fast decoder does)
                chains = {c for c in chains if typed_chain_ok(c, tags, rng, ptm, mp)}
            mirror_out[k] = chains

    fns = {"fast": fast, "plain": plain}
    if with_mirror:
        fns["mirror"] = mirror
    timed_out: dict[str, float] = {}
    for name in list(fns):  # warm-up pass; drop references that blow up
        if name == "fast":
            fns[name]()
            continue
        t0 = time.perf_counter()
        try:
            _with_timeout(fns[name], reference_timeout_s)
        except _Timeout:
            timed_out[name] = time.perf_counter() - t0
            del fns[name]
    times = C.interleaved(fns, repeats=repeats, warmup=0)
    identical = None  # not compared: the reference did not finish, or the bounded search hit its step budget
    if "plain" not in timed_out and exhausted[0] == 0:
        n_diff = sum(f != p for f, p in zip(fast_out, plain_out))
        identical = n_diff == 0
        assert identical, f"decode_chains differs from plain_decode on {n_diff} of {len(jobs)} records"
    med = {k: C.med(v) for k, v in times.items()}
    res = {
        "records": len(jobs),
        "mean_length": float(np.mean(lengths)),
        "positive_links_per_record": int(y.sum()) / max(1, len(jobs)),
        "chains_per_record": float(np.mean([len(c) for c in fast_out])),
        "identical_to_plain": identical,
        "fast_budget_exhausted_records": exhausted[0],
        "seconds": {k: C.summary(v) for k, v in times.items()},
        "ms_per_record": {k: 1000 * v / len(jobs) for k, v in med.items()},
        "timed_out_after_s": timed_out,
    }
    for name in ("plain", "mirror"):
        if name in med:
            res[f"speedup_vs_{name}"] = med[name] / med["fast"]
        elif name in timed_out:
            res[f"speedup_vs_{name}"] = timed_out[name] / med["fast"]
            res[f"speedup_vs_{name}_is_lower_bound"] = True
            res["ms_per_record"][name] = 1000 * timed_out[name] / len(jobs)  # lower bound
    if with_mirror and "mirror" not in timed_out:
        res["mirror_path_explosions"] = mirror_failed[0]
        res["mirror_typed_chains_equal_records"] = sum(m is not None and m == f for m, f in zip(mirror_out, fast_out))
    return res


# ---------------------------------------------------------------------------------------------------------------
# 3. peak memory (fresh subprocess per measurement)
# ---------------------------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(mode: str, length: int, batch_size: int, threads: int) -> dict:
    """Runs inside the fresh subprocess: peak RSS increase (MiB) of one forward."""
    torch.set_num_threads(threads)
    processor = C.make_processor(max_length=max(512, length))
    model = C.make_ldnet(processor).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 29000, (batch_size, length), generator=g)
    ids[:, 0] = processor.tokenizer.cls_token_id
    ids[:, -1] = processor.tokenizer.sep_token_id
    mask = torch.ones_like(ids)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS")
    with torch.inference_mode():
        if mode == "bare_encoder":
            out = model.plm(input_ids=ids, attention_mask=mask).last_hidden_state
        elif mode == "ldnet_forward":
            out = model(input_ids=ids, attention_mask=mask).logits
        else:
            raise ValueError(mode)
    peak = _status_kb("VmHWM")
    return {"mode": mode, "length": length, "batch_size": batch_size, "rss_before_mib": before / 1024,
            "peak_delta_mib": (peak - before) / 1024, "output_mib": out.numel() * out.element_size() / 2**20}


def profiler_peak(fn) -> dict:
    """Peak bytes of live CPU tensors while ``fn()`` runs (torch.profiler memory timeline; deterministic: counts
    tensor allocations, not the allocator's cached pages). Parameters and inputs alive before are excluded."""
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timeline.json")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prof.export_memory_timeline(path, device="cpu")
        with open(path) as fh:
            _, sizes = json.load(fh)
    totals = [sum(x) for x in sizes]
    base = totals[0] if totals else 0
    return {"peak_mib": (max(totals) - base) / 2**20 if totals else 0.0,
            "end_mib": (totals[-1] - base) / 2**20 if totals else 0.0}


def bench_memory_profiler(model, lengths: list[int], batch_size: int) -> dict:
    """LDNet forward vs bare encoder forward: peak live-tensor memory (``profiler_peak``) per sequence length."""
    table = {}
    g = torch.Generator().manual_seed(0)
    for length in lengths:
        ids = torch.randint(1000, 29000, (batch_size, length), generator=g)
        mask = torch.ones_like(ids)
        row = {}
        with torch.inference_mode():
            row["bare_encoder"] = profiler_peak(lambda i=ids, m=mask: model.plm(input_ids=i, attention_mask=m))
            row["ldnet_forward"] = profiler_peak(lambda i=ids, m=mask: model(input_ids=i, attention_mask=m))
        per = {k: v["peak_mib"] for k, v in row.items()}
        per["ratio_ldnet_vs_encoder"] = per["ldnet_forward"] / max(1e-9, per["bare_encoder"])
        per["ldnet_extra_mib"] = per["ldnet_forward"] - per["bare_encoder"]
        per["grid_mib"] = batch_size * 3 * length * length * 4 / 2**20
        table[str(length)] = per
    return {"method": "torch.profiler(profile_memory=True) memory timeline (device cpu): peak of live tensor bytes "
                      "during one inference_mode forward, minus what was alive at its start",
            "batch_size": batch_size, "by_length": table}


def bench_memory(lengths: list[int], batch_size: int, threads: int, repeats: int = 2) -> dict:
    rows = []
    for r in range(repeats):
        for length in lengths:
            for mode in (("bare_encoder", "ldnet_forward") if r % 2 == 0 else ("ldnet_forward", "bare_encoder")):
                cmd = [sys.executable, os.path.abspath(__file__), "--_memory_child", mode, str(length),
                       str(batch_size), str(threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    table: dict[str, dict[str, float]] = {}
    for length in lengths:
        per = {}
        for mode in ("bare_encoder", "ldnet_forward"):
            per[mode] = C.med([x["peak_delta_mib"] for x in rows if x["mode"] == mode and x["length"] == length])
        per["ratio_ldnet_vs_encoder"] = per["ldnet_forward"] / max(1e-9, per["bare_encoder"])
        per["ldnet_extra_mib"] = per["ldnet_forward"] - per["bare_encoder"]
        # one fp32 [B, 3, L, L] grid, the unit of LDNet's extra activations
        per["grid_mib"] = batch_size * 3 * length * length * 4 / 2**20
        table[str(length)] = per
    return {"method": "fresh subprocess per run; /proc/self/clear_refs=5 then VmHWM - VmRSS around one "
                      "inference_mode forward (median of repeats)", "batch_size": batch_size,
            "by_length": table, "runs": rows}


# ---------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------


def run(
    configs: list[tuple[int, int]] = ((1, 40), (1, 200), (32, 40), (32, 200)),
    records_per_config: dict[int, int] | None = None,
    repeats: int = 7,
    decoder_repeats: int = 5,
    decoder_records: int = 64,
    noise: list[tuple[float, float]] = ((8.0, 1.0), (6.0, 2.0), (6.0, 2.5), (5.0, 2.5)),
    reference_timeout_s: float = 30.0,
    finetune_steps: int = 100,
    memory_lengths: list[int] = (128, 256, 512),
    memory_batch_size: int = 8,
    memory_repeats: int = 2,
    skip_memory: bool = False,
    sections: tuple[str, ...] = ("throughput", "decoder", "memory"),
    with_untrained: bool = True,
    threads: int = 1,
    source: list[dict] | None = None,
    seed: int = 1227,
) -> dict:
    """Everything above; returns the results dict (keys ``throughput``, ``decoder``, ``memory``, ``goals``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    records_per_config = records_per_config or {1: 16, 32: 32}
    processor = C.make_processor()
    model = C.make_ldnet(processor).eval()
    if source is None:
        try:
            train_src = C.load_split("conll03", "train")
            test_src = C.load_split("conll03", "test")
        except C.DATA_ERRORS as exc:  # pragma: no cover - no shared data
            print(f"[speed_inference] CoNLL03 unavailable ({exc}); using synthetic sentences")
            train_src = test_src = fallback_source()
    else:
        train_src = test_src = source
    out: dict[str, Any] = {"encoder": "all-MiniLM-L6-v2 (packaged)", "threads": threads}
    # early-training / untrained heads give dense link grids: the reference decoders' known blow-up (SPEC §5.3)
    untrained_model = C.make_ldnet(processor).eval() if with_untrained and "decoder" in sections else None
    losses = []
    if finetune_steps:
        t0 = time.perf_counter()
        losses = C.quick_finetune(model, processor, train_src, finetune_steps, batch_size=8, seed=seed)
        out["finetune"] = {"steps": finetune_steps, "seconds": time.perf_counter() - t0,
                           "loss_first": losses[0], "loss_last": float(np.mean(losses[-10:]))}
        print(f"[speed_inference] fine-tuned {finetune_steps} steps: loss {losses[0]:.3f} -> {losses[-1]:.3f}")

    # 1. throughput
    thr = []
    for bs, total in configs if "throughput" in sections else ():
        recs = make_inputs(processor, test_src, total, records_per_config.get(bs, bs))
        r = bench_throughput(model, processor, recs, bs, repeats)
        r["target_tokens"] = total
        thr.append(r)
        print(f"[throughput] bs={bs:>2} ~{total} tok (mean {r['mean_tokens']:.0f}): LDNet "
              f"{r['records_per_s']['ldnet_path']:.1f} rec/s, encoder {r['records_per_s']['bare_encoder']:.1f} rec/s"
              f" -> ratio {r['ratio_ldnet_path_vs_encoder']:.3f} (paired {r['paired_ratio_ldnet_path_vs_encoder']:.3f})"
              f"; split enc/fwd/dec = " + "/".join(f"{100 * v:.1f}%" for v in r["split_fraction"].values()))
    out["throughput"] = thr

    # 2. decoder
    dec = []
    for total in sorted({t for _, t in configs}) if "decoder" in sections else ():
        recs = make_inputs(processor, test_src, total, decoder_records, keep_ans=True)
        enc = processor(recs, return_tensors="pt")
        sources = [(f"gold+noise(mu={mu},sigma={sd})", gold_like_logits(enc, mu, sd, seed)) for mu, sd in noise]
        models = [(f"model fine-tuned {finetune_steps} steps", model)] if finetune_steps else []
        if untrained_model is not None:
            models.append(("untrained model (fresh heads)", untrained_model))
        for label, mdl in models:
            with torch.inference_mode():
                lg = torch.cat([mdl(input_ids=enc["input_ids"][i: i + 16],
                                    attention_mask=enc["attention_mask"][i: i + 16]).logits
                                for i in range(0, len(recs), 16)])
            sources.append((label, lg))
        for name, logits in sources:
            r = bench_decoder(processor, enc, logits, decoder_repeats, reference_timeout_s=reference_timeout_s)
            r.update(target_tokens=total, scores=name)
            dec.append(r)
            lb = lambda k, r=r: ">=" if r.get(f"speedup_vs_{k}_is_lower_bound") else ""
            print(f"[decoder] ~{total} tok, {name}: {r['positive_links_per_record']:.0f} links/rec, "
                  f"{r['chains_per_record']:.1f} chains/rec; fast {r['ms_per_record']['fast']:.3f} ms/rec; plain "
                  f"{lb('plain')}{r['ms_per_record']['plain']:.3f} ms/rec -> {lb('plain')}{r['speedup_vs_plain']:.1f}x;"
                  f" mirror {lb('mirror')}{r['ms_per_record']['mirror']:.3f} ms/rec -> "
                  f"{lb('mirror')}{r['speedup_vs_mirror']:.1f}x; identical to plain: {r['identical_to_plain']}"
                  + (f"; fast decoder hit its step budget on {r['fast_budget_exhausted_records']} records"
                     if r["fast_budget_exhausted_records"] else ""))
    out["decoder"] = dec

    # 3. memory
    if not skip_memory and "memory" in sections:
        mem = bench_memory_profiler(model, list(memory_lengths), memory_batch_size)
        for length, row in mem["by_length"].items():
            print(f"[memory:tensors] L={length} B={memory_batch_size}: encoder +{row['bare_encoder']:.1f} MiB, "
                  f"LDNet +{row['ldnet_forward']:.1f} MiB (x{row['ratio_ldnet_vs_encoder']:.2f}; one [B,3,L,L] "
                  f"fp32 grid = {row['grid_mib']:.1f} MiB)")
        out["memory"] = mem
        rss = bench_memory(list(memory_lengths), memory_batch_size, threads, memory_repeats)
        for length, row in rss["by_length"].items():
            print(f"[memory:rss]     L={length} B={memory_batch_size}: encoder +{row['bare_encoder']:.1f} MiB, "
                  f"LDNet +{row['ldnet_forward']:.1f} MiB (x{row['ratio_ldnet_vs_encoder']:.2f})")
        out["memory_rss"] = rss

    goals: dict[str, Any] = {}
    if thr:
        goals["throughput_ratio_min"] = min(r["ratio_ldnet_path_vs_encoder"] for r in thr)
        goals["throughput_paired_ratio_min"] = min(r["paired_ratio_ldnet_path_vs_encoder"] for r in thr)
        goals["throughput_ratio_min_ge_0.85"] = goals["throughput_ratio_min"] >= 0.85
    if dec:
        goals["decoder_speedup_vs_plain_min"] = min(r["speedup_vs_plain"] for r in dec)
        goals["decoder_speedup_vs_plain_max"] = max(r["speedup_vs_plain"] for r in dec)
        goals["decoder_speedup_min_ge_20"] = goals["decoder_speedup_vs_plain_min"] >= 20.0
        goals["decoder_identical_where_compared"] = all(r["identical_to_plain"] is not False for r in dec)
    out["goals"] = goals
    return out


def plot(res: dict, name: str = "speed_inference") -> list[Path]:
    plt = C.pyplot()
    paths = []
    thr = res.get("throughput") or []
    if thr:
        paths.append(_plot_throughput(plt, thr, name))
    dec = res.get("decoder") or []
    if dec:
        paths.append(_plot_decoder(plt, dec, name))
    if "memory" in res:
        paths.append(_plot_memory(plt, res, name))
    return paths


def _plot_throughput(plt, thr: list[dict], name: str) -> Path:
    labels = [f"bs={r['batch_size']}\n~{r['target_tokens']} tok" for r in thr]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(thr))
    a = axes[0]
    a.bar(x - 0.2, [r["records_per_s"]["bare_encoder"] for r in thr], 0.4, label="bare encoder forward")
    a.bar(x + 0.2, [r["records_per_s"]["ldnet_path"] for r in thr], 0.4, label="LDNet encode+forward+decode")
    for i, r in enumerate(thr):
        a.text(i + 0.2, r["records_per_s"]["ldnet_path"], f"{r['ratio_ldnet_path_vs_encoder']:.2f}x",
               ha="center", va="bottom", fontsize=8)
    a.set_xticks(x, labels)
    a.set_yscale("log")
    a.set_ylabel("records / s (log)")
    a.set_title("Throughput, MiniLM-L6, CPU 1 thread")
    a.legend(fontsize=8)
    b = axes[1]
    bottom = np.zeros(len(thr))
    for part in ("encode", "forward", "decode"):
        vals = np.array([r["split_fraction"][part] for r in thr]) * 100
        b.bar(x, vals, 0.6, bottom=bottom, label=part)
        bottom += vals
    b.set_xticks(x, labels)
    b.set_ylabel("% of LDNet path time")
    b.set_title("LDNet path split")
    b.legend(fontsize=8)
    return C.save_plot(fig, f"{name}_throughput")


def _short_scores(label: str) -> str:
    """``gold+noise(mu=6.0,sigma=2.0)`` -> ``gold±N(6,2)``; ``model fine-tuned 100 steps`` -> ``fine-tuned``."""
    import re

    m = re.match(r"gold\+noise\(mu=([\d.]+),sigma=([\d.]+)\)", label)
    if m:
        return f"gold, mu {float(m.group(1)):g}\nsigma {float(m.group(2)):g}"
    if label.startswith("model fine-tuned"):
        return "fine-tuned\nmodel"
    if label.startswith("untrained"):
        return "untrained\nmodel"
    return label


def _plot_decoder(plt, dec: list[dict], name: str) -> Path:
    fig, ax = plt.subplots(figsize=(12, 4.5))
    x = np.arange(len(dec))
    keys = [k for k in ("fast", "plain", "mirror") if k in dec[0]["ms_per_record"]]
    w = 0.8 / len(keys)
    for i, k in enumerate(keys):
        bars = ax.bar(x + (i - (len(keys) - 1) / 2) * w, [r["ms_per_record"][k] for r in dec], w,
                      label={"fast": "decode_chains (ours)", "plain": "plain_decode", "mirror": "mirror_decode"}[k])
        for bar, r in zip(bars, dec):
            if r.get(f"speedup_vs_{k}_is_lower_bound"):
                bar.set_hatch("//")
    ax.set_xticks(x, [f"~{r['target_tokens']} tok\n{_short_scores(r['scores'])}" for r in dec], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms / record (log)")
    ax.set_title("Decoding, identical thresholded grids (hatched: stopped at timeout, lower bound)", fontsize=9)
    ax.legend(fontsize=8)
    return C.save_plot(fig, f"{name}_decoder")


def _plot_memory(plt, res: dict, name: str) -> Path:
    mem = res["memory"]["by_length"]
    ls = sorted(int(k) for k in mem)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ls, [mem[str(v)]["bare_encoder"] for v in ls], "o-", color="C0", label="encoder (tensor peak)")
    ax.plot(ls, [mem[str(v)]["ldnet_forward"] for v in ls], "o-", color="C1", label="LDNet (tensor peak)")
    if "memory_rss" in res:
        rss = res["memory_rss"]["by_length"]
        ax.plot(ls, [rss[str(v)]["bare_encoder"] for v in ls], "s--", color="C0", alpha=0.5,
                label="encoder (RSS peak, subprocess)")
        ax.plot(ls, [rss[str(v)]["ldnet_forward"] for v in ls], "s--", color="C1", alpha=0.5,
                label="LDNet (RSS peak, subprocess)")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("peak memory increase (MiB)")
    ax.set_title(f"Peak memory, batch {res['memory']['batch_size']}, inference")
    ax.legend(fontsize=7)
    return C.save_plot(fig, f"{name}_memory")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_memory_child":
        mode, length, bs, threads = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
        print(json.dumps(memory_child(mode, length, bs, threads)))
        return {}
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds per throughput config (median)")
    ap.add_argument("--decoder_repeats", type=int, default=5)
    ap.add_argument("--decoder_records", type=int, default=64)
    ap.add_argument("--finetune_steps", type=int, default=100, help="brief CoNLL03 fine-tune for realistic logits")
    ap.add_argument("--reference_timeout_s", type=float, default=30.0,
                    help="stop a reference decoder pass after this long (reported as a lower bound)")
    ap.add_argument("--no_untrained", action="store_true", help="skip the untrained-model score source")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory_batch_size", type=int, default=8)
    ap.add_argument("--memory_repeats", type=int, default=3, help="RSS subprocess repeats (median)")
    ap.add_argument("--skip_memory", action="store_true")
    ap.add_argument("--sections", nargs="+", default=["throughput", "decoder", "memory"],
                    choices=["throughput", "decoder", "memory"])
    ap.add_argument("--name", default="speed_inference", help="results/plots file stem")
    ap.add_argument("--replot", action="store_true", help="only redraw the plots from results/<name>.json")
    args = ap.parse_args(argv)
    if args.replot:
        res = json.loads((C.RESULTS_DIR / f"{args.name}.json").read_text())
        print("\n".join(str(p) for p in plot(res, args.name)))
        return res
    res = run(repeats=args.repeats, decoder_repeats=args.decoder_repeats, decoder_records=args.decoder_records,
              finetune_steps=args.finetune_steps, threads=args.threads,
              reference_timeout_s=args.reference_timeout_s, memory_batch_size=args.memory_batch_size,
              memory_repeats=args.memory_repeats, skip_memory=args.skip_memory,
              sections=tuple(args.sections), with_untrained=not args.no_untrained)
    path = C.write_json(args.name, res)
    plots = plot(res, args.name)
    print(f"goals: {res['goals']}")
    print(f"wrote {path} and {', '.join(str(p) for p in plots)}")
    return res


if __name__ == "__main__":
    main()
