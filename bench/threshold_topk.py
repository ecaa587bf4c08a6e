#!/usr/bin/env python
"""``span_graph.threshold_logits``: the NNW top-k only when a row has more than k positives (current) vs the top-k
on every call (before), on the logits of a trained model — identical output asserted, time interleaved.

    python bench/threshold_topk.py --model runs/conll04-ft-pt --benchmark conll04 --records 64 --batch_size 32
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np
import torch


def always_topk(logits: torch.Tensor, lengths: list[int], threshold: float = 0.5, k: int = 16) -> np.ndarray:
    """``threshold_logits`` as it was: the B x L x L NNW top-k on every call."""
    t = float(np.log(threshold / (1.0 - threshold)))
    x = logits.detach().float()
    pos = torch.arange(x.shape[-1])
    valid = pos[None, :] < torch.as_tensor(lengths)[:, None]
    y = (x > t) & valid[:, None, :, None] & valid[:, None, None, :]
    if k < x.shape[-1]:
        kth = x[:, 0].topk(k, dim=-1).values[..., -1:]
        y[:, 0] &= x[:, 0] >= kth
    return y.cpu().numpy()


def main(argv: list[str] | None = None) -> dict:
    from modeling_ldnet.span_graph import threshold_logits
    from trainers.fewshot import load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained LDNet folder (sparse, realistic logits)")
    ap.add_argument("--benchmark", default="conll04")
    ap.add_argument("--records", type=int, default=64)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="threshold_topk")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    C.quiet_transformers()
    model, processor = load_checkpoint(args.model, None)
    model.eval()
    recs = C.load_split(args.benchmark, "test")[: args.records]
    batches = []
    for i in range(0, len(recs), args.batch_size):
        enc = processor(recs[i:i + args.batch_size], return_tensors="pt")
        with torch.inference_mode():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        batches.append((logits, enc["attention_mask"].sum(-1).tolist()))
    for logits, lens in batches:  # same links, else the timing would compare different work
        assert np.array_equal(threshold_logits(logits, lens, 0.5, 16), always_topk(logits, lens, 0.5, 16))
    max_row = max(int(threshold_logits(lg, ln, 0.5, None)[:, 0].sum(-1).max()) for lg, ln in batches)
    times = C.interleaved({
        "current": lambda: [threshold_logits(lg, ln, 0.5, 16) for lg, ln in batches],
        "always_topk": lambda: [always_topk(lg, ln, 0.5, 16) for lg, ln in batches],
    }, repeats=args.repeats, warmup=2)
    res = {
        "model": args.model, "records": len(recs), "batch_size": args.batch_size,
        "shapes": [list(lg.shape) for lg, _ in batches], "max_nnw_positives_per_row": max_row,
        "ms_per_record": {k: 1000 * C.med(v) / len(recs) for k, v in times.items()},
        "speedup": C.med(times["always_topk"]) / C.med(times["current"]), "identical": True, "seconds": times,
    }
    print(f"[threshold_topk] {len(recs)} records, shapes {res['shapes']}, max NNW positives per row {max_row}: "
          f"current {res['ms_per_record']['current']:.3f} ms/record, always-topk "
          f"{res['ms_per_record']['always_topk']:.3f} ms/record -> {res['speedup']:.2f}x, identical links")
    print(f"wrote {C.write_json(args.name, res)}")
    return res


if __name__ == "__main__":
    main()
